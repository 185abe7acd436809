"""asyncpg through the proxy: a pool of connections with the default statement cache running
many prepared queries concurrently, every answer checked against its own id."""

import asyncio

import asyncpg
import pytest

from harness import APP_DB, APP_PASSWORD, APP_USER, pgbouncer_xfail

QUERIES = [
    ("select $1::int * 2", lambda i: i * 2),
    ("select $1::int + 100000", lambda i: i + 100000),
    ("select $1::text || '-' || $1::text", lambda i: f"{i}-{i}"),
    ("select count(*)::int + $1::int from pgbench_branches", lambda i: i + 1),
]


async def run_pool(proxy, pool_connections: int, tasks: int) -> list:
    pool = await asyncpg.create_pool(host=proxy.host, port=proxy.port, user=APP_USER, password=APP_PASSWORD,
                                     database=APP_DB, min_size=pool_connections, max_size=pool_connections,
                                     timeout=30, command_timeout=60)
    try:
        async def one(i: int):
            sql, expected = QUERIES[i % len(QUERIES)]
            async with pool.acquire() as conn:
                arg = str(i) if "$1::text" in sql else i
                got = await conn.fetchval(sql, arg)
                # And an explicit prepared statement object, executed twice in two transactions.
                stmt = await conn.prepare("select $1::int, $2::text")
                async with conn.transaction():
                    row1 = await stmt.fetchrow(i, f"id{i}")
                row2 = await stmt.fetchrow(i + 1, f"id{i + 1}")
            return i, got, expected(i), tuple(row1), tuple(row2)

        return await asyncio.gather(*(one(i) for i in range(tasks)))
    finally:
        await asyncio.wait_for(pool.close(), 30)


def check(results):
    wrong = [(i, got, want) for i, got, want, _, _ in results if got != want]
    assert not wrong, f"{len(wrong)} wrong answers, e.g. {wrong[:5]}"
    for i, _, _, row1, row2 in results:
        assert row1 == (i, f"id{i}")
        assert row2 == (i + 1, f"id{i + 1}")


def test_asyncpg_pool_prepared_concurrent(proxy, pool_mode, request):
    pgbouncer_xfail(request, "asyncpg's statement cache needs prepared statements in transaction mode")
    check(asyncio.run(run_pool(proxy, 10, 200)))


def test_asyncpg_small_pool_competing(pool64, request):
    """Ten asyncpg connections over two server connections: statements prepared on one server
    connection must keep working when the next transaction runs on the other."""
    pgbouncer_xfail(request, "asyncpg's statement cache needs prepared statements in transaction mode")
    proxy = pool64("transaction", pool_size=2, query_wait_timeout=30)
    check(asyncio.run(run_pool(proxy, 10, 200)))


def test_asyncpg_errors_and_types(proxy):
    async def main():
        conn = await asyncpg.connect(host=proxy.host, port=proxy.port, user=APP_USER, password=APP_PASSWORD,
                                     database=APP_DB, timeout=30)
        try:
            with pytest.raises(asyncpg.exceptions.DivisionByZeroError) as excinfo:
                await conn.fetchval("select 1/0")
            assert excinfo.value.sqlstate == "22012"
            rows = await conn.fetch("select g, g * 1.5::float8, g::text from generate_series(1, 1000) g")
            assert len(rows) == 1000 and rows[999] == (1000, 1500.0, "1000")
            # Portal with a row limit (cursor fetch) inside a transaction.
            async with conn.transaction():
                cur = await conn.cursor("select g from generate_series(1, 100) g")
                first = await cur.fetch(30)
                second = await cur.fetch(30)
            assert [r[0] for r in first] == list(range(1, 31))
            assert [r[0] for r in second] == list(range(31, 61))
        finally:
            await conn.close()

    asyncio.run(main())
