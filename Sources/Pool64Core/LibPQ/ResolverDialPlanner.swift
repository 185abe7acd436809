import Dispatch
import Foundation
import Glibc

/// Interim planner: literals pass through as `hostaddr`, names are looked up with getaddrinfo on a background queue
/// (never on the event loop). IPv6 answers first.
public final class SystemDialPlanner: DialPlanner {
    public init() {}

    public func plan(
        endpoints: [ConnectionString.Endpoint], completion: @escaping @Sendable (Result<DialPlan, PlanError>) -> Void
    ) {
        DispatchQueue.global().async {
            var hosts: [String] = []
            var addrs: [String] = []
            var ports: [String] = []
            var route = "ipv6"
            for e in endpoints {
                hosts.append(e.host)
                ports.append(String(e.port))
                if e.host.hasPrefix("/") {
                    addrs.append("")
                    route = "unix"
                    continue
                }
                guard let a = Self.lookup(e.host) else { continue }
                addrs.append(a)
                route = a.contains(":") ? "ipv6" : "ipv4"
            }
            guard addrs.count == hosts.count else {
                completion(.failure(PlanError("cannot resolve \(hosts.joined(separator: ","))")))
                return
            }
            let first = addrs.first ?? ""
            completion(
                .success(
                    DialPlan(
                        overrides: ["host": hosts.joined(separator: ","), "hostaddr": addrs.joined(separator: ","),
                                    "port": ports.joined(separator: ",")],
                        route: route, description: first.contains(":") ? "[\(first)]:\(ports[0])" : "\(first):\(ports[0])",
                        tried: addrs, names: hosts)))
        }
    }

    public func dialFailed(_ plan: DialPlan) {}

    static func lookup(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var res: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &res) == 0, let first = res else { return nil }
        defer { freeaddrinfo(res) }
        var best: String?
        var p: UnsafeMutablePointer<addrinfo>? = first
        while let ai = p {
            var buf = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &buf, socklen_t(buf.count), nil, 0, NI_NUMERICHOST) == 0 {
                let s = String(cString: buf)
                if best == nil || (s.contains(":") && !(best!.contains(":"))) { best = s }
            }
            p = ai.pointee.ai_next
        }
        return best
    }
}
