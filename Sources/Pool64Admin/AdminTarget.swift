import Foundation

/// A request-target split into its path and its query parameters (`/stats?limit=2&offset=4`).
///
/// Parameters are parsed only by the routes that take any, so a scraper's stray query on `/metrics` stays harmless.
struct AdminTarget: Sendable, Equatable {
    var path: String
    /// The raw query, without the `?`; empty when there is none.
    var query: Substring

    init(_ target: String) {
        let parts = target.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        self.path = String(parts.first ?? "")
        self.query = parts.count > 1 ? parts[1] : ""
    }

    /// The query's `name=value` pairs for the names in `accepted`, percent-decoded (RFC 3986 §2.1; `+` stays a plus
    /// sign). A repeated name or broken percent-encoding is a bad request, and so is any other name when
    /// `rejectingOthers`: on a command a typo such as `?db=app` must not widen it to every database. Views ignore
    /// other names, as `/stats` always has.
    func parameters(accepted: Set<String>, rejectingOthers: Bool) throws(AdminRequestError) -> [String: String] {
        var result: [String: String] = [:]
        for pair in self.query.split(separator: "&", omittingEmptySubsequences: true) {
            let nameAndValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let name = String(nameAndValue[0]).removingPercentEncoding,
                let value = String(nameAndValue.count > 1 ? nameAndValue[1] : "").removingPercentEncoding
            else { throw AdminRequestError("malformed percent-encoding in the query") }
            guard accepted.contains(name) else {
                guard rejectingOthers else { continue }
                let names = accepted.sorted().joined(separator: ", ")
                throw AdminRequestError("unknown query parameter \(name) (accepted: \(names))")
            }
            guard result.updateValue(value, forKey: name) == nil else {
                throw AdminRequestError("query parameter \(name) given more than once")
            }
        }
        return result
    }
}

/// A request the router refuses with 400, and why.
struct AdminRequestError: Error, Sendable, Equatable {
    var message: String

    init(_ message: String) {
        self.message = message
    }
}
