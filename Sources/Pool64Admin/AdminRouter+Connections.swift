import Pool64Stats

/// The two connection lists the views page through.
enum ConnectionKind: String, Sendable {
    /// `SHOW CLIENTS`.
    case clients
    /// `SHOW SERVERS`.
    case servers
}

extension AdminRouter {
    /// `/stats`: the stats snapshot, unchanged, plus one page of each connection list (same `limit` and `offset`
    /// for both) and their totals.
    func stats(_ target: AdminTarget) async -> AdminResponse {
        let page: PageRequest
        do {
            page = try PageRequest(target.parameters(accepted: PageRequest.parameterNames, rejectingOthers: false))
        } catch {
            return .badRequest(error.message)
        }
        guard let snapshot = await self.consoleSnapshot(),
            let json = Self.encode(StatsBody(snapshot: snapshot, page: page))
        else { return .statsUnavailable }
        return .json(200, json)
    }

    /// `/stats/clients`, `/stats/servers`: one page of one list, with the same keys as in `/stats`.
    func connections(_ kind: ConnectionKind, _ target: AdminTarget) async -> AdminResponse {
        let page: PageRequest
        do {
            page = try PageRequest(target.parameters(accepted: PageRequest.parameterNames, rejectingOthers: false))
        } catch {
            return .badRequest(error.message)
        }
        guard let snapshot = await self.consoleSnapshot(),
            let json = Self.encode(ConnectionsBody(kind: kind, snapshot: snapshot, page: page))
        else { return .statsUnavailable }
        return .json(200, json)
    }

    private func consoleSnapshot() async -> ConsoleSnapshot? {
        let provider = self.provider
        return await withDeadline(self.deadlines.stats) { await provider.consoleSnapshot() }
    }
}

/// The JSON keys the paged views add. `/stats` keeps every key it had; these come beside them.
private enum PageKey: String, CodingKey {
    case clients, servers, limit, offset
    case clientsTotal = "clients_total"
    case serversTotal = "servers_total"
}

/// `/stats`: the ``StatsSnapshot`` keys, then `clients`, `clients_total`, `servers`, `servers_total`, `limit` and
/// `offset`.
private struct StatsBody: Encodable {
    let snapshot: ConsoleSnapshot
    let page: PageRequest

    func encode(to encoder: any Encoder) throws {
        // The snapshot and the page share one JSON object, so existing readers of /stats see no change.
        try self.snapshot.stats.encode(to: encoder)
        var container = encoder.container(keyedBy: PageKey.self)
        try container.encode(Array(self.page.slice(self.snapshot.clients)), forKey: .clients)
        try container.encode(self.snapshot.clients.count, forKey: .clientsTotal)
        try container.encode(Array(self.page.slice(self.snapshot.servers)), forKey: .servers)
        try container.encode(self.snapshot.servers.count, forKey: .serversTotal)
        try container.encode(self.page.limit, forKey: .limit)
        try container.encode(self.page.offset, forKey: .offset)
    }
}

/// `/stats/clients` (`clients`, `clients_total`, `limit`, `offset`) and `/stats/servers` likewise.
private struct ConnectionsBody: Encodable {
    let kind: ConnectionKind
    let snapshot: ConsoleSnapshot
    let page: PageRequest

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: PageKey.self)
        switch self.kind {
        case .clients:
            try container.encode(Array(self.page.slice(self.snapshot.clients)), forKey: .clients)
            try container.encode(self.snapshot.clients.count, forKey: .clientsTotal)
        case .servers:
            try container.encode(Array(self.page.slice(self.snapshot.servers)), forKey: .servers)
            try container.encode(self.snapshot.servers.count, forKey: .serversTotal)
        }
        try container.encode(self.page.limit, forKey: .limit)
        try container.encode(self.page.offset, forKey: .offset)
    }
}
