/// Which slice of a connection list a request asks for: `?limit=` (0…``maxLimit``, default ``defaultLimit``) and
/// `?offset=` (default 0). An offset past the end gives an empty page, not an error, so a client paging while
/// connections close simply stops.
struct PageRequest: Sendable, Equatable {
    static let defaultLimit = 100
    /// Bounds one response: 10,000 clients are paged, never sent at once.
    static let maxLimit = 1000
    static let parameterNames: Set<String> = ["limit", "offset"]

    var limit = Self.defaultLimit
    var offset = 0

    init(limit: Int = Self.defaultLimit, offset: Int = 0) {
        self.limit = limit
        self.offset = offset
    }

    init(_ parameters: [String: String]) throws(AdminRequestError) {
        if let text = parameters["limit"] {
            guard let limit = Self.number(text), limit <= Self.maxLimit else {
                throw AdminRequestError("limit must be an integer from 0 to \(Self.maxLimit)")
            }
            self.limit = limit
        }
        if let text = parameters["offset"] {
            guard let offset = Self.number(text) else {
                throw AdminRequestError("offset must be a non-negative integer")
            }
            self.offset = offset
        }
    }

    /// The items of this page.
    func slice<Element>(_ items: [Element]) -> ArraySlice<Element> {
        let start = min(self.offset, items.count)
        return items[start..<(start + min(self.limit, items.count - start))]
    }

    /// Decimal digits only: `Int("+5")` would accept a sign, and a sign or a space here is a client bug to report.
    private static func number(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return nil
        }
        return Int(text)
    }
}
