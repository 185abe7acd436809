import Glibc
import NIOCore
import Pool64Wire

extension ClientSession {
    /// Frames from the client after startup.
    func readFrames() {
        readingFrames = true
        defer { readingFrames = false }
        while true {
            switch phase {
            case .startup, .welcome, .closed: return
            case .ready:
                // While waiting for a server the bytes stay in the framer; `attached` resumes here, so they go
                // out through the fast path instead of being queued message by message. The same while a message
                // waits for a statement's shape (`shapeArrived` resumes).
                if waiting || holdingForShape { return }
                if server != nil {
                    // Unmanaged: no retain and release per read. The pool holds every server it has not closed, and
                    // nothing on the fast path closes one (a failed write closes on a later turn).
                    Unmanaged.passUnretained(server!)._withUnsafeGuaranteedRef { relayRuns($0) }
                } else if let poolRef, nextMessageNeedsServer() {
                    // Ask for a server without consuming the message: once attached, it leaves through the fast
                    // path together with what follows it (usually the whole transaction's first batch).
                    waiting = true
                    poolRef._withUnsafeGuaranteedRef { $0.acquire(self) }
                    continue
                }
            case .scram, .md5: break
            case .console:
                // One console command at a time: the rest waits in the framer until its answer is out.
                if consoleState?.busy == true { return }
            }
            let frame: MessageFramer.Frame?
            do {
                frame = try framer.next()
            } catch {
                proxy.counters.protocolErrors &+= 1
                logger.info("bad message from client", metadata: ["error": "\(error)"])
                fail(ErrorFields.fatal(error.sqlstate, "invalid message: \(error)"), reason: "protocol violation")
                return
            }
            guard let frame else { return }
            if case .ready = phase {
                handleFrame(frame)
            } else if case .console = phase {
                consoleFrame(frame)
            } else if case .message(let type, let bytes) = frame, type == FrontendType.password {
                authMessage(bytes)
            } else {
                proxy.counters.protocolErrors &+= 1
                fail(ErrorFields.fatal("08P01", "expected a password message during authentication"), reason: "protocol violation")
                return
            }
        }
    }

    /// True when the next whole message needs a server: not Terminate, Sync or Flush, and not a named Parse or
    /// statement Close in transaction mode (`answerWithoutServer` handles those without one).
    private func nextMessageNeedsServer() -> Bool {
        let transactionMode = self.transactionMode
        var needs = false
        // Looks at the first whole message only (it is never taken here).
        _ = framer.scanMessages { type, raw in
            switch type {
            case FrontendType.terminate, FrontendType.sync, FrontendType.flush:
                needs = false
            case FrontendType.parse, FrontendType.close:
                needs = !transactionMode || Self.unnamedExpectation(type, raw: raw) != nil
            case FrontendType.query:
                needs = !(transactionMode && deallocatesOwnStatement(query: raw) != nil)
            default:
                needs = true
            }
            return .stop
        }
        return needs
    }

    /// The fast path of `readFrames` while a server is attached: consecutive whole messages that go to the server
    /// unchanged (Query, Execute, Sync, Flush; Parse/Bind/Describe/Close of the unnamed statement or portals, or
    /// any in session mode) are recorded in the tracker and written as one slice. Stops at anything that needs a
    /// closer look (statement names to map, SQL that may change session state, COPY, Terminate, …), which
    /// `process` then handles one message at a time.
    private func relayRuns(_ server: ServerConnection) {
        guard let poolRef else { return }
        let transactionMode = self.transactionMode
        let run = framer.scanMessages { type, raw in
            var expectation: Expectation? = nil
            switch type {
            case FrontendType.query:
                // Session mode looks too: RESET ALL / DISCARD ALL there must also restore the client's own values.
                if Self.queryMightAffectSession(query: raw) { return .stop }
                // A simple Query drops the unnamed statement.
                self.unnamedUnbound = false
                expectation = .query(swallow: false)
            case FrontendType.execute:
                expectation = .execute
            case FrontendType.sync:
                // An extended-protocol RESET is waiting for this Sync to restore the client's values (`process`).
                if self.parametersReset { return .stop }
                expectation = .sync
            case FrontendType.flush:
                break
            case FrontendType.parse, FrontendType.bind, FrontendType.describe, FrontendType.close:
                if !transactionMode {
                    // A RESET or DISCARD ALL sent as Parse must restore the client's own values here too.
                    if type == FrontendType.parse, Self.queryMightAffectSession(parse: raw) { return .stop }
                    expectation = Self.expectation(for: type)
                    break
                }
                guard let e = Self.unnamedExpectation(type, raw: raw) else { return .stop }
                if type == FrontendType.parse {
                    if Self.queryMightAffectSession(parse: raw) { return .stop }
                    self.unnamedUnbound = true
                } else if type == FrontendType.bind {
                    self.unnamedUnbound = false
                }
                expectation = e
            default:
                return .stop
            }
            if let expectation { server.tracker.expect(expectation, out: &out) }
            return .take
        }
        guard run > 0 else { return }
        if transactionStarted == nil { transactionStarted = proxy.loop.turnTime }
        poolRef._withUnsafeGuaranteedRef { $0.stats.totalReceived &+= UInt64(run) }
        server.sendRun(from: &framer, run)
    }

    private func handleFrame(_ frame: MessageFramer.Frame) {
        if let server, !waiting {
            process(frame, server)
            return
        }
        if transactionMode && !waiting, case .message(let type, let bytes) = frame, answerWithoutServer(type, bytes) {
            return
        }
        if case .message(let type, _) = frame, type == FrontendType.terminate {
            closeReason = "client terminated"
            phase = .closed
            transport?.close()
            return
        }
        pendingFrame = frame
        if !waiting, let pool {
            waiting = true
            pool.acquire(self)
        }
    }

    /// Transaction mode, no server attached and none asked for: a named Parse, a statement Close, Flush and Sync
    /// need no server. Answering them here keeps drivers that prepare synchronously (pgbench -M prepared runs
    /// PQprepare while other clients on its thread hold servers in transactions) from deadlocking on a full pool;
    /// the statement is prepared on a server when it is first bound or described.
    private func answerWithoutServer(_ type: UInt8, _ bytes: ByteBuffer) -> Bool {
        switch type {
        case FrontendType.parse, FrontendType.close:
            // The unnamed statement and portals need a server (checked without decoding).
            if Self.unnamedExpectation(type, bytes) != nil { return false }
            guard let message = try? FrontendMessage.decode(
                type: type, body: bytes.getSlice(at: bytes.readerIndex + 5, length: bytes.readableBytes - 5)!)
            else { return false }
            switch message {
            case .parse(let name, let query, let types) where !name.isEmpty:
                if mightAffectSession(query), let effect = stateEffect(query), effect != .none { return false }
                // A name in use gets PostgreSQL's 42P05 from a server (`extended`).
                if statements[name] != nil { return false }
                // The Parse goes to a server when one is free (or can be dialed), so an error in the SQL reaches the
                // client at Parse as on PostgreSQL (a Parse+Sync prepare would otherwise succeed and fail later, at
                // Bind), also for text a server has parsed before and that DDL broke since (`checkParse`). With
                // every connection busy it is answered here: waiting could deadlock a synchronous preparer whose
                // thread's other clients hold those connections (pgbench -M prepared).
                if pool!.hasServerWithoutWaiting { return false }
                let serverName = poolStatementName(query, types)
                statements[name] = ClientStatement(
                    serverName: serverName, query: query, parameterTypes: types,
                    shape: pool!.latestShapes[serverName])
                out.writeEmptyMessage(BackendType.parseComplete)
                return true
            case .close(let kind, let name) where kind == UInt8(ascii: "S") && !name.isEmpty:
                statements.removeValue(forKey: name)
                out.writeEmptyMessage(BackendType.closeComplete)
                return true
            default:
                return false
            }
        case FrontendType.sync:
            // Outside a transaction with nothing outstanding, ReadyForQuery is all a server would say.
            out.writeReadyForQuery(.idle)
            return true
        case FrontendType.query:
            // DEALLOCATE of one of the client's statements: outside a transaction it is bookkeeping only.
            guard let name = bytes.withUnsafeReadableBytes({ deallocatesOwnStatement(query: $0) }) else { return false }
            statements.removeValue(forKey: name)
            out.writeCommandComplete("DEALLOCATE")
            out.writeReadyForQuery(.idle)
            return true
        case FrontendType.flush:
            return true
        default:
            return false
        }
    }

    /// The pool leased `server` to this client.
    func attached(_ server: ServerConnection) {
        self.server = server
        waiting = false
        // No output buffer borrowed here: runs go to the socket from the read buffer, and `out` is written only
        // for fake responses, leftovers and pool64's own messages (`sendToClient` borrows; a fake written to the
        // shared empty buffer gets storage of its own by copy-on-write).
        synchronizeParameters(server)
        if let f = pendingFrame {
            pendingFrame = nil
            process(f, server)
        }
        // The rest of what the client sent meanwhile is still in the framer (unless this runs inside
        // readFrames, which goes on by itself).
        if !readingFrames, self.server === server { readFrames() }
        // Inside the client's own read its bytes are still in the read buffer: only a drained spare goes back here.
        framer.giveBackSpare(to: proxy.loop)
        server.flush()
        flushToClient()
        server.setReading(socket?._withUnsafeGuaranteedRef { $0.isWritable } ?? transport?.isWritable ?? true)
    }

    /// Makes the server's session parameters match what this client asked for, before its first message.
    private func synchronizeParameters(_ server: ServerConnection) {
        let key = parametersKey
        if server.syncedParametersKey == key { return }
        defer { server.syncedParametersKey = key }
        var sql = ""
        var sets: [String] = []
        for (k, v) in parameters where server.parameters[k] != v {
            guard Self.isSafeName(k) else { continue }
            // set_config takes the value as raw text, exactly as a startup parameter does, so list values such
            // as search_path=a,b keep their meaning (SET k TO 'a,b' would make one quoted name of them).
            sets.append("set_config('\(k)', '\(v.replacingOccurrences(of: "'", with: "''"))', false)")
            if !ServerConnection.reportedParameters.contains(k) { server.parameters[k] = v }
        }
        if !sets.isEmpty { sql += "SELECT " + sets.joined(separator: ", ") + ";" }
        for (k, v) in server.parameters where parameters[k] == nil && server.initialParameters[k] != v {
            guard Self.isSafeName(k) else { continue }
            sql += "RESET \(k);"
            if server.initialParameters[k] == nil { server.parameters[k] = nil }
        }
        guard !sql.isEmpty else { return }
        var q = allocator.buffer(capacity: sql.utf8.count + 8)
        q.writeQuery(sql)
        server.write(&q)
        server.tracker.expect(.query(swallow: true), out: &out)
    }

    private static func isSafeName(_ k: String) -> Bool {
        !k.isEmpty && k.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 65 && $0 <= 90) || ($0 >= 48 && $0 <= 57) || $0 == 95 || $0 == 46 }
    }

    /// A ParameterStatus from the server while this client is attached.
    func parameterChanged(_ name: String, _ value: String) {
        parameters[name] = value
    }

    /// Relays one client message to `server`, rewriting statement names in transaction mode.
    private func process(_ frame: MessageFramer.Frame, _ server: ServerConnection) {
        guard let pool else { return }
        if transactionStarted == nil { transactionStarted = proxy.loop.turnTime }
        switch frame {
        case .piece(_, let bytes, _):
            pool.stats.totalReceived &+= UInt64(bytes.readableBytes)
            server.writeSlice(bytes)
            return
        case .message(let type, let bytes):
            pool.stats.totalReceived &+= UInt64(bytes.readableBytes)
            switch type {
            case FrontendType.query:
                if transactionMode, let name = bytes.withUnsafeReadableBytes({ deallocatesOwnStatement(query: $0) }) {
                    deallocate(name, server)
                    return
                }
                inspect(query: bytes, server)
                unnamedUnbound = false
                server.queue(bytes)
                server.tracker.expect(.query(swallow: false), out: &out)
                if parametersReset { resynchronizeParameters(server) }
            case FrontendType.sync:
                server.queue(bytes)
                server.tracker.expect(.sync, out: &out)
                if parametersReset { resynchronizeParameters(server) }
            case FrontendType.execute:
                server.queue(bytes)
                server.tracker.expect(.execute, out: &out)
            case FrontendType.parse, FrontendType.bind, FrontendType.describe, FrontendType.close:
                if transactionMode {
                    extended(type, bytes, server)
                } else {
                    if type == FrontendType.parse { inspect(parse: bytes, server) }
                    server.queue(bytes)
                    server.tracker.expect(Self.expectation(for: type), out: &out)
                }
            case FrontendType.flush, FrontendType.copyData, FrontendType.copyDone, FrontendType.copyFail:
                server.queue(bytes)
            case FrontendType.functionCall:
                server.queue(bytes)
                server.tracker.expect(.query(swallow: false), out: &out)
            case FrontendType.terminate:
                closeReason = "client terminated"
                transport?.close()
            default:
                proxy.counters.protocolErrors &+= 1
                fail(
                    ErrorFields.fatal("08P01", "invalid frontend message type \(type)"), reason: "protocol violation")
            }
        }
    }

    private static func expectation(for type: UInt8) -> Expectation {
        switch type {
        case FrontendType.parse: return .parse(swallow: false)
        case FrontendType.bind: return .bind
        case FrontendType.describe: return .describe
        default: return .close
        }
    }

    /// Transaction mode: named statements live under pool-wide server names and are prepared on demand on whichever
    /// server connection runs them (DESIGN decision 2).
    private func extended(_ type: UInt8, _ bytes: ByteBuffer, _ server: ServerConnection) {
        let message: FrontendMessage
        do {
            message = try FrontendMessage.decode(
                type: type, body: bytes.getSlice(at: bytes.readerIndex + 5, length: bytes.readableBytes - 5)!)
        } catch {
            proxy.counters.protocolErrors &+= 1
            fail(ErrorFields.fatal("08P01", "invalid message: \(error)"), reason: "protocol violation")
            return
        }
        switch message {
        case .parse(let name, let query, let types):
            if mightAffectSession(query), let effect = stateEffect(query), effect != .none { apply(effect, server) }
            guard !name.isEmpty else {
                unnamedUnbound = true
                server.queue(bytes)
                server.tracker.expect(.parse(swallow: false), out: &out)
                return
            }
            if let existing = statements[name] {
                duplicateParse(of: existing, name: name, server)
                return
            }
            let serverName = poolStatementName(query, types)
            // The shape comes from the server's Describe (`statementShaped`).
            statements[name] = ClientStatement(serverName: serverName, query: query, parameterTypes: types)
            if server.hasPrepared(serverName) {
                checkParse(query, types, serverName: serverName, clientName: name, on: server)
            } else {
                prepare(serverName, query, types, on: server, swallow: false, clientName: name)
            }
        case .bind(let portal, let statement, let rest):
            guard !statement.isEmpty, let s = readyToRun(statement, type, bytes, on: server) else {
                if statement.isEmpty { unnamedUnbound = false }
                if statement.isEmpty || statements[statement] == nil {
                    server.queue(bytes)
                    server.tracker.expect(.bind, out: &out)
                }
                return
            }
            var b = allocator.buffer(capacity: bytes.readableBytes + 16)
            b.writeBind(portal: portal, statement: s, rest: rest)
            server.write(&b)
            server.tracker.expect(.bind, out: &out)
        case .describe(let kind, let name):
            guard kind == UInt8(ascii: "S"), !name.isEmpty, let s = readyToRun(name, type, bytes, on: server) else {
                if kind != UInt8(ascii: "S") || name.isEmpty || statements[name] == nil {
                    server.queue(bytes)
                    server.tracker.expect(.describe, out: &out)
                }
                return
            }
            var b = allocator.buffer(capacity: s.utf8.count + 8)
            b.writeDescribeOrClose(FrontendType.describe, kind: kind, name: s)
            server.write(&b)
            server.tracker.expect(.describe, out: &out)
        case .close(let kind, let name):
            if kind == UInt8(ascii: "S"), !name.isEmpty, statements.removeValue(forKey: name) != nil {
                // The server copy stays for other clients; the LRU closes it when space is needed.
                server.tracker.expect(.fakeCloseComplete, out: &out)
                return
            }
            server.queue(bytes)
            server.tracker.expect(.close, out: &out)
        case .execute, .sync, .flush, .query, .terminate, .other:
            server.queue(bytes)
        }
    }

    /// The statement name when the Query message `raw` (header included) is `DEALLOCATE [PREPARE] name` naming one
    /// of this client's protocol-level statements (which live on servers under pool names); nil otherwise, including
    /// names from SQL `PREPARE` (those pin the client and pass through).
    func deallocatesOwnStatement(query raw: UnsafeRawBufferPointer) -> String? {
        guard raw.count > 6, !statements.isEmpty else { return nil }
        guard let name = SessionStateDetector.deallocateName(UnsafeRawBufferPointer(rebasing: raw[5..<(raw.count - 1)]))
        else { return nil }
        return statements[name] == nil ? nil : name
    }

    /// DEALLOCATE of the client's statement `name` while a server is attached (inside a transaction): the server
    /// runs the equivalent, so the reply and the transaction state are PostgreSQL's own (25P02 in a failed
    /// transaction). The pool-named statement is deallocated on this server (others re-prepare it on demand), or,
    /// when this server never prepared it, `DEALLOCATE ALL` stands in: its only effect is on statements pool64
    /// prepares again on demand, and its tag is replaced by `DEALLOCATE` (`ResponseTracker.Decision
    /// .replaceWithDeallocate`). Nothing is forgotten until the server has run it
    /// (`ResponseTracker.StatementEvent.deallocated`): a refused DEALLOCATE leaves the statement in place, as on
    /// PostgreSQL, instead of on the server under a name pool64 no longer knows.
    private func deallocate(_ name: String, _ server: ServerConnection) {
        guard let statement = statements[name] else { return }
        let onServer = server.prepared[statement.serverName] != nil
        let sql = onServer ? "DEALLOCATE \(statement.serverName)" : "DEALLOCATE ALL"
        var q = allocator.buffer(capacity: sql.utf8.count + 6)
        q.writeQuery(sql)
        server.write(&q)
        server.tracker.expect(.deallocate, name: onServer ? statement.serverName : "", clientName: name)
    }

    /// The server ran the DEALLOCATE standing in for the client's `DEALLOCATE name` (`serverName` empty: it was
    /// `DEALLOCATE ALL`).
    func deallocated(_ name: String, serverName: String) {
        if serverName.isEmpty || statements[name]?.serverName == serverName { statements.removeValue(forKey: name) }
    }

    /// A named Parse of a name the client already uses: PostgreSQL answers 42P05 (`prepared statement "…" already
    /// exists`) and skips to Sync. The server produces that error, so what follows and the transaction state are its
    /// own: the existing statement is made sure to be on `server`, then parsed again under its server name.
    private func duplicateParse(of existing: ClientStatement, name: String, _ server: ServerConnection) {
        _ = ensurePrepared(name, on: server)
        var b = allocator.buffer(capacity: existing.query.utf8.count + existing.serverName.utf8.count + 16)
        b.writeParse(name: existing.serverName, query: existing.query, parameterTypes: existing.parameterTypes)
        server.write(&b)
        server.duplicateParses[existing.serverName] = name
        // A plain Parse expectation: its failure must not make the existing statement look unprepared.
        server.tracker.expect(.parse(swallow: false), out: &out)
    }

    /// What to expect for a Parse/Bind/Describe/Close that names only the unnamed statement (or a portal), found
    /// from the raw bytes without decoding strings; nil when a statement name needs mapping.
    static func unnamedExpectation(_ type: UInt8, _ b: ByteBuffer) -> Expectation? {
        b.withUnsafeReadableBytes { unnamedExpectation(type, raw: $0) }
    }

    /// `unnamedExpectation` on a message's bytes (header included).
    static func unnamedExpectation(_ type: UInt8, raw: UnsafeRawBufferPointer) -> Expectation? {
        let p = raw.bindMemory(to: UInt8.self)
        let i = 5
        guard i < p.count else { return nil }
        switch type {
        case FrontendType.parse:
            return p[i] == 0 ? .parse(swallow: false) : nil
        case FrontendType.bind:
            // portal name (C string), then the statement name
            var j = i
            while j < p.count, p[j] != 0 { j += 1 }
            return j + 1 < p.count && p[j + 1] == 0 ? .bind : nil
        case FrontendType.describe, FrontendType.close:
            let e: Expectation = type == FrontendType.describe ? .describe : .close
            if p[i] == UInt8(ascii: "P") { return e }
            return i + 1 < p.count && p[i + 1] == 0 ? e : nil
        default:
            return nil
        }
    }

    /// Whether a Parse's query (its bytes, header included) needs the session-state detector.
    static func queryMightAffectSession(parse raw: UnsafeRawBufferPointer) -> Bool {
        guard let q = parseQuery(raw) else { return false }
        return SessionStateDetector.mightAffectSession(q)
    }

    /// The query text of a Parse message (header included in `raw`), without decoding: type, length, the statement
    /// name up to its NUL, then the query up to its NUL. nil when the message is cut short.
    @inline(__always)
    static func parseQuery(_ raw: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        guard raw.count > 5, let base = raw.baseAddress else { return nil }
        // The unnamed statement (the usual case) is one NUL: no scan for the name.
        var start = 6
        if raw[5] != 0 {
            guard let nul = memchr(base + 5, 0, raw.count - 5) else { return nil }
            start = nul - UnsafeMutableRawPointer(mutating: base) + 1
        }
        guard start <= raw.count else { return nil }
        let q = base + start
        let n = memchr(q, 0, raw.count - start).map { $0 - UnsafeMutableRawPointer(mutating: q) } ?? (raw.count - start)
        return UnsafeRawBufferPointer(start: q, count: n)
    }

    /// Whether a Query message's text (header included in `raw`) needs the session-state detector.
    static func queryMightAffectSession(query raw: UnsafeRawBufferPointer) -> Bool {
        guard raw.count > 6 else { return false }
        return SessionStateDetector.mightAffectSession(UnsafeRawBufferPointer(rebasing: raw[5..<(raw.count - 1)]))
    }

    /// The server name to send the client's Bind or Describe (`type`, `bytes`) of its statement `name` with, the
    /// statement prepared on `server` first when it lacks it; nil when the message is not to be sent (an unknown
    /// name, which the caller sends as is for the server's 26000, or a message held or answered here).
    ///
    /// PostgreSQL fixes a prepared statement's result shape when it is prepared, and answers 0A000 `cached plan
    /// must not change result type` once DDL changes it. pool64 prepares a statement on each server the first time
    /// the client's statement runs there, which may be after such DDL: so a client statement whose shape is known
    /// waits for the new copy's Describe (a round trip, once per server and statement) before it runs, and a copy
    /// whose shape differs gets PostgreSQL's answer (`sendStale`) instead of rows of another shape.
    private func readyToRun(
        _ name: String, _ type: UInt8, _ bytes: ByteBuffer, on server: ServerConnection
    ) -> String? {
        guard let s = statements[name] else { return nil }
        if !server.hasPrepared(s.serverName) {
            prepare(s.serverName, s.query, s.parameterTypes, on: server, swallow: true)
            guard s.shape != nil else { return s.serverName }
            // Flush: the server answers the Parse and Describe now, not at the client's Sync behind this message.
            var flush = allocator.buffer(capacity: 5)
            flush.writeEmptyMessage(FrontendType.flush)
            server.write(&flush)
            holdingForShape = true
            heldForShape = .message(type: type, frame: bytes)
            return nil
        }
        // In a failed transaction PostgreSQL refuses the Bind (25P02) before it looks at the plan.
        if let given = s.shape, let here = server.shapes[s.serverName], given != here,
            server.tracker.transactionStatus != .failed
        {
            sendStale(s.serverName, on: server)
            return nil
        }
        return s.serverName
    }

    /// The copy of `serverName` on `server` has another result shape than the client's statement: PostgreSQL would
    /// answer 0A000 and go into its error state (skip to Sync; a transaction block fails). A Bind of a statement no
    /// server holds produces that state on the server itself; the tracker's `.staleBind` has the relay replace its
    /// error with the 0A000 (`Pool.serverMessage`). New Parses of the SQL get fresh server names from now on.
    private func sendStale(_ serverName: String, on server: ServerConnection) {
        var b = allocator.buffer(capacity: 48)
        b.writeBind(portal: "", statement: "pool64_stale_plan", rest: ByteBuffer(bytes: [0, 0, 0, 0, 0, 0]))
        server.write(&b)
        server.tracker.expect(.staleBind, out: &out)
        pool?.planInvalidated()
    }

    /// The Describe of the statement a held message waits for came back, or an error ended the wait: run the held
    /// message (or, after an error, drop it: the server skips to Sync and would not answer it either), then what
    /// the client sent behind it.
    func shapeArrived(_ server: ServerConnection) {
        holdingForShape = false
        guard self.server === server else { return }
        guard case .message(let type, let bytes)? = heldForShape else {
            if !readingFrames { readFrames() }
            return
        }
        heldForShape = nil
        if let name = Self.statementName(type, bytes), let s = statements[name], server.shapes[s.serverName] == nil {
            // No shape: the prepare failed (its error went to the client) and the server is skipping to Sync.
        } else {
            extended(type, bytes, server)
        }
        if !readingFrames { readFrames() }
    }

    /// The statement a Bind or Describe names.
    private static func statementName(_ type: UInt8, _ bytes: ByteBuffer) -> String? {
        guard let m = try? FrontendMessage.decode(
            type: type, body: bytes.getSlice(at: bytes.readerIndex + 5, length: bytes.readableBytes - 5)!)
        else { return nil }
        switch m {
        case .bind(_, let statement, _): return statement
        case .describe(_, let name): return name
        default: return nil
        }
    }

    /// The client's Parse of `name` was run by the server (under its pool name, or into `pool64_check`): `shape` is
    /// what the client was given. `stale` when copies of that pool name elsewhere have another shape (DDL came
    /// between): the client's statement is new, as on PostgreSQL, so it takes a fresh pool name and the pool stops
    /// handing out the old one.
    func statementShaped(_ name: String, serverName: String, shape: Int, stale: Bool) {
        guard var s = statements[name], s.serverName == serverName, s.shape == nil else { return }
        s.shape = shape
        if stale, let pool {
            pool.planInvalidated()
            s = ClientStatement(
                serverName: poolStatementName(s.query, s.parameterTypes), query: s.query,
                parameterTypes: s.parameterTypes, shape: shape)
        }
        statements[name] = s
    }

    /// The pool name for the client's statement text. Shared by the clients whose sessions resolve names alike: the
    /// same startup search_path (statements keep the search_path they were prepared under, so a schema-per-tenant
    /// client must never run a copy another tenant prepared). Private to a pinned client, whose session state (`SET
    /// search_path` pins) may resolve names unlike any other session's.
    func poolStatementName(_ query: String, _ types: [UInt32]) -> String {
        guard let pool else { return "" }
        if pinned { return pool.privateStatementName() }
        let searchPath = parameters["search_path"]
            ?? parameters.first { $0.key.lowercased() == "search_path" }?.value
        return pool.serverStatementName(query: query, types: types, searchPath: searchPath)
    }

    /// The client's named Parse of SQL `server` already holds as `serverName`: the server parses the text afresh
    /// into `pool64_check` (closed first; Describe behind it), so the client gets PostgreSQL's answer now (42P01
    /// after its table was dropped) and the shape the text has now; the client's next messages wait for that
    /// (`holdingForShape`), since a shape that changed under the pool name means a fresh name for the client.
    private func checkParse(
        _ query: String, _ types: [UInt32], serverName: String, clientName: String, on server: ServerConnection
    ) {
        var b = allocator.buffer(capacity: query.utf8.count + 64)
        b.writeDescribeOrClose(FrontendType.close, kind: UInt8(ascii: "S"), name: Self.checkName)
        b.writeParse(name: Self.checkName, query: query, parameterTypes: types)
        b.writeDescribeOrClose(FrontendType.describe, kind: UInt8(ascii: "S"), name: Self.checkName)
        b.writeEmptyMessage(FrontendType.flush)
        server.write(&b)
        server.tracker.expect(.scratchClose, out: &out)
        server.tracker.expect(.checkParse, name: serverName, clientName: clientName)
        server.tracker.expect(.checkDescribe, name: serverName, clientName: clientName)
        holdingForShape = true
    }

    /// The scratch statement `checkParse` parses into (pool names are `pool64_` and a number).
    static let checkName = "pool64_check"

    /// The server name of the client's statement, prepared on `server` first when it lacks it.
    private func ensurePrepared(_ name: String, on server: ServerConnection) -> String? {
        guard let s = statements[name] else { return nil }
        if !server.hasPrepared(s.serverName) {
            prepare(s.serverName, s.query, s.parameterTypes, on: server, swallow: true)
        }
        return s.serverName
    }

    /// The client's named Parse of `name` failed on the server (or was skipped after an earlier error).
    func parseFailed(_ name: String, serverName: String) {
        if statements[name]?.serverName == serverName { statements.removeValue(forKey: name) }
    }

    private func prepare(
        _ serverName: String, _ query: String, _ types: [UInt32], on server: ServerConnection, swallow: Bool,
        clientName: String? = nil
    ) {
        var b = allocator.buffer(capacity: query.utf8.count + serverName.utf8.count + 16)
        // Believed prepared from here on, so what follows in this batch uses it; the tracker reports a Parse the
        // server fails or skips (`Pool.settleStatements`), and the name is forgotten again.
        if let victim = server.addPrepared(serverName, limit: proxy.config.maxPreparedStatements) {
            b.writeDescribeOrClose(FrontendType.close, kind: UInt8(ascii: "S"), name: victim)
            server.tracker.expect(.evict, name: victim)
        }
        b.writeParse(name: serverName, query: query, parameterTypes: types)
        // The copy's result shape, for `readyToRun`'s comparison (answered within the same round trip).
        b.writeDescribeOrClose(FrontendType.describe, kind: UInt8(ascii: "S"), name: serverName)
        server.write(&b)
        server.tracker.expect(.prepare(swallow: swallow), name: serverName, clientName: clientName)
        server.tracker.expect(.describeShape, name: serverName, clientName: clientName)
    }

    private func inspect(query frame: ByteBuffer, _ server: ServerConnection) {
        let length = max(0, frame.readableBytes - 6)
        let suspicious = frame.withUnsafeReadableBytes { raw in
            SessionStateDetector.mightAffectSession(UnsafeRawBufferPointer(rebasing: raw[5..<(5 + length)]))
        }
        guard suspicious, let sql = frame.getString(at: frame.readerIndex + 5, length: length) else { return }
        if let effect = stateEffect(sql), effect != .none { apply(effect, server) }
    }

    /// Session mode: a Parse passes through unchanged, but a RESET or DISCARD ALL in it must still bring back the
    /// client's startup values (`apply`, then `resynchronizeParameters` behind the next Sync).
    private func inspect(parse frame: ByteBuffer, _ server: ServerConnection) {
        let sql: String? = frame.withUnsafeReadableBytes { raw in
            guard let q = Self.parseQuery(raw), SessionStateDetector.mightAffectSession(q) else { return nil }
            return String(decoding: q, as: UTF8.self)
        }
        guard let sql, let effect = stateEffect(sql), effect != .none else { return }
        apply(effect, server)
    }

    private func mightAffectSession(_ sql: String) -> Bool {
        var sql = sql
        return sql.withUTF8 { SessionStateDetector.mightAffectSession(UnsafeRawBufferPointer($0)) }
    }

    private func stateEffect(_ sql: String) -> SessionStateDetector.Effect? {
        let effect = SessionStateDetector.effect(of: sql)
        if transactionMode { return effect }
        // Session mode: the client keeps its server connection, so nothing needs pinning; RESET and DISCARD ALL still
        // return that connection to the pool's startup values instead of the client's.
        switch effect {
        case .reset, .discardAll: return effect
        default: return nil
        }
    }

    private func apply(_ effect: SessionStateDetector.Effect, _ server: ServerConnection) {
        switch effect {
        case .none: break
        case .pin(let why):
            if !pinned {
                pinned = true
                pool?.pinnedClients += 1
                logger.debug("client pinned to its server connection", metadata: ["why": "\(why)"])
            }
        case .discardAll:
            statements.removeAll()
            server.forgetPrepared()
            server.parameters = server.initialParameters
            parameters = startupParameters
            parametersReset = true
        case .deallocateAll:
            statements.removeAll()
            server.forgetPrepared()
        case .reset(let name):
            // The server goes back to its connection's defaults, which are the pool's startup values; the client's
            // session defaults are its own startup values, so those are re-applied right after (resynchronize).
            if let name {
                let key = server.parameters.keys.first { $0.lowercased() == name } ?? name
                server.parameters[key] = server.initialParameters[key]
                let own = parameters.keys.first { $0.lowercased() == name } ?? key
                parameters[own] = startupParameters[own]
            } else {
                server.parameters = server.initialParameters
                parameters = startupParameters
            }
            parametersReset = true
        }
    }

    /// After a RESET or DISCARD ALL has been queued: SET the client's startup values again on the same server, behind
    /// it (swallowed; its ParameterStatus messages reach the client, see `Pool.serverMessage`). Extended-protocol
    /// RESETs wait for their Sync so nothing is injected inside a Parse/Bind/Execute sequence.
    private func resynchronizeParameters(_ server: ServerConnection) {
        // `apply` changed server.parameters, which already cleared server.syncedParametersKey.
        parametersReset = false
        synchronizeParameters(server)
    }

    /// A ReadyForQuery went through `server`: count it, and hand the server back when the transaction is over.
    func readyForQuery(_ server: ServerConnection, forwarded: Bool) {
        guard let poolRef, server.tracker.isIdle || forwarded else { return }
        poolRef._withUnsafeGuaranteedRef { readyForQuery(server, forwarded: forwarded, pool: $0) }
    }

    /// `Pool.maintain`: stop holding `server` for an unbound unnamed statement (the client is idle).
    func releaseUnboundHold(_ server: ServerConnection) {
        guard let pool, self.server === server, unnamedUnbound, !pinned else { return }
        unnamedUnbound = false
        self.server = nil
        pool.release(server, needsReset: false)
    }

    private func readyForQuery(_ server: ServerConnection, forwarded: Bool, pool: Pool) {
        if forwarded {
            pool.stats.totalQueryCount &+= 1
        }
        guard server.tracker.isIdle else { return }
        if let started = transactionStarted {
            let us = UInt64(max(0, (proxy.loop.turnTime - started).nanoseconds) / 1000)
            pool.stats.totalXactCount &+= 1
            pool.stats.totalXactTimeUs &+= us
            pool.stats.totalQueryTimeUs &+= us
            pool.xactHistogram.record(micros: us)
            transactionStarted = nil
        }
        if transactionMode && !pinned && !unnamedUnbound {
            self.server = nil
            // The server handler flushes its client at the end of a read; this one is leaving, so it asks the loop
            // (its response goes after the next waiter's query has gone to this server).
            flushAtEndOfTurn()
            pool.release(server, needsReset: false)
        }
    }
}
