"""The database goes away and comes back: clients get an error (not a hang), the proxy survives,
and the pool replaces its server connections. Uses a private PostgreSQL so the shared one is
never disturbed."""

import threading
import time

import psycopg
import pytest

import harness
from conftest import ProxyFactory

SERVER_GONE_STATES = {"57P01", "57P02", "57P03", "08006", "08003", "08000", "08001", None}


@pytest.fixture
def private_pg():
    server = harness.PgServer()
    try:
        server.init(pgbench=False)
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_proxy_factory(private_pg):
    factory = ProxyFactory(private_pg)
    yield factory
    factory.stop_all()


def wait_until_served(proxy, timeout: float = 20) -> float:
    started = time.monotonic()
    last = None
    while time.monotonic() - started < timeout:
        try:
            with psycopg.connect(proxy.dsn(), autocommit=True, connect_timeout=5) as conn:
                assert conn.execute("select 'back'").fetchone() == ("back",)
                return time.monotonic() - started
        except psycopg.Error as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"proxy did not serve a client within {timeout}s after the database returned: {last!r}")


def test_server_restart_mid_query(private_pg, private_proxy_factory, pool_mode):
    proxy = private_proxy_factory(pool_mode, pool_size=2, query_wait_timeout=10)
    outcome = {}

    def long_query():
        try:
            with psycopg.connect(proxy.dsn(), autocommit=True, connect_timeout=10) as conn:
                conn.execute("select pg_sleep(30)")
            outcome["result"] = "finished"
        except psycopg.Error as exc:
            outcome["result"] = exc
        outcome["at"] = time.monotonic()

    thread = threading.Thread(target=long_query)
    thread.start()
    time.sleep(1.0)
    stopped_at = time.monotonic()
    private_pg.stop("fast")
    thread.join(20)
    assert not thread.is_alive(), "the client hung after the database went away"
    err = outcome["result"]
    assert isinstance(err, psycopg.Error), f"expected an error, got {err!r}"
    assert err.sqlstate in SERVER_GONE_STATES, f"unexpected SQLSTATE {err.sqlstate}: {err}"
    assert outcome["at"] - stopped_at < 15

    # While the database is down, new clients get an error rather than hanging forever.
    started = time.monotonic()
    with pytest.raises(psycopg.Error):
        with psycopg.connect(proxy.dsn(), autocommit=True, connect_timeout=30) as conn:
            conn.execute("select 1")
    assert time.monotonic() - started < 40
    assert proxy.alive()

    private_pg.start()
    wait_until_served(proxy)
    assert proxy.alive()


def test_idle_pool_survives_restart(private_pg, private_proxy_factory, pool_mode):
    proxy = private_proxy_factory(pool_mode, pool_size=3)
    for _ in range(5):
        with psycopg.connect(proxy.dsn(), autocommit=True) as conn:
            conn.execute("select 1")
    private_pg.restart()
    # Pooled server connections are now dead; the proxy must notice and replace them.
    wait_until_served(proxy)
    for i in range(10):
        with psycopg.connect(proxy.dsn(), autocommit=True) as conn:
            assert conn.execute("select %s::int", (i,)).fetchone() == (i,)
