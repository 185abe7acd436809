"""pg8000 (pure-Python driver, its native API) compatibility checks; run by tests/integration/test_drivers.py.

Usage: python3 pg8000_native.py URL TABLE_PREFIX all|common   (pg8000 importable, e.g. via PYTHONPATH)
Prints one JSON line per check: {"name":..., "ok":..., "detail":...}. "detail" must not depend on the target
(PostgreSQL or pool64) so the test can compare it with the direct run; "session_" checks run only with "all".
"""

import datetime
import decimal
import io
import json
import sys
import threading
import time
import urllib.parse

import pg8000.native
from pg8000.native import DatabaseError

URL, PREFIX, SCOPE = sys.argv[1:4]
_u = urllib.parse.urlsplit(URL)
PARAMS = dict(user=urllib.parse.unquote(_u.username), password=urllib.parse.unquote(_u.password),
              host=_u.hostname, port=_u.port, database=_u.path.lstrip("/"))

_main = None


def connect():
    return pg8000.native.Connection(**PARAMS)


def conn():
    global _main
    if _main is None:
        _main = connect()
    return _main


def report(name, ok, detail):
    print(json.dumps({"name": name, "ok": bool(ok), "detail": str(detail)}, ensure_ascii=False), flush=True)


def sqlstate(e):
    if isinstance(e, DatabaseError) and e.args and isinstance(e.args[0], dict):
        return e.args[0].get("C", "no-sqlstate")
    return f"{type(e).__name__}: {e}"


def check(name):
    def run(f):
        global _main
        try:
            ok, detail = f()
            report(name, ok, detail)
        except Exception as e:  # noqa: BLE001 - every failure is a report line
            report(name, False, f"exception {sqlstate(e)}")
            # The next check starts on a fresh connection, whatever state this one was left in.
            try:
                if _main is not None:
                    _main.close()
            except Exception:  # noqa: BLE001
                pass
            _main = None
        return f
    return run


def error_of(f):
    """The SQLSTATE of the error f raises, or "none"."""
    try:
        f()
        return "none"
    except DatabaseError as e:
        return sqlstate(e)


def outcome(f):
    """f()'s value as text, or the SQLSTATE of its error."""
    try:
        return str(f())
    except DatabaseError as e:
        return sqlstate(e)


def usable(c):
    return c.run("select 41 + :x::int", x=1) == [[42]]


def t(suffix):
    return f"{PREFIX}_{suffix}"


def concurrently(suffix, body, n=5):
    """n connections at once, each running body(connection, table, w) -> count of wrong answers, on a table
    PREFIX_suffix with ids 1..50 and values 'row<id>'. Returns (all right, detail)."""
    c = conn()
    table = t(suffix)
    c.run(f"create table {table} (id int primary key, v text)")
    c.run(f"insert into {table} select g, 'row' || g from generate_series(1, 50) g")
    results = [None] * n

    def run(w):
        try:
            wc = connect()
            try:
                results[w] = f"bad={body(wc, table, w)}"
            finally:
                wc.close()
        except Exception as e:  # noqa: BLE001
            results[w] = f"error {sqlstate(e)}"

    threads = [threading.Thread(target=run, args=(w,)) for w in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    c.run(f"drop table {table}")
    return all(r == "bad=0" for r in results), " ".join(map(str, results))


@check("login")
def _():
    user = conn().run("select current_user")[0][0]
    return user == "app", f"user={user}"


@check("simple_query")
def _():
    c = conn()
    c.execute_simple("select 1; select 2")  # the simple protocol
    rows = c.run("select 1 + 1 as two, 'x' || 'y' as xy")
    names = [col["name"] for col in c.columns]
    return rows == [[2, "xy"]] and names == ["two", "xy"], f"{rows} {names}"


@check("param_types")
def _():
    ts = datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=datetime.timezone.utc)
    values = dict(i4=2147483647, i8=9007199254740993, txt="grüße ✓ 日本", num=decimal.Decimal("12345.678901234567890"),
                  b=True, nul=None, by=b"\x00\x01\xfe\xff\\", tz=ts, f=3.5e-7)
    row = conn().run("select :i4::int4, :i8::int8, :txt::text, :num::numeric, :b::bool, :nul::text, :by::bytea, "
                     ":tz::timestamptz, :f::float8", **values)[0]
    ok = row == list(values.values())
    shown = [x.hex() if isinstance(x, bytes) else x.astimezone(datetime.timezone.utc).isoformat()
             if isinstance(x, datetime.datetime) else str(x) for x in row]
    return ok, " | ".join(shown)


@check("many_rows")
def _():
    rows = conn().run("select g, md5(g::text) from generate_series(1, :n::int) g", n=10000)
    total = sum(r[0] for r in rows)
    return len(rows) == 10000 and total == 50005000, f"rows={len(rows)} sum={total} last={rows[-1][1]}"


@check("prepared_reuse")
def _():
    c = conn()
    ps = c.prepare("select :a::int * 2, :b::text")
    bad = sum(1 for i in range(300) if ps.run(a=i, b=f"v{i}") != [[i * 2, f"v{i}"]])
    ps.close()
    return bad == 0 and usable(c), f"bad={bad}"


@check("concurrent_prepared")
def _():
    def body(wc, table, w):
        # pg8000 names statements per connection (pg8000_statement_N): the same names on every connection; each
        # execution may meet a server the proxy did not prepare it on.
        get = wc.prepare(f"select v, :w::int from {table} where id = :id")
        count = wc.prepare(f"select count(*) + :w::int from {table}")
        bad = 0
        for i in range(120):
            rid = (i + w) % 50 + 1
            bad += get.run(w=w, id=rid) != [[f"row{rid}", w]]
            bad += count.run(w=w) != [[50 + w]]
        get.close()
        count.close()
        return bad

    return concurrently("conc", body)


@check("concurrent_unnamed")
def _():
    # Connection.run with parameters uses the unnamed statement over three Syncs: Parse+Sync, Describe+Sync, then
    # Bind+Execute+Sync. PostgreSQL keeps the unnamed statement between them; five connections at once.
    def body(wc, table, w):
        bad = 0
        for i in range(100):
            rid = (i + w) % 50 + 1
            bad += wc.run(f"select v, :w::int from {table} where id = :id", id=rid, w=w) != [[f"row{rid}", w]]
        return bad

    return concurrently("unnamed", body)


@check("deallocate")
def _():
    c = conn()
    # pg8000 frees a statement with a protocol Close message; many cycles.
    bad = 0
    for i in range(40):
        ps = c.prepare(f"select :x::int + {i % 4}")
        bad += ps.run(x=i) != [[i + i % 4]]
        ps.close()
    ps = c.prepare("select :x::int * 3")
    first = ps.run(x=1)[0][0]
    ps.close()
    gone = error_of(lambda: ps.run(x=2))
    return bad == 0 and first == 3 and gone == "26000" and usable(c), f"bad={bad} after_close={gone}"


@check("sql_prepare")
def _():
    c = connect()  # its own connection: SQL PREPARE pins a client to its server behind a transaction pool
    try:
        c.run("PREPARE dup AS select $1::int * 10")
        second = error_of(lambda: c.run("PREPARE dup AS select 2"))
        v = c.run("EXECUTE dup(4)")[0][0]
        c.run("DEALLOCATE dup")
        gone = error_of(lambda: c.run("EXECUTE dup(5)"))
        ok = second == "42P05" and v == 40 and gone == "26000" and usable(c)
        return ok, f"second_prepare={second} execute={v} after_deallocate={gone}"
    finally:
        c.close()


@check("parse_error_syntax")
def _():
    c = conn()
    state = error_of(lambda: c.prepare("selec :x"))
    state2 = error_of(lambda: c.run("select :x from", x=1))
    ok = usable(c)
    ps = c.prepare("select :x::int")
    v = ps.run(x=3)[0][0]
    ps.close()
    return state == "42601" and state2 == "42601" and ok and v == 3, f"prepare={state} run={state2} reprepared={v}"


@check("parse_error_undefined_table")
def _():
    c = conn()
    table = t("later")
    state = error_of(lambda: c.prepare(f"select x from {table} where x = :x"))
    c.run(f"create table {table} (x int)")
    c.run(f"insert into {table} values (7)")
    ps = c.prepare(f"select x from {table} where x = :x")
    v = ps.run(x=7)[0][0]
    ps.close()
    c.run(f"drop table {table}")
    return state == "42P01" and v == 7 and usable(c), f"prepare={state} after_create={v}"


def deallocate_in_failed_tx(pinned):
    """A statement freed (Close) inside a failed transaction, then the same SQL prepared again; on a client of its
    own (the check leaves statements behind). pinned: the client first sets session state (SET search_path), which
    pins it to its server connection behind a transaction pool."""
    c = connect()
    try:
        if pinned:
            c.run("set search_path = public")
        return _deallocate_in_failed_tx(c, "ftx_pinned" if pinned else "ftx")
    finally:
        c.close()


def _deallocate_in_failed_tx(c, tag):
    sql = f"select 2/:x::int as {tag}"
    c.run("begin")
    ps = c.prepare(sql)
    div = error_of(lambda: ps.run(x=0))
    closed = error_of(ps.close)
    c.run("rollback")
    again = None
    runs = []
    try:
        again = c.prepare(sql)
        for _ in range(3):
            runs.append(outcome(lambda: again.run(x=1)[0][0]))
    except DatabaseError as e:
        runs.append(f"prepare {sqlstate(e)}")
    if again is not None:
        error_of(again.close)
    d = f"error={div} close={closed} runs={','.join(runs)}"
    return d == "error=22012 close=none runs=2,2,2" and usable(c), d


@check("deallocate_in_failed_tx")
def _():
    return deallocate_in_failed_tx(False)


@check("deallocate_in_failed_tx_pinned")
def _():
    return deallocate_in_failed_tx(True)


@check("parse_error_after_drop")
def _():
    # A Parse of SQL that worked before (and is still prepared), after its table was dropped: PostgreSQL fails the
    # Parse (42P01).
    c = conn()
    table = t("dropped")
    c.run(f"create table {table} (x int)")
    c.run(f"insert into {table} values (1)")
    sql = f"select x from {table} where x > :x"
    ps1 = c.prepare(sql)
    first = ps1.run(x=0)[0][0]
    c.run(f"drop table {table}")
    at_prepare = error_of(lambda: c.prepare(sql))
    c.run(f"create table {table} (x int)")
    error_of(ps1.close)
    c.run(f"drop table {table}")
    return first == 1 and at_prepare == "42P01" and usable(c), f"first={first} prepare={at_prepare}"


def ddl_check(busy):
    # The busy variant uses two clients of their own, with no session state that would pin them behind a
    # transaction pool; the main one is closed first (a session-mode pool of 2 has no room for three).
    global _main
    if busy and _main is not None:
        _main.close()
        _main = None
    c = connect() if busy else conn()
    table = t("ddl2" if busy else "ddl")
    c.run(f"create table {table} (a int, b text)")
    c.run(f"insert into {table} values (1, 'one')")
    ps = c.prepare(f"select * from {table} where a = :a")
    steps = [outcome(lambda: ps.run(a=1))]
    other = None
    if busy:
        # Another connection holds a transaction open: behind a transaction-mode pool the statement then runs on a
        # server connection that never prepared it.
        other = connect()
        other.run("begin")
        other.run("select 1")
    c.run(f"alter table {table} add column c int default 5")
    steps += [outcome(lambda: ps.run(a=1)), outcome(lambda: ps.run(a=1))]
    if other is not None:
        other.run("commit")
        other.close()
    steps.append(outcome(lambda: ps.run(a=1)))
    error_of(ps.close)
    ps2 = c.prepare(f"select * from {table} where a = :a")
    steps.append(outcome(lambda: ps2.run(a=1)))
    ps2.close()
    c.run(f"drop table {table}")
    ok = steps[0] == "[[1, 'one']]" and steps[-1] == "[[1, 'one', 5]]" and usable(c)
    if busy:
        c.close()
    return ok, " | ".join(steps)


@check("ddl_change")
def _():
    return ddl_check(False)


@check("ddl_change_busy_server")
def _():
    return ddl_check(True)


@check("tx_commit")
def _():
    c = conn()
    table = t("tx")
    c.run(f"create table {table} (x int)")
    c.run("begin")
    c.run(f"insert into {table} values (:x)", x=1)
    c.run("commit")
    c.run("start transaction")
    c.run(f"insert into {table} values (:x)", x=2)
    c.run("rollback")
    v = c.run(f"select array_agg(x order by x)::text from {table}")[0][0]
    c.run(f"drop table {table}")
    return v == "{1}", f"rows={v}"


@check("tx_error_25P02")
def _():
    c = conn()
    c.run("begin")
    first = error_of(lambda: c.run("select 1/:x::int as tx_error", x=0))
    second = error_of(lambda: c.run("select 1"))
    c.run("rollback")
    return first == "22012" and second == "25P02" and usable(c), f"error={first} next={second}"


@check("savepoint")
def _():
    c = conn()
    table = t("sp")
    c.run(f"create table {table} (x int)")
    c.run("begin")
    c.run(f"insert into {table} values (1)")
    c.run("savepoint a")
    c.run(f"insert into {table} values (2)")
    err = error_of(lambda: c.run("select 1/0"))
    c.run("rollback to savepoint a")
    c.run(f"insert into {table} values (3)")
    c.run("release savepoint a")
    c.run("commit")
    v = c.run(f"select array_agg(x order by x)::text from {table}")[0][0]
    c.run(f"drop table {table}")
    return v == "{1,3}" and err == "22012", f"rows={v} error={err}"


@check("copy")
def _():
    c = conn()
    table = t("copy")
    c.run(f"create table {table} (id int, v text)")
    data = "".join(f"{i}\tvalue ✓ {i}\n" for i in range(1, 1001))
    c.run(f"copy {table} from stdin", stream=io.StringIO(data))
    copied_in = c.row_count
    out = io.StringIO()
    c.run(f"copy (select * from {table} order by id) to stdout", stream=out)
    lines = out.getvalue().splitlines()
    bad = error_of(lambda: c.run(f"copy {table} from stdin", stream=io.StringIO("x\tnot an int\n")))
    n = c.run(f"select count(*) from {table}")[0][0]
    c.run(f"drop table {table}")
    ok = copied_in == 1000 and len(lines) == 1000 and lines[-1] == "1000\tvalue ✓ 1000" and n == 1000 \
        and bad == "22P02" and usable(c)
    return ok, f"in={copied_in} out={len(lines)} last={lines[-1]!r} count={n} bad_row={bad}"


@check("errors")
def _():
    c = conn()
    table = t("uniq")
    div = error_of(lambda: c.run("select 1/0"))
    divp = error_of(lambda: c.run("select 1/:x::int", x=0))
    c.run(f"create table {table} (id int primary key)")
    c.run(f"insert into {table} values (1)")
    ps = c.prepare(f"insert into {table} values (:id)")
    uniq = error_of(lambda: ps.run(id=1))
    uniq2 = error_of(lambda: ps.run(id=1))
    ps.close()
    c.run(f"drop table {table}")
    ok = div == "22012" and divp == "22012" and uniq == "23505" and uniq2 == "23505" and usable(c)
    return ok, f"div={div} div_param={divp} unique={uniq},{uniq2}"


@check("notice")
def _():
    c = connect()
    try:
        c.run("do $$ begin raise notice 'hello %', 'pg8000'; end $$")
        c.run("do $$ begin raise warning 'second'; end $$")
        got = [(n[b"C"].decode(), n[b"M"].decode()) for n in c.notices]
        return got == [("00000", "hello pg8000"), ("01000", "second")], str(got)
    finally:
        c.close()


if SCOPE == "all":
    @check("session_listen_notify")
    def _():
        c = conn()
        c.run("listen drv_pg8000")
        other = connect()
        # pg8000 decodes notification payloads as ASCII: a plain one here.
        other.run("select pg_notify(:ch, :payload)", ch="drv_pg8000", payload="payload 1")
        other.close()
        deadline = time.monotonic() + 10
        while not c.notifications and time.monotonic() < deadline:
            c.run("select 1")  # pg8000 reads notifications while it reads a response
            time.sleep(0.05)
        got = [(ch, payload) for _pid, ch, payload in c.notifications]
        c.run("unlisten *")
        return got == [("drv_pg8000", "payload 1")], str(got)

    @check("session_set")
    def _():
        c = conn()
        c.run("set statement_timeout = '12345ms'")
        c.run("set search_path = 'drv_schema', public")
        time.sleep(0.2)
        a = c.run("show statement_timeout")[0][0]
        b = c.run("select current_setting(:n)", n="search_path")[0][0]
        c.run("reset statement_timeout")
        c.run("reset search_path")
        return a == "12345ms" and b == "drv_schema, public", f"statement_timeout={a} search_path={b}"

    @check("session_temp_table")
    def _():
        c = conn()
        c.run("create temp table drv_tmp (x int)")
        c.run("insert into drv_tmp values (1), (2)")
        time.sleep(0.2)
        n = c.run("select count(*) from drv_tmp where x > :x", x=0)[0][0]
        c.run("drop table drv_tmp")
        return n == 2, f"count={n}"

if _main is not None:
    _main.close()
