import NIOCore
import Pool64Wire
import Testing

@testable import Pool64Core

@Suite struct ResponseTrackerTests {
    let Z = BackendType.readyForQuery

    func types(_ b: ByteBuffer) -> [UInt8] {
        var b = b
        var out: [UInt8] = []
        while let t = b.readInteger(as: UInt8.self), let len = b.readInteger(as: Int32.self) {
            out.append(t)
            b.moveReaderIndex(forwardBy: Int(len) - 4)
        }
        return out
    }

    @Test func fakeParseCompleteGoesOutImmediatelyWhenNothingIsAhead() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.fakeParseComplete, out: &out)
        #expect(types(out) == [BackendType.parseComplete])
        t.expect(.bind, out: &out)
        t.expect(.execute, out: &out)
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.bindComplete) == .forward)
        #expect(t.receive(BackendType.dataRow) == .forward)
        #expect(t.receive(BackendType.commandComplete) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        let idle = t.isIdle  // a mutating getter (see ResponseTracker.isIdle)
        #expect(idle)
    }

    @Test func fakeWaitsForEarlierResponses() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.bind, out: &out)
        t.expect(.execute, out: &out)
        t.expect(.fakeParseComplete, out: &out)
        t.expect(.sync, out: &out)
        #expect(out.readableBytes == 0)
        _ = t.receive(BackendType.bindComplete)
        t.emitReadyFakes(out: &out)
        #expect(out.readableBytes == 0)
        _ = t.receive(BackendType.commandComplete)
        t.emitReadyFakes(out: &out)
        #expect(types(out) == [BackendType.parseComplete])
    }

    @Test func injectedParseIsSwallowed() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.parse(swallow: true), out: &out)
        t.expect(.bind, out: &out)
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.parseComplete) == .drop)
        #expect(t.receive(BackendType.bindComplete) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        let idle = t.isIdle  // a mutating getter (see ResponseTracker.isIdle)
        #expect(idle)
    }

    @Test func errorSkipsToSyncIncludingFakes() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.bind, out: &out)
        t.expect(.execute, out: &out)
        t.expect(.fakeCloseComplete, out: &out)
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.errorResponse) == .forward)
        t.emitReadyFakes(out: &out)
        #expect(out.readableBytes == 0)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        let idle = t.isIdle  // a mutating getter (see ResponseTracker.isIdle)
        #expect(idle)
    }

    @Test func swallowedQueryDropsEverythingThroughReadyForQuery() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.query(swallow: true), out: &out)
        t.expect(.query(swallow: false), out: &out)
        #expect(t.receive(BackendType.commandComplete) == .drop)
        #expect(t.receive(BackendType.parameterStatus) == .drop)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .drop)
        let idle = t.isIdle  // a mutating getter (see ResponseTracker.isIdle)
        #expect(!idle)
        #expect(t.receive(BackendType.rowDescription) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "T")) == .forward)
        let idleAfter = t.isIdle
        #expect(!idleAfter)
        #expect(t.transactionStatus == .inTransaction)
    }

    @Test func pipelinedSyncsKeepServerUntilLast() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        for _ in 0..<3 {
            t.expect(.parse(swallow: false), out: &out)
            t.expect(.bind, out: &out)
            t.expect(.execute, out: &out)
            t.expect(.sync, out: &out)
        }
        for i in 0..<3 {
            _ = t.receive(BackendType.parseComplete)
            _ = t.receive(BackendType.bindComplete)
            _ = t.receive(BackendType.commandComplete)
            _ = t.receive(Z, readyStatus: UInt8(ascii: "I"))
            let idle = t.isIdle  // a mutating getter (see ResponseTracker.isIdle)
            #expect(idle == (i == 2))
        }
    }
}

@Suite struct StatementEventTests {
    let Z = BackendType.readyForQuery

    @Test func aPreparedStatementIsReportedOnParseComplete() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.evict, name: "pool64_1")
        t.expect(.prepare(swallow: true), name: "pool64_9")
        t.expect(.bind, out: &out)
        t.expect(.sync, out: &out)
        let before = t.hasStatementEvents
        #expect(!before)
        #expect(t.receive(BackendType.closeComplete) == .drop)
        #expect(t.receive(BackendType.parseComplete) == .drop)
        #expect(t.receive(BackendType.bindComplete) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.prepared("pool64_9")])
        #expect(t.takeStatementEvents().isEmpty)
    }

    @Test func aFailedOrSkippedParseIsReportedSoItIsNotBelievedPrepared() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        // The client's own named Parse (forwarded ParseComplete) fails; the eviction and the on-demand prepare
        // behind it are skipped by the server until Sync.
        t.expect(.prepare(swallow: false), name: "pool64_2", clientName: "mine")
        t.expect(.evict, name: "pool64_1")
        t.expect(.prepare(swallow: true), name: "pool64_3")
        t.expect(.bind, out: &out)
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.errorResponse) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.failed("pool64_2", clientName: "mine"), .evictionSkipped("pool64_1"), .failed("pool64_3", clientName: nil)])
        let idle = t.isIdle
        #expect(idle)
    }

    @Test func aForwardedPrepareReachesTheClient() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.prepare(swallow: false), name: "pool64_4")
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.parseComplete) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.prepared("pool64_4")])
    }

    // A DEALLOCATE in a failed transaction gets 25P02 and drops nothing: reporting it would leave the statement on
    // the server under a name pool64 forgot (every later Parse of that SQL there: 42P05).
    @Test func aDeallocateIsReportedOnlyWhenTheServerRanIt() {
        var t = ResponseTracker()
        t.expect(.deallocate, name: "pool64_5", clientName: "s1")
        #expect(t.receive(BackendType.errorResponse) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "E")) == .forward)
        let refused = t.hasStatementEvents
        #expect(!refused)
        // DEALLOCATE ALL standing in on a server that never prepared the statement: the client sees `DEALLOCATE`.
        t.expect(.deallocate, name: "", clientName: "s2")
        #expect(t.receive(BackendType.commandComplete) == .replaceWithDeallocate)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "T")) == .forward)
        #expect(t.takeStatementEvents() == [.deallocated("", clientName: "s2")])
        // The refusal does not carry over to the next one.
        t.expect(.deallocate, name: "pool64_6", clientName: "s3")
        #expect(t.receive(BackendType.commandComplete) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "T")) == .forward)
        #expect(t.takeStatementEvents() == [.deallocated("pool64_6", clientName: "s3")])
    }

    @Test func aShapeDescribeIsSwallowedAndReportedWithItsNames() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.prepare(swallow: false), name: "pool64_1", clientName: "s1")
        t.expect(.describeShape, name: "pool64_1", clientName: "s1")
        t.expect(.bind, out: &out)
        t.expect(.sync, out: &out)
        #expect(t.shapeChecks == 1)
        #expect(t.receive(BackendType.parseComplete) == .forward)
        #expect(t.receive(BackendType.parameterDescription) == .drop)
        #expect(t.receive(BackendType.rowDescription) == .dropDescription)
        t.described(shape: 42)
        #expect(t.shapeChecks == 0)
        #expect(t.receive(BackendType.bindComplete) == .forward)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.prepared("pool64_1"), .described("pool64_1", clientName: "s1", shape: 42)])
        // NoData describes a statement without rows the same way.
        t.expect(.prepare(swallow: true), name: "pool64_2")
        t.expect(.describeShape, name: "pool64_2")
        #expect(t.receive(BackendType.parseComplete) == .drop)
        #expect(t.receive(BackendType.parameterDescription) == .drop)
        #expect(t.receive(BackendType.noData) == .dropDescription)
        t.described(shape: 0)
        #expect(t.takeStatementEvents() == [.prepared("pool64_2"), .described("pool64_2", clientName: nil, shape: 0)])
    }

    @Test func aShapeDescribeSkippedAfterAFailedParseReportsOnlyTheFailure() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.prepare(swallow: true), name: "pool64_3")
        t.expect(.describeShape, name: "pool64_3")
        t.expect(.bind, out: &out)
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.errorResponse) == .forward)
        #expect(t.shapeChecks == 0)
        // Nothing to describe: a stray call does not invent an event.
        t.described(shape: 7)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.failed("pool64_3", clientName: nil)])
    }

    @Test func aFreshParseOfKnownSQLIsTheClientsParseAndReportsItsShape() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.scratchClose, out: &out)
        t.expect(.checkParse, name: "pool64_4", clientName: "s2")
        t.expect(.checkDescribe, name: "pool64_4", clientName: "s2")
        t.expect(.sync, out: &out)
        #expect(t.shapeChecks == 1)
        #expect(t.receive(BackendType.closeComplete) == .drop)
        #expect(t.receive(BackendType.parseComplete) == .forward)
        #expect(t.receive(BackendType.parameterDescription) == .drop)
        #expect(t.receive(BackendType.rowDescription) == .dropDescription)
        t.described(shape: 9)
        #expect(t.shapeChecks == 0)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.checked("pool64_4", clientName: "s2", shape: 9)])
        // The text no longer parses (its table was dropped): the client's name is reported, nothing about the pool's.
        t.expect(.scratchClose, out: &out)
        t.expect(.checkParse, name: "pool64_4", clientName: "s3")
        t.expect(.checkDescribe, name: "pool64_4", clientName: "s3")
        t.expect(.sync, out: &out)
        #expect(t.receive(BackendType.closeComplete) == .drop)
        #expect(t.receive(BackendType.errorResponse) == .forward)
        #expect(t.shapeChecks == 0)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "I")) == .forward)
        #expect(t.takeStatementEvents() == [.checkFailed("pool64_4", clientName: "s3")])
    }

    @Test func theStaleBindIsTheHeadWhenItsErrorArrives() {
        var t = ResponseTracker()
        var out = ByteBuffer()
        t.expect(.staleBind, out: &out)
        t.expect(.execute, out: &out)
        t.expect(.sync, out: &out)
        let head = t.headIsStaleBind
        #expect(head)
        #expect(t.receive(BackendType.errorResponse) == .forward)
        let after = t.headIsStaleBind
        #expect(!after)
        #expect(t.receive(Z, readyStatus: UInt8(ascii: "E")) == .forward)
        let idle = t.isIdle
        #expect(!idle && t.transactionStatus == .failed)
    }

    @Test func theShapeFingerprintIgnoresTableIdentityButNotColumns() {
        // RowDescription: per column name, table OID, column number, type OID, length, modifier, format.
        func rowDescription(_ columns: [(String, UInt32, UInt32)]) -> ByteBuffer {
            var b = ByteBuffer()
            b.writeInteger(BackendType.rowDescription)
            let start = b.writerIndex
            b.writeInteger(Int32(0))
            b.writeInteger(Int16(columns.count))
            for (name, table, type) in columns {
                b.writeNullTerminatedString(name)
                b.writeInteger(table)
                b.writeInteger(Int16(1))
                b.writeInteger(type)
                b.writeInteger(Int16(4))
                b.writeInteger(Int32(-1))
                b.writeInteger(Int16(0))
            }
            b.setInteger(Int32(b.writerIndex - start), at: start)
            return b
        }
        func shape(_ b: ByteBuffer) -> Int { b.withUnsafeReadableBytes { ResponseTracker.shape(ofRowDescription: $0) } }
        let two = shape(rowDescription([("a", 100, 23), ("b", 100, 25)]))
        #expect(two != 0)
        #expect(shape(rowDescription([("a", 200, 23), ("b", 200, 25)])) == two)  // dropped and created again
        #expect(shape(rowDescription([("a", 100, 23), ("b", 100, 25), ("c", 100, 23)])) != two)  // a column added
        #expect(shape(rowDescription([("a", 100, 23), ("b", 100, 23)])) != two)  // a type changed
        #expect(shape(rowDescription([("a", 100, 23), ("c", 100, 25)])) != two)  // a column renamed
        var noData = ByteBuffer()
        noData.writeEmptyMessage(BackendType.noData)
        #expect(shape(noData) == 0)
    }

    @Test func theStalePlanErrorIsKnownByItsRoutine() {
        func body(_ fields: [(Character, String)]) -> ByteBuffer {
            var b = ByteBuffer()
            for (k, v) in fields {
                b.writeInteger(UInt8(ascii: k.unicodeScalars.first!))
                b.writeNullTerminatedString(v)
            }
            b.writeInteger(UInt8(0))
            return b
        }
        #expect(Pool.isStalePlanError(body([("S", "ERROR"), ("C", "0A000"), ("M", "cached plan must not change result type"),
                                            ("F", "plancache.c"), ("R", "RevalidateCachedQuery")])))
        #expect(!Pool.isStalePlanError(body([("S", "ERROR"), ("C", "0A000"), ("M", "FOR UPDATE is not allowed"),
                                             ("R", "CheckSelectLocking")])))
        // The routine's name inside another field's text is not the routine field.
        #expect(!Pool.isStalePlanError(body([("C", "0A000"), ("M", "xRRevalidateCachedQuery")])))
    }
}

@Suite struct SessionStateDetectorTests {
    typealias D = SessionStateDetector

    @Test func deallocateNamesAStatementAsPostgreSQLReadsIt() {
        func name(_ sql: String) -> String? {
            var sql = sql
            return sql.withUTF8 { D.deallocateName(UnsafeRawBufferPointer($0)) }
        }
        #expect(name("deallocate lrupsc_1_0") == "lrupsc_1_0")
        #expect(name("DEALLOCATE dbdpg_p22148_1;") == "dbdpg_p22148_1")
        #expect(name("  Deallocate Prepare S4 ; ") == "s4")
        #expect(name("DEALLOCATE \"MixedCase\"") == "MixedCase")
        #expect(name("DEALLOCATE \"a\"\"b\"") == "a\"b")
        #expect(name("DEALLOCATE PREPARE") == "prepare")
        #expect(name("deallocate \"all\"") == "all")
        for other in ["DEALLOCATE ALL", "deallocate prepare all", "DEALLOCATE", "DEALLOCATE a; SELECT 1", "DEALLOCATE a b",
                      "SELECT 1", "deallocate 1a", "DEALLOCATE \"open", "discard all", "DEALLOCATE a, b"] {
            #expect(name(other) == nil, "\(other)")
        }
    }

    @Test func pinsSessionState() {
        for sql in [
            "SET search_path = a", "set statement_timeout to 5", "SET SESSION search_path = x; SELECT 1",
            "CREATE TEMP TABLE t(x int)", "create temporary table t(x int)", "PREPARE p AS SELECT 1",
            "SELECT pg_advisory_lock(1)", "select PG_ADVISORY_LOCK_SHARED(1)", "LISTEN chan", "SET ROLE x",
            "SET SESSION AUTHORIZATION x", "DECLARE c CURSOR WITH HOLD FOR SELECT 1", "select set_config('a.b','1',false)",
            "select 1; set search_path = x",
        ] {
            guard case .pin = D.effect(of: sql) else {
                Issue.record("expected pin for \(sql)")
                continue
            }
        }
    }

    @Test func leavesOrdinarySQLAlone() {
        for sql in [
            "SELECT 1", "SET LOCAL search_path = a", "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            "SET application_name = 'x'", "SET TimeZone TO 'UTC'", "SET SESSION TimeZone = 'UTC'; SELECT 1", "select 'SET search_path = x'",
            "-- SET search_path = x\nselect 1", "BEGIN; UPDATE t SET x = 1; COMMIT", "select pg_advisory_xact_lock(1)",
            "UNLISTEN *", "select $$ ; set search_path = x $$",
        ] {
            #expect(D.effect(of: sql) == .none, "\(sql)")
        }
    }

    @Test func prefilterNeverHidesAnEffect() {
        let all = [
            "SET search_path = a", "  set x = 1", "CREATE TEMP TABLE t(x int)", "PREPARE p AS SELECT 1",
            "SELECT pg_advisory_lock(1)", "select set_config('a','b',false)", "LISTEN c", "select 1; set a = b",
            "DISCARD ALL", "RESET ALL", "-- c\nSET a = b", "/* c */ SET a = b", "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "SELECT 1", "select abalance from pgbench_accounts where aid = 1;", "UPDATE t SET x = 1", "BEGIN",
            "SELECT PG_TRY_ADVISORY_LOCK(7)", "select x from t where a_b = 1; select set_config('a','b',false)",
            "select 1 ;\n  LISTEN c", "SELECT Set_Config('a', 'b', false)",
        ]
        for sql in all where D.effect(of: sql) != .none {
            var s = sql
            #expect(s.withUTF8 { D.mightAffectSession(UnsafeRawBufferPointer($0)) }, "\(sql)")
        }
        for text in ["SELECT abalance FROM pgbench_accounts WHERE aid = 42;", "select a_b from t_c; ;\n", "SELECT 1"] {
            var plain = text
            #expect(!plain.withUTF8 { D.mightAffectSession(UnsafeRawBufferPointer($0)) }, "\(text)")
        }
    }

    @Test func discardAndDeallocate() {
        #expect(D.effect(of: "DISCARD ALL") == .discardAll)
        #expect(D.effect(of: "deallocate all") == .deallocateAll)
        #expect(D.effect(of: "DEALLOCATE PREPARE ALL") == .deallocateAll)
        #expect(D.effect(of: "RESET ALL") == .reset(nil))
        #expect(D.effect(of: "SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL;") == .reset(nil))
        #expect(D.effect(of: "reset search_path") == .reset("search_path"))
    }
}

@Suite struct LatencyHistogramTests {
    @Test func percentilesWithinBucketError() {
        var h = LatencyHistogram()
        for v in 1...1000 { h.record(micros: UInt64(v)) }
        #expect(abs(h.percentile(0.5) - 500) / 500 < 0.07)
        #expect(abs(h.percentile(0.99) - 990) / 990 < 0.07)
        #expect(h.count == 1000)
        #expect(LatencyHistogram().percentile(0.5) == 0)
    }
}

@Suite struct ParameterSetNumbersTests {
    @Test func equalTextsShareANumberAndNumbersAreNeverReused() {
        var p = ParameterSetNumbers(limit: 2)
        let a = p.number(for: ["application_name": "a", "TimeZone": "UTC"])
        #expect(a != 0)
        #expect(p.number(for: ["TimeZone": "UTC", "application_name": "a"]) == a)
        let b = p.number(for: ["application_name": "b"])
        #expect(b != a)
        // Full: starts over, and a set seen before gets a number no other set ever had.
        let c = p.number(for: [:])
        let a2 = p.number(for: ["application_name": "a", "TimeZone": "UTC"])
        #expect(Set([a, b, c, a2]).count == 4)
        #expect(p.number(for: [:]) == c)
    }
}
