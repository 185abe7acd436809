import Foundation
import Logging
import Pool64Stats
import Prometheus
import Testing

@testable import Pool64Admin

/// A router over `provider`, without sockets; `token` nil means none configured.
func makeRouter(
    _ provider: FakeProvider, token: String? = nil, controlDeadline: Duration = .seconds(10)
) -> AdminRouter {
    var logger = Logger(label: "pool64.admin.tests")
    logger.logLevel = .critical
    return AdminRouter(
        provider: provider, exporter: PrometheusExporter(registry: PrometheusCollectorRegistry()),
        token: token.map(BearerToken.init), deadlines: .init(control: controlDeadline), logger: logger)
}

/// The response body as a JSON object.
func jsonObject(_ response: AdminResponse) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
}

@Suite("Paging parameters")
struct PageRequestTests {
    @Test("defaults, bounds and decimal digits only")
    func parsing() throws {
        #expect(try PageRequest([:]) == PageRequest(limit: 100, offset: 0))
        #expect(try PageRequest(["limit": "0"]) == PageRequest(limit: 0, offset: 0))
        #expect(try PageRequest(["limit": "1000", "offset": "12345678901"]).offset == 12_345_678_901)
        for bad in ["1001", "-1", "+5", " 5", "", "abc", "1e3", "99999999999999999999999"] {
            #expect(throws: AdminRequestError.self, "limit=\(bad)") { try PageRequest(["limit": bad]) }
        }
        for bad in ["-1", "+0", "", "x", "1.5"] {
            #expect(throws: AdminRequestError.self, "offset=\(bad)") { try PageRequest(["offset": bad]) }
        }
    }

    @Test("slices stop at the end, also for offsets past it")
    func slicing() {
        let items = Array(1...5)
        #expect(Array(PageRequest(limit: 2, offset: 0).slice(items)) == [1, 2])
        #expect(Array(PageRequest(limit: 2, offset: 4).slice(items)) == [5])
        #expect(Array(PageRequest(limit: 2, offset: 5).slice(items)) == [])
        #expect(Array(PageRequest(limit: 1000, offset: Int.max).slice(items)) == [])
        #expect(Array(PageRequest(limit: 0, offset: 1).slice(items)) == [])
    }

    @Test("query parameters: percent-decoding, repeats, unknown names")
    func queryParameters() throws {
        let target = AdminTarget("/admin/pause?database=app%5Fdb%20x&")
        #expect(target.path == "/admin/pause")
        #expect(try target.parameters(accepted: ["database"], rejectingOthers: true) == ["database": "app_db x"])
        #expect(try AdminTarget("/stats?pretty&limit=2").parameters(
            accepted: PageRequest.parameterNames, rejectingOthers: false) == ["limit": "2"])
        #expect(throws: AdminRequestError.self) {
            try AdminTarget("/admin/pause?db=app").parameters(accepted: ["database"], rejectingOthers: true)
        }
        #expect(throws: AdminRequestError.self) {
            try AdminTarget("/stats?limit=1&limit=2").parameters(
                accepted: PageRequest.parameterNames, rejectingOthers: false)
        }
        #expect(throws: AdminRequestError.self) {
            try AdminTarget("/admin/pause?database=%zz").parameters(accepted: ["database"], rejectingOthers: true)
        }
    }
}

@Suite("/stats connection lists")
struct AdminConnectionsTests {
    @Test("/stats keeps its keys and adds one page of clients and servers with their totals")
    func statsShape() async throws {
        let provider = FakeProvider()
        provider.clients = FakeProvider.sampleClients(5)
        provider.servers = FakeProvider.sampleServers(3)
        let router = makeRouter(provider)
        let response = await router.respond(method: "GET", target: "/stats?limit=2&offset=1", authorization: nil)
        #expect(response.status == 200)
        #expect(response.contentType == "application/json")
        // Backwards compatible: the old document is still all there.
        #expect(try JSONDecoder().decode(StatsSnapshot.self, from: Data(response.body)) == provider.snapshot)
        let object = try jsonObject(response)
        #expect(Set(object.keys) == [
            "process", "pools", "resolver", "totals", "clients", "clients_total", "servers", "servers_total",
            "limit", "offset",
        ])
        #expect(object["clients_total"] as? Int == 5)
        #expect(object["servers_total"] as? Int == 3)
        #expect(object["limit"] as? Int == 2)
        #expect(object["offset"] as? Int == 1)
        let clients = try #require(object["clients"] as? [[String: Any]])
        #expect(clients.map { $0["id"] as? Int } == [2, 3])
        let client = clients[0]
        #expect(client["user"] as? String == "report")
        #expect(client["database"] as? String == "app")
        #expect(client["state"] as? String == "active")
        #expect(client["address"] as? String == "2001:db8::2")
        #expect(client["port"] as? Int == 40001)
        #expect(client["server_id"] as? Int == 101)
        for key in ["local_address", "local_port", "connect_time", "request_time", "wait_us", "tls",
                    "application_name", "prepared_statements", "pinned"] {
            #expect(client[key] != nil, "client key \(key)")
        }
        let servers = try #require(object["servers"] as? [[String: Any]])
        #expect(servers.map { $0["id"] as? Int } == [102, 103])
        for key in ["user", "database", "state", "address", "port", "client_id", "remote_pid", "route",
                    "close_needed", "prepared_statements", "tls"] {
            #expect(servers[0][key] != nil, "server key \(key)")
        }
    }

    @Test("without parameters /stats lists the first 100 of each")
    func defaultPage() async throws {
        let provider = FakeProvider()
        provider.clients = FakeProvider.sampleClients(250)
        let response = await makeRouter(provider).respond(method: "GET", target: "/stats", authorization: nil)
        let object = try jsonObject(response)
        #expect((object["clients"] as? [Any])?.count == 100)
        #expect(object["clients_total"] as? Int == 250)
        #expect((object["servers"] as? [Any])?.count == 0)
        #expect(object["limit"] as? Int == 100 && object["offset"] as? Int == 0)
    }

    @Test("paging /stats/clients visits every client once, in id order")
    func pageThrough() async throws {
        let provider = FakeProvider()
        provider.clients = FakeProvider.sampleClients(2501)
        let router = makeRouter(provider)
        var ids: [Int] = []
        var offset = 0
        while true {
            let response = await router.respond(
                method: "GET", target: "/stats/clients?limit=1000&offset=\(offset)", authorization: nil)
            let object = try jsonObject(response)
            #expect(Set(object.keys) == ["clients", "clients_total", "limit", "offset"])
            #expect(object["clients_total"] as? Int == 2501)
            let page = try #require(object["clients"] as? [[String: Any]])
            if page.isEmpty { break }
            ids += page.compactMap { $0["id"] as? Int }
            offset += page.count
        }
        #expect(ids == Array(1...2501))
    }

    @Test("/stats/servers lists only servers")
    func servers() async throws {
        let provider = FakeProvider()
        provider.servers = FakeProvider.sampleServers(4)
        let response = await makeRouter(provider).respond(
            method: "GET", target: "/stats/servers?offset=3", authorization: nil)
        let object = try jsonObject(response)
        #expect(Set(object.keys) == ["servers", "servers_total", "limit", "offset"])
        let servers = try #require(object["servers"] as? [[String: Any]])
        #expect(servers.count == 1)
        #expect(servers[0]["id"] as? Int == 104)
        #expect(servers[0]["route"] as? String == "nat64")
    }

    @Test("a bad limit or offset is a 400 with a JSON reason", arguments: [
        "/stats?limit=1001", "/stats?limit=-1", "/stats/clients?offset=x", "/stats/servers?limit=",
        "/stats?limit=1&limit=2",
    ])
    func badPaging(target: String) async throws {
        let response = await makeRouter(FakeProvider()).respond(method: "GET", target: target, authorization: nil)
        #expect(response.status == 400)
        #expect(response.contentType == "application/json")
        let reason = try #require(try jsonObject(response)["error"] as? String)
        #expect(reason.contains("limit") || reason.contains("offset"))
    }

    @Test("the token guards the lists; POST on them is 405")
    func tokenAndMethod() async {
        let provider = FakeProvider()
        let router = makeRouter(provider, token: "s3cret")
        for path in ["/stats/clients", "/stats/servers"] {
            #expect(await router.respond(method: "GET", target: path, authorization: nil).status == 401)
            #expect(await router.respond(method: "GET", target: path, authorization: "Bearer s3cret").status == 200)
            let post = await router.respond(method: "POST", target: path, authorization: "Bearer s3cret")
            #expect(post.status == 405)
            #expect(post.extraHeaders.first { $0.0 == "Allow" }?.1 == "GET")
        }
    }
}
