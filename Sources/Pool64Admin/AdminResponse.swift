/// A complete HTTP response produced by the router, before it is written to a connection.
struct AdminResponse: Sendable, Equatable {
    var status: Int
    var contentType: String
    var body: [UInt8]
    var extraHeaders: [(String, String)] = []

    static func == (lhs: AdminResponse, rhs: AdminResponse) -> Bool {
        lhs.status == rhs.status && lhs.contentType == rhs.contentType && lhs.body == rhs.body
            && lhs.extraHeaders.map(\.0) == rhs.extraHeaders.map(\.0)
            && lhs.extraHeaders.map(\.1) == rhs.extraHeaders.map(\.1)
    }

    static let jsonType = "application/json"
    /// Prometheus text exposition format 0.0.4, as scrapers expect it.
    static let prometheusType = "text/plain; version=0.0.4; charset=utf-8"

    static func json(_ status: Int, _ text: String, headers: [(String, String)] = []) -> AdminResponse {
        AdminResponse(status: status, contentType: Self.jsonType, body: Array(text.utf8), extraHeaders: headers)
    }

    static let notFound = json(404, #"{"error":"not found"}"#)
    static let statsUnavailable = json(503, #"{"error":"stats unavailable"}"#)
    static let unauthorized = json(
        401, #"{"error":"unauthorized"}"#, headers: [("WWW-Authenticate", #"Bearer realm="pool64""#)])
    static let payloadTooLarge = json(413, #"{"error":"request body too large"}"#)

    /// 405, naming the one method the route takes (RFC 9110 §15.5.6 requires `Allow`).
    static func methodNotAllowed(allow method: String) -> AdminResponse {
        json(405, #"{"error":"method not allowed"}"#, headers: [("Allow", method)])
    }

    /// 400 with the reason as `{"error": …}`.
    static func badRequest(_ message: String) -> AdminResponse {
        json(400, AdminRouter.encode(["error": message]) ?? #"{"error":"bad request"}"#)
    }
}
