import Foundation
import Testing

@testable import Pool64Admin

@Suite("POST /admin/pause|resume|reconnect")
struct AdminControlTests {
    static let token = "c0ntrol-token"
    static let bearer = "Bearer c0ntrol-token"

    @Test("each command runs with the token, for one database or all", arguments: AdminControl.allCases)
    func commands(action: AdminControl) async throws {
        let provider = FakeProvider()
        let router = makeRouter(provider, token: Self.token)
        let all = await router.respond(
            method: "POST", target: "/admin/\(action.rawValue)", authorization: Self.bearer, peer: "[::1]:5555")
        #expect(all.status == 200)
        #expect(all.contentType == "application/json")
        #expect(all.text == #"{"ok":true}"#)
        let one = await router.respond(
            method: "POST", target: "/admin/\(action.rawValue)?database=app%2Dtwo", authorization: Self.bearer)
        #expect(one.status == 200)
        #expect(
            provider.controlCalls == [.init(action: action, database: nil), .init(action: action, database: "app-two")])
    }

    @Test("without a configured token every command is refused with 403, whatever is sent")
    func noTokenConfigured() async throws {
        let provider = FakeProvider()
        let router = makeRouter(provider, token: nil)
        for authorization in [nil, "Bearer ", "Bearer anything"] as [String?] {
            let response = await router.respond(method: "POST", target: "/admin/pause", authorization: authorization)
            #expect(response.status == 403)
            let object = try jsonObject(response)
            #expect(object["ok"] as? Bool == false)
            #expect((object["error"] as? String)?.contains("admin token") == true)
        }
        #expect(provider.controlCalls.isEmpty)
    }

    @Test("a missing or wrong token is 401 and runs nothing")
    func wrongToken() async throws {
        let provider = FakeProvider()
        let router = makeRouter(provider, token: Self.token)
        for authorization in [nil, "Bearer c0ntrol-toke", "Basic YzBudHJvbC10b2tlbg==", "c0ntrol-token"] as [String?] {
            let response = await router.respond(method: "POST", target: "/admin/resume", authorization: authorization)
            #expect(response.status == 401)
            #expect(response.extraHeaders.first { $0.0 == "WWW-Authenticate" } != nil)
            #expect(try jsonObject(response)["ok"] as? Bool == false)
        }
        #expect(provider.controlCalls.isEmpty)
    }

    @Test("GET, HEAD and PUT are 405 with Allow: POST, and run nothing", arguments: ["GET", "HEAD", "PUT"])
    func methods(method: String) async {
        let provider = FakeProvider()
        let router = makeRouter(provider, token: Self.token)
        for action in AdminControl.allCases {
            let response = await router.respond(
                method: method, target: "/admin/\(action.rawValue)", authorization: Self.bearer)
            #expect(response.status == 405)
            #expect(response.extraHeaders.first { $0.0 == "Allow" }?.1 == "POST")
        }
        #expect(await router.respond(method: "POST", target: "/admin/kill", authorization: Self.bearer).status == 404)
        #expect(provider.controlCalls.isEmpty)
    }

    @Test("an unknown parameter or an empty database is 400: a typo must not pause everything", arguments: [
        "/admin/pause?db=app", "/admin/pause?database=", "/admin/pause?database=a&database=b",
        "/admin/pause?database=%G0",
    ])
    func badParameters(target: String) async throws {
        let provider = FakeProvider()
        let response = await makeRouter(provider, token: Self.token).respond(
            method: "POST", target: target, authorization: Self.bearer)
        #expect(response.status == 400)
        #expect(try jsonObject(response)["ok"] as? Bool == false)
        #expect(provider.controlCalls.isEmpty)
    }

    @Test("a refusal from the pools is 409 with its SQLSTATE; another failure 500")
    func refusals() async throws {
        let provider = FakeProvider()
        let router = makeRouter(provider, token: Self.token)
        provider.controlError = AdminControlError(sqlstate: "08P01", message: #"database "app" is already paused"#)
        let refused = await router.respond(
            method: "POST", target: "/admin/pause?database=app", authorization: Self.bearer)
        #expect(refused.status == 409)
        let object = try jsonObject(refused)
        #expect(object["ok"] as? Bool == false)
        #expect(object["sqlstate"] as? String == "08P01")
        #expect(object["error"] as? String == #"database "app" is already paused"#)

        struct Broken: Error {}
        provider.controlError = Broken()
        let failed = await router.respond(method: "POST", target: "/admin/reconnect", authorization: Self.bearer)
        #expect(failed.status == 500)
        #expect(try jsonObject(failed)["ok"] as? Bool == false)
    }

    @Test("a command that outlasts its deadline answers 504 and says the pause goes on")
    func deadline() async throws {
        let provider = FakeProvider()
        provider.controlHeld = true
        defer { provider.controlHeld = false }
        let router = makeRouter(provider, token: Self.token, controlDeadline: .milliseconds(200))
        let started = ContinuousClock.now
        let response = await router.respond(method: "POST", target: "/admin/pause", authorization: Self.bearer)
        #expect(ContinuousClock.now - started < .seconds(10))
        #expect(response.status == 504)
        let object = try jsonObject(response)
        #expect(object["ok"] as? Bool == false)
        #expect((object["error"] as? String)?.contains("/admin/resume") == true)
        #expect(AdminRouter.timeoutMessage(.pause, after: .seconds(60)).contains("within 60 s"))
    }

    @Test("over a socket, a pause longer than the idle timeout still gets its answer")
    func slowPauseOverSocket() async throws {
        let provider = FakeProvider()
        provider.controlHeld = true
        let configuration = AdminServer.Configuration(
            listen: ["127.0.0.1:0"], bearerToken: Self.token, idleTimeout: .milliseconds(500))
        try await withAdminServer(configuration, provider: provider) { _, addresses in
            try await RawHTTPConnection.with(addresses[0]) { connection in
                try await connection.send(
                    "POST /admin/pause?database=app HTTP/1.1\r\nHost: t\r\nAuthorization: \(Self.bearer)\r\n"
                        + "Content-Length: 0\r\n\r\n")
                let release = Task {
                    try await Task.sleep(for: .milliseconds(1500))
                    provider.controlHeld = false
                }
                let response = try #require(try await connection.readResponse())
                try await release.value
                #expect(response.status == 200)
                #expect(response.text == #"{"ok":true}"#)
                // Idle again after the answer: the connection is closed as before.
                #expect(try await connection.readUntilClosed())
            }
        }
        #expect(provider.controlCalls == [.init(action: .pause, database: "app")])
    }
}

extension AdminResponse {
    var text: String { String(decoding: self.body, as: UTF8.self) }
}
