"""Protocol-level named prepared statements behave as on PostgreSQL, in both pool modes.

In transaction mode pool64 keeps each client's statements under pool-wide server names (`pool64_N`) and prepares them
on whichever server connection runs them. These cases came from a driver probe (ruby-pg, pgx, node-postgres, pg8000,
DBD::Pg): a Parse that fails, SQL `DEALLOCATE name` (pgx's statement cache, DBD::Pg), a name prepared twice, and a
table changed under a shared statement. Pool size 1 puts every client on the same server connection.
"""

import struct
import uuid

import pytest

from harness import ProxyProcess, WireClient, admin_stats, app_pool, message, parse_error_fields, pgbouncer_xfail

REASON = "PgBouncer 1.18 does not track protocol-level prepared statements in transaction mode"


def parse(name: str, sql: str) -> bytes:
    return message(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!h", 0))


def bind(statement: str) -> bytes:
    return message(b"B", b"\0" + statement.encode() + b"\0" + struct.pack("!hhh", 0, 0, 0))


def describe_portal() -> bytes:
    return message(b"D", b"P\0")


def execute() -> bytes:
    return message(b"E", b"\0" + struct.pack("!i", 0))


SYNC = message(b"S")


def exchange(c: WireClient, data: bytes) -> list[tuple[bytes, bytes]]:
    """Send `data` (ending in Sync) and return every message up to ReadyForQuery."""
    c.send(data)
    out = []
    while True:
        tag, payload = c.recv_message()
        out.append((tag, payload))
        if tag == b"Z":
            return out


def tags(msgs) -> list[bytes]:
    return [t for t, _ in msgs]


def sqlstates(msgs) -> list[str]:
    return [parse_error_fields(p).get("C", "") for t, p in msgs if t == b"E"]


def row_values(msgs) -> list[list[str | None]]:
    rows = []
    for t, p in msgs:
        if t != b"D":
            continue
        n = struct.unpack("!h", p[:2])[0]
        i, row = 2, []
        for _ in range(n):
            size = struct.unpack("!i", p[i:i + 4])[0]
            i += 4
            row.append(None if size < 0 else p[i:i + size].decode())
            i += max(size, 0)
        rows.append(row)
    return rows


def client(proxy) -> WireClient:
    c = WireClient(proxy.host, proxy.port, timeout=20)
    c.login()
    return c


@pytest.fixture(params=["transaction", "session"])
def pool_in_mode(pool64, request):
    """Starts the proxy in each pool mode with the pool size it is called with."""
    if request.param == "transaction":
        pgbouncer_xfail(request, REASON)
    return lambda size: pool64(request.param, pool_size=size, query_wait_timeout=30)


@pytest.fixture
def one_server(pool_in_mode):
    return pool_in_mode(1)


def test_failed_parse_is_reported_at_parse_and_the_sql_works_once_valid(one_server):
    table = f"t_{uuid.uuid4().hex[:8]}"
    a = client(one_server)
    # Parse + Sync only, as ruby-pg's prepare and pg8000's prepare send it: the error belongs to this exchange.
    msgs = exchange(a, parse("s1", f"select x from {table}") + SYNC)
    assert tags(msgs) == [b"E", b"Z"], msgs
    assert sqlstates(msgs) == ["42P01"]
    a.query(f"create table {table}(x int)")
    a.query(f"insert into {table} values (41)")
    # The failed name is free again, and the same SQL now prepares, for this client and for a new one.
    msgs = exchange(a, parse("s1", f"select x from {table}") + bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["41"]], msgs
    a.terminate()  # session mode: the only server connection is a's until it leaves
    b = client(one_server)
    msgs = exchange(b, parse("other", f"select x from {table}") + bind("other") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["41"]], msgs
    b.query(f"drop table {table}")
    b.terminate()


def test_deallocate_by_name_frees_the_name(one_server):
    a = client(one_server)
    assert tags(exchange(a, parse("s1", "select 1") + SYNC)) == [b"1", b"Z"]
    a.query("DEALLOCATE s1")
    msgs = exchange(a, parse("s1", "select 2") + bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["2"]], msgs
    # Inside a transaction block, with the PREPARE keyword and a name that needs folding.
    a.query("begin")
    msgs = exchange(a, parse("s2", "select 3") + bind("s2") + execute() + SYNC)
    assert row_values(msgs) == [["3"]], msgs
    a.query("deallocate prepare S2")
    a.query("commit")
    msgs = exchange(a, parse("s2", "select 4") + bind("s2") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["4"]], msgs
    # A name the client never prepared is PostgreSQL's error.
    with pytest.raises(Exception) as e:
        a.query("DEALLOCATE nosuch")
    assert "26000" in str(e.value) or "does not exist" in str(e.value)
    # The connection is still usable.
    assert a.scalar("select 5") == "5"
    a.terminate()


def test_deallocate_refused_in_a_failed_transaction_keeps_the_statement(one_server):
    # ruby-pg, pgx and PHP PDO send DEALLOCATE after a failed statement inside a transaction; PostgreSQL refuses it
    # (25P02) and the statement stays. pool64 once forgot it anyway: the client's name gave 26000, and the next
    # Parse of the same SQL on that server connection, by any client, got 42P05 for the pool's name.
    a = client(one_server)
    assert tags(exchange(a, parse("s1", "select 7") + SYNC)) == [b"1", b"Z"]
    a.query("begin")
    msgs = exchange(a, bind("s1") + execute() + SYNC)
    assert row_values(msgs) == [["7"]], msgs
    with pytest.raises(Exception) as e:
        a.query("select 1/0")
    assert "22012" in str(e.value), e.value
    with pytest.raises(Exception) as e:
        a.query("DEALLOCATE s1")
    assert "25P02" in str(e.value), e.value
    a.query("rollback")
    msgs = exchange(a, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["7"]], msgs
    # The same SQL under another name, from this client and (transaction mode: same server) from another one.
    msgs = exchange(a, parse("s2", "select 7") + bind("s2") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["7"]], msgs
    # Once the transaction is healthy, DEALLOCATE frees the name.
    a.query("begin")
    a.query("DEALLOCATE s1")
    a.query("commit")
    msgs = exchange(a, parse("s1", "select 8") + bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["8"]], msgs
    a.terminate()
    b = client(one_server)
    msgs = exchange(b, parse("x", "select 7") + bind("x") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["7"]], msgs
    b.terminate()


def test_preparing_a_name_twice_is_an_error(one_server):
    a = client(one_server)
    assert tags(exchange(a, parse("dup", "select 1") + SYNC)) == [b"1", b"Z"]
    msgs = exchange(a, parse("dup", "select 2") + SYNC)
    assert sqlstates(msgs) == ["42P05"], msgs
    # PostgreSQL's text, with the client's name (not the pool's name for the statement on the server).
    errors = [parse_error_fields(p) for t, p in msgs if t == b"E"]
    assert errors[0]["M"] == 'prepared statement "dup" already exists', errors
    # The first statement is untouched.
    msgs = exchange(a, bind("dup") + execute() + SYNC)
    assert row_values(msgs) == [["1"]], msgs
    a.terminate()


def prepared_over_new_table(proxy, select: str) -> tuple[WireClient, str, str]:
    """A client, a new table holding one row (x = 1), and its statement s1 (`select … from` that table), prepared
    and run once; returns the client, the table and the statement's SQL."""
    table = f"t_{uuid.uuid4().hex[:8]}"
    a = client(proxy)
    a.query(f"create table {table}(x int)")
    a.query(f"insert into {table} values (1)")
    sql = f"{select} from {table}"
    msgs = exchange(a, parse("s1", sql) + bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["1"]], msgs
    return a, table, sql


def test_new_statements_see_a_changed_table(one_server):
    a, table, sql = prepared_over_new_table(one_server, "select *")
    a.query(f"alter table {table} add column y int default 7")
    a.terminate()
    # A session that prepares the statement after the change sees the new column at once. In transaction mode the
    # server's shared copy still has the old shape: the client's Parse is parsed afresh (`checkParse`), its new
    # shape differs, and the client's statement gets a fresh server name instead of the stale copy's 0A000.
    b = client(one_server)
    msgs = exchange(b, parse("q0", sql) + bind("q0") + execute() + SYNC)
    b.terminate()
    assert sqlstates(msgs) == [] and row_values(msgs) == [["1", "7"]], msgs
    c = client(one_server)
    c.query(f"drop table {table}")
    c.terminate()


def describe_statement(name: str) -> bytes:
    return message(b"D", b"S" + name.encode() + b"\0")


def test_unnamed_statement_survives_syncs_until_bound(pool64, request):
    # pg8000 runs every query as Parse("")+Sync, Describe+Sync, Bind+Execute+Sync. Each Sync used to end the
    # transaction-mode lease, so another client's query could take the server in between (and replace its unnamed
    # statement, or the Bind went to another server): 26000 'unnamed prepared statement does not exist'.
    pgbouncer_xfail(request, "PgBouncer 1.18 ends the lease at every Sync")
    proxy = pool64("transaction", pool_size=1, query_wait_timeout=30)
    a, b = client(proxy), client(proxy)
    assert tags(exchange(a, parse("", "select 42") + SYNC)) == [b"1", b"Z"]
    # b asks for the only server connection while a's unnamed statement is parsed and not bound.
    b.send(message(b"Q", b"select 1\0"))
    msgs = exchange(a, describe_statement("") + SYNC)
    assert tags(msgs) == [b"t", b"T", b"Z"], msgs
    msgs = exchange(a, bind("") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["42"]], msgs
    # Bound: the lease ends at this Sync and b's query runs.
    reply = []
    while not reply or reply[-1][0] != b"Z":
        reply.append(b.recv_message())
    assert row_values(reply) == [["1"]], reply
    a.terminate()
    b.terminate()


def test_an_idle_unbound_unnamed_statement_does_not_hold_the_server(pool64, request):
    # A client that parses the unnamed statement and then goes quiet keeps the server only while nobody needs it:
    # with a client waiting, it lets go within a pool tick (its unnamed statement goes too, as under PgBouncer).
    pgbouncer_xfail(request, "PgBouncer 1.18 ends the lease at every Sync", strict=False)
    proxy = pool64("transaction", pool_size=1, query_wait_timeout=30)
    a, b = client(proxy), client(proxy)
    assert tags(exchange(a, parse("", "select 42") + SYNC)) == [b"1", b"Z"]
    assert b.scalar("select 2") == "2"
    # a is still a working client.
    msgs = exchange(a, parse("", "select 43") + bind("") + execute() + SYNC)
    assert row_values(msgs) == [["43"]], msgs
    a.terminate()
    b.terminate()


def prepared_then_server_busy(pool_in_mode) -> tuple[WireClient, WireClient, str, str, ProxyProcess]:
    """With two server connections: client a's statement s1 (`select *` from a new table) run once, then another
    client holding a server connection in a transaction (in transaction mode, the one a's statement ran on, so a's
    next runs go to the other). Returns a, the other client, the table, the SQL and the proxy."""
    two_servers = pool_in_mode(2)
    other = client(two_servers)
    a, table, sql = prepared_over_new_table(two_servers, "select *")
    other.query("begin")
    other.query("select 1")
    return a, other, table, sql, two_servers


def errors_by_class(proxy: ProxyProcess) -> dict[str, int]:
    """pool64's count of errors sent to clients, by SQLSTATE class (`/stats`)."""
    return app_pool(admin_stats(proxy))["errors_by_sqlstate_class"]


def test_a_statement_whose_table_changed_gets_0A000_on_every_server(pool_in_mode):
    # PostgreSQL fixes a prepared statement's result shape when it is prepared: after DDL adds a column, running it
    # fails with 0A000 'cached plan must not change result type' until the client prepares it again (drivers such as
    # pgx and JDBC do that on 0A000). In transaction mode the statement runs on whichever server connection is free,
    # and pool64 prepares it there on demand: on a server that never had it, that used to be a fresh prepare with the
    # new column, and drivers that cached the old row description misread rows (pgx 08P01, PHP PDO and DBD::Pg
    # crashed). Here the server that ran the first execution is kept busy by another client, so the later ones run
    # on the other server.
    a, other, table, sql, proxy = prepared_then_server_busy(pool_in_mode)
    before = errors_by_class(proxy) if proxy.admin_port is not None else {}
    a.query(f"alter table {table} add column y int default 7")
    for attempt in range(2):
        msgs = exchange(a, bind("s1") + describe_portal() + execute() + SYNC)
        assert sqlstates(msgs) == ["0A000"] and row_values(msgs) == [], (attempt, msgs)
        errors = [parse_error_fields(p) for t, p in msgs if t == b"E"]
        assert errors[0]["M"] == "cached plan must not change result type", errors
    # Describe of the statement fails the same way.
    msgs = exchange(a, describe_statement("s1") + SYNC)
    assert sqlstates(msgs) == ["0A000"], msgs
    # Inside a transaction block the error aborts it, as PostgreSQL's does.
    a.query("begin")
    msgs = exchange(a, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == ["0A000"] and msgs[-1] == (b"Z", b"E"), msgs
    with pytest.raises(Exception) as e:
        a.query("select 1")
    assert "25P02" in str(e.value), e.value
    a.query("rollback")
    other.query("commit")
    # /stats counts the errors as the client got them (0A000 four times, then 25P02), not as the server gave them.
    if proxy.admin_port is not None:
        after = errors_by_class(proxy)
        counted = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        assert {k: n for k, n in counted.items() if n} == {"0A": 4, "25": 1}, (before, after)
    # Prepared again, it has the new column; so does the same SQL prepared by another client.
    a.query("deallocate s1")
    msgs = exchange(a, parse("s1", sql) + bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["1", "7"]], msgs
    msgs = exchange(other, parse("o1", sql) + bind("o1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["1", "7"]], msgs
    a.query(f"drop table {table}")
    a.terminate()
    other.terminate()


def test_deallocate_in_a_transaction_on_a_server_that_never_prepared_the_statement(pool_in_mode):
    # Inside a transaction block pool64 has the attached server run the client's DEALLOCATE, so the reply and the
    # transaction state are PostgreSQL's. When that server never prepared the statement, DEALLOCATE ALL stands in;
    # its tag used to reach the client as 'DEALLOCATE ALL'.
    a, other, table, sql, proxy = prepared_then_server_busy(pool_in_mode)
    a.query("begin")
    msgs = exchange(a, message(b"Q", b"DEALLOCATE s1\0"))
    assert [p for t, p in msgs if t == b"C"] == [b"DEALLOCATE\0"] and sqlstates(msgs) == [], msgs
    assert msgs[-1] == (b"Z", b"T"), msgs
    a.query("commit")
    other.query("commit")
    # The name is gone, as on PostgreSQL, and free to prepare again.
    msgs = exchange(a, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == ["26000"], msgs
    msgs = exchange(a, parse("s1", sql) + bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["1"]], msgs
    a.query(f"drop table {table}")
    a.terminate()
    other.terminate()


def test_a_parse_of_known_sql_after_its_table_was_dropped_fails_at_parse(one_server):
    # In transaction mode a server may already hold the SQL under its pool name; a client's Parse of it used to be
    # answered without asking the server, so after DROP TABLE the 42P01 came at Bind and the failed name stayed
    # defined. Now the server parses the text again, as PostgreSQL would, and the name stays free.
    a, table, sql = prepared_over_new_table(one_server, "select x")
    a.query(f"drop table {table}")
    # Parse+Sync (ruby-pg, pg8000), then the pipelined Parse+Bind+Execute+Sync of pgx and JDBC.
    msgs = exchange(a, parse("s2", sql) + SYNC)
    assert tags(msgs) == [b"E", b"Z"] and sqlstates(msgs) == ["42P01"], msgs
    msgs = exchange(a, bind("s2") + execute() + SYNC)
    assert sqlstates(msgs) == ["26000"], msgs
    msgs = exchange(a, parse("s3", sql) + bind("s3") + execute() + SYNC)
    assert tags(msgs) == [b"E", b"Z"] and sqlstates(msgs) == ["42P01"], msgs
    # Inside a transaction block the failed Parse aborts it, as on PostgreSQL.
    a.query("begin")
    msgs = exchange(a, parse("s4", sql) + SYNC)
    assert sqlstates(msgs) == ["42P01"] and msgs[-1] == (b"Z", b"E"), msgs
    a.query("rollback")
    # With the table back (same shape) the old statement runs again and the name prepares.
    a.query(f"create table {table}(x int)")
    a.query(f"insert into {table} values (2)")
    msgs = exchange(a, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["2"]], msgs
    msgs = exchange(a, parse("s2", sql) + bind("s2") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [["2"]], msgs
    a.query(f"drop table {table}")
    a.terminate()


def test_statements_resolve_names_in_each_clients_search_path(pool64, request):
    # Statements are shared between clients by their text. PostgreSQL resolves a statement's table names with the
    # session's search_path and fixes its result shape when it is prepared. Schema-per-tenant apps give each client
    # its own search_path (at startup, or with SET, which pins the client), and the tenants' tables may differ while
    # a migration rolls through them: each client must get its own table's rows and shape, as on PostgreSQL.
    pgbouncer_xfail(request, REASON)
    proxy = pool64("transaction", pool_size=1, query_wait_timeout=30)
    schemas = [f"s_{uuid.uuid4().hex[:6]}" for _ in range(3)]
    admin = client(proxy)
    for i, schema in enumerate(schemas):
        extra = "".join(f", c{j} int default {j}" for j in range(i))  # a column more in each schema
        admin.query(f"create schema {schema}")
        admin.query(f"create table {schema}.t(x text{extra})")
        admin.query(f"insert into {schema}.t(x) values ('{schema}')")
    sql = "select * from t"

    def run(c: WireClient, name: str) -> list:
        msgs = exchange(c, parse(name, sql) + bind(name) + execute() + SYNC)
        assert sqlstates(msgs) == [], msgs
        return row_values(msgs)

    first, second = WireClient(proxy.host, proxy.port, timeout=20), WireClient(proxy.host, proxy.port, timeout=20)
    first.login(options=f"-c search_path={schemas[0]}")
    second.login(search_path=schemas[1])
    assert run(first, "s1") == [[schemas[0]]]
    # With the only server connection busy, pool64 answers the second tenant's Parse itself; its statement must not
    # be the first tenant's copy (on PostgreSQL it is its own, with its own table's columns).
    admin.query("begin")
    admin.query("select 1")
    assert tags(exchange(second, parse("s1", sql) + SYNC)) == [b"1", b"Z"]
    admin.query("commit")
    msgs = exchange(second, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == [] and row_values(msgs) == [[schemas[1], "0"]], msgs
    assert run(first, "s2") == [[schemas[0]]]
    assert run(second, "s2") == [[schemas[1], "0"]]
    first.terminate()
    second.terminate()
    # SET pins the client to the server connection, which holds copies made under other search_paths.
    third = client(proxy)
    third.query(f"set search_path = {schemas[2]}")
    assert run(third, "s1") == [[schemas[2], "0", "1"]]
    # PostgreSQL parses a statement again when the search_path changed since it was planned: another shape is 0A000.
    third.query(f"set search_path = {schemas[0]}")
    msgs = exchange(third, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == ["0A000"], msgs
    assert run(third, "s2") == [[schemas[0]]]
    third.terminate()
    for schema in schemas:
        admin.query(f"drop schema {schema} cascade")
    admin.terminate()


def test_a_statement_whose_table_was_dropped_fails_on_a_server_that_never_had_it(pool_in_mode):
    # The statement's first run on another server connection prepares it there and waits for its Describe; when that
    # prepare fails (the table is gone) the client gets PostgreSQL's 42P01 for its Bind, and nothing hangs.
    a, other, table, sql, proxy = prepared_then_server_busy(pool_in_mode)
    a.query(f"drop table {table}")
    msgs = exchange(a, bind("s1") + execute() + SYNC)
    assert sqlstates(msgs) == ["42P01"] and msgs[-1] == (b"Z", b"I"), msgs
    other.query("commit")
    assert a.scalar("select 6") == "6"
    a.terminate()
    other.terminate()
