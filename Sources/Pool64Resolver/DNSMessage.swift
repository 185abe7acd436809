/// RFC 1035 record types the stub resolver reads.
enum DNSRecordType {
    static let a: UInt16 = 1
    static let cname: UInt16 = 5
    static let soa: UInt16 = 6
    static let aaaa: UInt16 = 28
    static let opt: UInt16 = 41
}

/// A parsed resource record; only the types the resolver uses keep their data.
struct DNSRecord: Equatable {
    enum Data: Equatable {
        case a(IPv4Address)
        case aaaa(IPv6Address)
        case cname(String)
        /// RFC 2308 §5: the negative TTL is min(SOA TTL, SOA MINIMUM).
        case soa(minimum: UInt32)
        case other
    }

    var name: String
    var type: UInt16
    var ttl: UInt32
    var data: Data
}

/// A parsed DNS response: header bits and the sections the resolver reads.
struct DNSResponse: Equatable {
    var id: UInt16
    var isResponse: Bool
    var opcode: UInt8
    var truncated: Bool
    var rcode: UInt8
    var questions: [(name: String, type: UInt16, qclass: UInt16)]
    var answers: [DNSRecord]
    var authority: [DNSRecord]

    static func == (lhs: DNSResponse, rhs: DNSResponse) -> Bool {
        lhs.id == rhs.id && lhs.rcode == rhs.rcode && lhs.answers == rhs.answers
            && lhs.questions.map(\.name) == rhs.questions.map(\.name)
    }
}

/// What one query (one name, one type) established.
enum DNSQueryOutcome: Equatable {
    /// Addresses of the asked type at the end of the CNAME chain, and the chain's minimum TTL.
    case addresses([IPAddress], ttl: UInt32)
    /// NOERROR without records of the type (RFC 2308 §2.2); the SOA negative TTL if present.
    case noData(ttl: UInt32?)
    /// NXDOMAIN (RFC 2308 §2.1); the SOA negative TTL if present.
    case nameNotFound(ttl: UInt32?)
    /// SERVFAIL, REFUSED, NOTIMP … : ask the next nameserver.
    case serverFailure(rcode: UInt8)
    /// TC bit set: retry over TCP (RFC 7766 §5).
    case truncated
}

/// Encoding of queries and decoding of responses (RFC 1035 §4). Reads are bounds-checked:
/// a malformed reply becomes an error, never a crash.
enum DNSMessage {
    struct ParseError: Error {}

    /// Validates and normalizes a host name: lower case, no trailing dot, 1–63 byte labels of
    /// letters, digits, `-` and `_`, at most 253 bytes (RFC 1035 §2.3.4).
    static func normalize(_ name: String) -> String? {
        var name = name.lowercased()
        if name.hasSuffix(".") { name.removeLast() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return nil }
        for label in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard (1...63).contains(label.utf8.count) else { return nil }
            for byte in label.utf8 {
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                    UInt8(ascii: "-"), UInt8(ascii: "_"):
                    continue
                default:
                    return nil
                }
            }
        }
        return name
    }

    /// A recursive query (RD set) for `name`/`type`, class IN, with an EDNS0 OPT record
    /// advertising a 1232-byte UDP payload (RFC 6891; the DNS Flag Day 2020 size) so that
    /// answers with many addresses rarely need the TCP retry. `name` must be normalized.
    static func query(id: UInt16, name: String, type: UInt16) -> [UInt8] {
        var bytes: [UInt8] = [UInt8(id >> 8), UInt8(truncatingIfNeeded: id), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1]
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        bytes += [0, UInt8(type >> 8), UInt8(truncatingIfNeeded: type), 0, 1]
        bytes += [0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0]
        return bytes
    }

    static func parse(_ bytes: [UInt8]) throws(ParseError) -> DNSResponse {
        var reader = Reader(bytes: bytes)
        let id = try reader.u16()
        let flags = try reader.u16()
        let counts = [try reader.u16(), try reader.u16(), try reader.u16()]
        let arcount = try reader.u16()
        _ = arcount
        var questions: [(name: String, type: UInt16, qclass: UInt16)] = []
        for _ in 0..<counts[0] {
            let name = try reader.name()
            questions.append((name, try reader.u16(), try reader.u16()))
        }
        var sections: [[DNSRecord]] = [[], []]
        for section in 0..<2 {
            for _ in 0..<counts[section + 1] { sections[section].append(try reader.record()) }
        }
        return DNSResponse(
            id: id, isResponse: flags & 0x8000 != 0, opcode: UInt8((flags >> 11) & 0xF),
            truncated: flags & 0x0200 != 0, rcode: UInt8(flags & 0xF), questions: questions,
            answers: sections[0], authority: sections[1])
    }

    /// True when `response` answers exactly the question we sent; anything else is ignored
    /// as stray or spoofed (RFC 5452 §4.2 and §9.1).
    static func matches(_ response: DNSResponse, id: UInt16, name: String, type: UInt16) -> Bool {
        guard response.isResponse, response.id == id, response.opcode == 0, response.questions.count == 1
        else { return false }
        let question = response.questions[0]
        return question.name == name && question.type == type && question.qclass == 1
    }

    /// Follows the CNAME chain from `name` inside the answer section and collects the records
    /// of `type` at its end (RFC 1034 §3.6.2), or classifies the negative / error reply.
    static func outcome(of response: DNSResponse, name: String, type: UInt16) -> DNSQueryOutcome {
        if response.truncated { return .truncated }
        let negativeTTL = response.authority.lazy.compactMap { record -> UInt32? in
            if case .soa(let minimum) = record.data { return min(record.ttl, minimum) }
            return nil
        }.first
        switch response.rcode {
        case 0: break
        case 3: return .nameNotFound(ttl: negativeTTL)
        default: return .serverFailure(rcode: response.rcode)
        }
        var current = name
        var ttl = UInt32.max
        var visited: Set<String> = [name]
        while true {
            var addresses: [IPAddress] = []
            var recordTTL = UInt32.max
            var next: String?
            for record in response.answers where record.name == current {
                switch record.data {
                case .a(let ipv4) where type == DNSRecordType.a:
                    addresses.append(.v4(ipv4))
                    recordTTL = min(recordTTL, record.ttl)
                case .aaaa(let ipv6) where type == DNSRecordType.aaaa:
                    addresses.append(.v6(ipv6))
                    recordTTL = min(recordTTL, record.ttl)
                case .cname(let target):
                    next = target
                    ttl = min(ttl, record.ttl)
                case .a, .aaaa, .soa, .other:
                    continue
                }
            }
            if !addresses.isEmpty { return .addresses(addresses, ttl: min(ttl, recordTTL)) }
            // A CNAME loop or a chain that leaves the answer section ends as NODATA; the
            // server already chased the chain as far as it could (RFC 1034 §4.3.2).
            guard let target = next, visited.insert(target).inserted, visited.count <= 16 else {
                return .noData(ttl: negativeTTL)
            }
            current = target
        }
    }
}

private struct Reader {
    let bytes: [UInt8]
    var offset = 0

    mutating func u8() throws(DNSMessage.ParseError) -> UInt8 {
        guard offset < bytes.count else { throw DNSMessage.ParseError() }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSMessage.ParseError) -> UInt16 {
        UInt16(try u8()) << 8 | UInt16(try u8())
    }

    mutating func u32() throws(DNSMessage.ParseError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    /// Reads a possibly compressed name (RFC 1035 §4.1.4), lower-cased, without trailing dot.
    mutating func name() throws(DNSMessage.ParseError) -> String {
        var labels: [String] = []
        var position = offset
        var jumped = false
        var jumps = 0
        while true {
            guard position < bytes.count else { throw DNSMessage.ParseError() }
            let length = bytes[position]
            if length & 0xC0 == 0xC0 {
                guard position + 1 < bytes.count, jumps < 32 else { throw DNSMessage.ParseError() }
                let target = Int(length & 0x3F) << 8 | Int(bytes[position + 1])
                if !jumped { offset = position + 2 }
                jumped = true
                jumps += 1
                position = target
            } else if length == 0 {
                if !jumped { offset = position + 1 }
                return labels.joined(separator: ".").lowercased()
            } else {
                guard length <= 63, position + 1 + Int(length) <= bytes.count else { throw DNSMessage.ParseError() }
                labels.append(String(decoding: bytes[(position + 1)..<(position + 1 + Int(length))], as: UTF8.self))
                position += 1 + Int(length)
                guard labels.count <= 127 else { throw DNSMessage.ParseError() }
            }
        }
    }

    mutating func record() throws(DNSMessage.ParseError) -> DNSRecord {
        let name = try name()
        let type = try u16()
        let rclass = try u16()
        // RFC 2181 §8: a TTL with the top bit set is treated as zero.
        var ttl = try u32()
        if ttl & 0x8000_0000 != 0 { ttl = 0 }
        let length = Int(try u16())
        guard offset + length <= bytes.count else { throw DNSMessage.ParseError() }
        let end = offset + length
        defer { offset = end }
        let rdata = bytes[offset..<end]
        var data = DNSRecord.Data.other
        if rclass == 1 {
            switch type {
            case DNSRecordType.a:
                guard let ipv4 = IPv4Address(bytes: rdata) else { throw DNSMessage.ParseError() }
                data = .a(ipv4)
            case DNSRecordType.aaaa:
                guard let ipv6 = IPv6Address(bytes: rdata) else { throw DNSMessage.ParseError() }
                data = .aaaa(ipv6)
            case DNSRecordType.cname:
                data = .cname(try self.name())
            case DNSRecordType.soa:
                _ = try self.name()
                _ = try self.name()
                offset += 16
                data = .soa(minimum: try u32())
            default:
                break
            }
        }
        return DNSRecord(name: name, type: type, ttl: ttl, data: data)
    }
}
