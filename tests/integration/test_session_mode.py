"""Session pooling: a client keeps its server connection and its session state; the next client
gets a reset connection (DISCARD ALL)."""

import psycopg

from harness import WireClient


def test_session_state_survives_and_is_reset(pool64):
    proxy = pool64("session", pool_size=1)
    with psycopg.connect(proxy.dsn()) as conn:
        conn.execute("set search_path = pg_catalog, public")
        conn.execute("set statement_timeout = '12345ms'")
        conn.execute("create temp table session_tmp(x int)")
        conn.execute("insert into session_tmp values (1), (2)")
        conn.commit()
        pid = conn.execute("select pg_backend_pid()").fetchone()[0]
        conn.commit()
        for _ in range(5):
            with conn.transaction():
                assert conn.execute("show statement_timeout").fetchone()[0] == "12345ms"
                assert conn.execute("show search_path").fetchone()[0] == "pg_catalog, public"
                assert conn.execute("select count(*) from session_tmp").fetchone()[0] == 2
                assert conn.execute("select pg_backend_pid()").fetchone()[0] == pid
        conn.commit()
        conn.execute("prepare sess_stmt as select 42")
        assert conn.execute("execute sess_stmt").fetchone() == (42,)
        conn.commit()

    b = WireClient(proxy.host, proxy.port)
    b.login()
    assert b.scalar("select pg_backend_pid()") == str(pid), "pool size 1: expected the same server connection"
    assert b.scalar("show statement_timeout") == "0"
    assert b.scalar("show search_path") == '"$user", public'
    assert b.scalar("select to_regclass('session_tmp') is null") == "t"
    assert b.scalar("select count(*) from pg_prepared_statements") == "0"
    b.terminate()


def test_session_mode_set_outside_transaction(pool64):
    proxy = pool64("session", pool_size=2)
    with psycopg.connect(proxy.dsn(), autocommit=True) as conn:
        conn.execute("set timezone = 'America/Chicago'")
        for _ in range(10):
            assert conn.execute("show timezone").fetchone()[0] == "America/Chicago"
