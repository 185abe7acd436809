"""1,000 concurrent clients multiplexed over a pool of 20 server connections (transaction mode);
every client checks that it gets its own answers."""

import asyncio
import threading
import time

import psycopg
import pytest

from harness import raise_own_nofile

CLIENTS = 1000
QUERIES_PER_CLIENT = 3


def count_app_backends(pg) -> int:
    with psycopg.connect(pg.app_dsn, autocommit=True) as conn:
        return conn.execute("select count(*) from pg_stat_activity where usename = 'app' "
                            "and pid <> pg_backend_pid()").fetchone()[0]


@pytest.mark.timeout(300)
def test_thousand_clients_pool_of_twenty(pool64, pg):
    # Our own fd limit must fit 1,000 sockets; pool64 gets RLIMIT_NOFILE raised by the fixture.
    limit = raise_own_nofile(4096)
    assert limit >= 2 * CLIENTS, f"cannot raise RLIMIT_NOFILE (got {limit})"
    baseline = count_app_backends(pg)
    proxy = pool64("transaction", pool_size=20, max_client_conn=2000)

    peak = {"backends": 0}
    stop = threading.Event()

    def watch():
        with psycopg.connect(pg.app_dsn, autocommit=True) as conn:
            while not stop.is_set():
                n = conn.execute("select count(*) from pg_stat_activity where usename = 'app' "
                                 "and pid <> pg_backend_pid()").fetchone()[0]
                peak["backends"] = max(peak["backends"], n)
                time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()

    async def main():
        connect_gate = asyncio.Semaphore(100)
        all_connected = asyncio.Event()
        connected = 0

        async def client(i: int):
            nonlocal connected
            async with connect_gate:
                conn = await psycopg.AsyncConnection.connect(proxy.dsn(), autocommit=True, connect_timeout=60,
                                                             prepare_threshold=None)
            try:
                connected += 1
                if connected == CLIENTS:
                    all_connected.set()
                # Hold every connection open so that all 1,000 clients are concurrent.
                await asyncio.wait_for(all_connected.wait(), 120)
                answers = []
                for k in range(QUERIES_PER_CLIENT):
                    cur = await conn.execute("select %s::int * 2, %s::int", (i, k))
                    answers.append(await cur.fetchone())
                return i, answers
            finally:
                await conn.close()

        return await asyncio.gather(*(client(i) for i in range(CLIENTS)), return_exceptions=True)

    started = time.monotonic()
    try:
        results = asyncio.run(main())
    finally:
        stop.set()
        watcher.join(5)
    elapsed = time.monotonic() - started
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{len(errors)} clients failed, e.g. {errors[:3]!r}"
    wrong = [(i, a) for i, a in results if a != [(i * 2, k) for k in range(QUERIES_PER_CLIENT)]]
    assert not wrong, f"{len(wrong)} clients got wrong answers, e.g. {wrong[:3]}"
    print(f"{CLIENTS} clients x {QUERIES_PER_CLIENT} queries in {elapsed:.1f}s; "
          f"peak app backends {peak['backends']} (baseline {baseline})")
    assert peak["backends"] - baseline <= 20, f"pool size 20 exceeded: {peak} vs baseline {baseline}"
    # The proxy is still fine afterwards.
    with psycopg.connect(proxy.dsn(), autocommit=True) as conn:
        assert conn.execute("select 7").fetchone() == (7,)
