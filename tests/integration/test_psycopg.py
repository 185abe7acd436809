"""psycopg 3 through the proxy: server-side parameter binding, prepared statements, rollback,
COPY, binary results, cancel."""

import datetime
import decimal
import threading
import time
import uuid

import psycopg
import pytest
from psycopg import errors

from harness import pgbouncer_xfail


def connect(proxy, **kwargs):
    return psycopg.connect(proxy.dsn(), connect_timeout=10, **kwargs)


def test_server_side_parameters(proxy):
    with connect(proxy, autocommit=True) as conn:
        assert conn.pgconn.server_version >= 150000
        values = [(i, f"it's {i} \u00e9\u00f8\u2603", bytes([i % 256]) * i) for i in range(1, 50)]
        for i, text, blob in values:
            row = conn.execute("select %s::int * 2, %s::text, %s::bytea, %s::int is null",
                               (i, text, blob, None)).fetchone()
            assert row == (i * 2, text, blob, True)
        # Parameters travel as Bind values, not interpolated: an injection attempt is just text.
        row = conn.execute("select %s::text", ("'; drop table pgbench_accounts; --",)).fetchone()
        assert row == ("'; drop table pgbench_accounts; --",)
        assert conn.execute("select count(*) from pgbench_accounts").fetchone()[0] == 100000


def test_prepared_statements_across_transactions(proxy, pool_mode, request):
    pgbouncer_xfail(request, "protocol-level prepared statements are not supported in transaction mode",
                    strict=False)
    with connect(proxy) as conn:
        for i in range(40):
            with conn.transaction():
                row = conn.execute("select %s::int + 1000, %s::text", (i, f"n{i}"), prepare=True).fetchone()
                assert row == (i + 1000, f"n{i}")
            # A second statement, also prepared, interleaved with the first.
            with conn.transaction():
                row = conn.execute("select %s::int * %s::int", (i, i), prepare=True).fetchone()
                assert row == (i * i,)
        conn.commit()


def test_transaction_rollback(proxy, pool_mode):
    table = f"rb_{pool_mode}"
    with connect(proxy, autocommit=True) as conn:
        conn.execute(f"drop table if exists {table}")
        conn.execute(f"create table {table}(id int primary key, note text)")
    with connect(proxy) as conn:
        with conn.transaction():
            conn.execute(f"insert into {table} values (1, 'kept')")
        with pytest.raises(RuntimeError):
            with conn.transaction():
                conn.execute(f"insert into {table} values (2, 'rolled back')")
                assert conn.execute(f"select count(*) from {table}").fetchone()[0] == 2
                raise RuntimeError("roll it back")
        conn.rollback()
        with pytest.raises(errors.UniqueViolation) as excinfo:
            with conn.transaction():
                conn.execute(f"insert into {table} values (1, 'duplicate')")
        assert excinfo.value.sqlstate == "23505"
        assert conn.execute(f"select array_agg(id order by id) from {table}").fetchone()[0] == [1]
        conn.rollback()
    with connect(proxy, autocommit=True) as conn:
        conn.execute(f"drop table {table}")


def test_copy_both_ways(proxy, pool_mode):
    table = f"pcopy_{pool_mode}"
    rows = [(i, f"row {i}", decimal.Decimal(i) / 7) for i in range(20000)]
    with connect(proxy, autocommit=True) as conn:
        conn.execute(f"drop table if exists {table}")
        conn.execute(f"create table {table}(id int, label text, amount numeric)")
        with conn.cursor() as cur:
            with cur.copy(f"copy {table} (id, label, amount) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            assert cur.rowcount == len(rows)
        assert conn.execute(f"select count(*), sum(id) from {table}").fetchone() == (20000, sum(range(20000)))
        got = []
        with conn.cursor() as cur:
            with cur.copy(f"copy (select id, label, amount from {table} order by id) to stdout") as copy:
                copy.set_types(["int4", "text", "numeric"])
                got = list(copy.rows())
        assert len(got) == len(rows)
        assert got == rows
        # Binary COPY out too.
        with conn.cursor() as cur:
            with cur.copy(f"copy (select id from {table} order by id) to stdout (format binary)") as copy:
                copy.set_types(["int4"])
                ids = [r[0] for r in copy.rows()]
        assert ids == list(range(20000))
        conn.execute(f"drop table {table}")


def test_binary_results(proxy):
    with connect(proxy, autocommit=True) as conn:
        with conn.cursor(binary=True) as cur:
            ts = datetime.datetime(2024, 2, 29, 12, 34, 56, 789000, tzinfo=datetime.timezone.utc)
            u = uuid.uuid4()
            cur.execute("select %s::int8, %s::text, %s::bytea, %s::numeric, %s::timestamptz, %s::uuid, "
                        "%s::float8, array[1,2,3]::int4[]",
                        (2**40, "bin\u00e4ry", b"\x00\x01\xff", decimal.Decimal("123.456"), ts, u, 0.5))
            row = cur.fetchone()
            assert row == (2**40, "bin\u00e4ry", b"\x00\x01\xff", decimal.Decimal("123.456"), ts, u, 0.5, [1, 2, 3])
            assert cur.pgresult.fformat(0) == 1  # really binary on the wire
            cur.execute("select g, g::text from generate_series(1, 5000) g")
            rows = cur.fetchall()
            assert rows[0] == (1, "1") and rows[-1] == (5000, "5000") and len(rows) == 5000


def test_cancel_pg_sleep(proxy):
    with connect(proxy, autocommit=True) as conn:
        timer = threading.Timer(1.0, conn.cancel)
        timer.start()
        started = time.monotonic()
        try:
            with pytest.raises(errors.QueryCanceled) as excinfo:
                conn.execute("select pg_sleep(30)")
        finally:
            timer.cancel()
        assert excinfo.value.sqlstate == "57014"
        assert time.monotonic() - started < 15
        assert conn.execute("select 42").fetchone() == (42,)
        # The connection keeps working for parameterised queries and transactions after a cancel.
        with conn.transaction():
            assert conn.execute("select %s::int + 1", (41,)).fetchone() == (42,)


def test_cancel_only_hits_its_own_client(proxy):
    """A cancel for client A must not cancel client B's query running at the same time."""
    with connect(proxy, autocommit=True) as a, connect(proxy, autocommit=True) as b:
        results = {}

        def run_b():
            try:
                results["b"] = b.execute("select pg_sleep(2.5), 'b done'").fetchone()[1]
            except Exception as exc:  # noqa: BLE001 - recorded and asserted below
                results["b"] = exc

        thread = threading.Thread(target=run_b)
        thread.start()
        timer = threading.Timer(1.0, a.cancel)
        timer.start()
        try:
            with pytest.raises(errors.QueryCanceled):
                a.execute("select pg_sleep(20)")
        finally:
            timer.cancel()
            thread.join(30)
        assert results.get("b") == "b done"


def test_auto_prepare_threshold(proxy, pool_mode, request):
    pgbouncer_xfail(request, "protocol-level prepared statements are not supported in transaction mode",
                    strict=False)
    with connect(proxy, autocommit=True, prepare_threshold=2) as conn:
        for i in range(30):
            assert conn.execute("select %s::int - 1", (i,)).fetchone() == (i - 1,)
