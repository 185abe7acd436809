"""Limits (max_client_conn, query_wait_timeout), TLS to clients, and per-client startup
parameters in transaction mode."""

import os
import pathlib
import shutil
import tempfile
import subprocess
import time

import psycopg
import pytest

from harness import WireClient, WireError, pgbouncer_xfail, psql

BOTH = ("transaction", "session")


def test_max_client_conn(pool64, pool_mode, request):
    pgbouncer_xfail(request, "answers max_client_conn with 08P01 rather than 53300", modes=BOTH)
    proxy = pool64(pool_mode, max_client_conn=5, pool_size=5)
    held = []
    try:
        # The readiness probe has left; wait until the proxy has counted it out.
        time.sleep(0.5)
        for _ in range(5):
            c = WireClient(proxy.host, proxy.port)
            c.login()
            held.append(c)
        extra = WireClient(proxy.host, proxy.port)
        with pytest.raises((WireError, ConnectionError)) as excinfo:
            extra.login()
        extra.close()
        assert isinstance(excinfo.value, WireError), f"closed without an ErrorResponse: {excinfo.value!r}"
        assert excinfo.value.sqlstate == "53300", excinfo.value.fields
    finally:
        for c in held:
            c.terminate()
    # Slots free up again.
    time.sleep(0.5)
    assert psql(proxy.dsn(), sql="select 'room again'").stdout.strip() == "room again"


def test_query_wait_timeout(pool64):
    proxy = pool64("transaction", pool_size=1, query_wait_timeout=2)
    a = WireClient(proxy.host, proxy.port)
    a.login()
    a.query("begin")
    a.query("select 1")  # A now holds the only server connection
    b = WireClient(proxy.host, proxy.port, timeout=30)
    b.login()
    started = time.monotonic()
    with pytest.raises((WireError, ConnectionError)) as excinfo:
        b.query("select 'b got through'")
    waited = time.monotonic() - started
    assert waited < 15, f"query_wait_timeout 2 s but B waited {waited:.1f} s"
    if isinstance(excinfo.value, WireError):
        assert excinfo.value.sqlstate, excinfo.value.fields
    b.close()
    a.query("commit")
    assert a.scalar("select 'a fine'") == "a fine"
    a.terminate()


def test_per_client_parameters_transaction_mode(pool64):
    """Two clients with different startup parameters share one server connection; each keeps
    seeing its own TimeZone, DateStyle and application_name."""
    proxy = pool64("transaction", pool_size=1)
    a = WireClient(proxy.host, proxy.port)
    a.login(TimeZone="Asia/Tokyo", DateStyle="ISO, YMD", application_name="client-a")
    b = WireClient(proxy.host, proxy.port)
    b.login(TimeZone="America/New_York", DateStyle="SQL, MDY", application_name="client-b")
    assert a.parameters.get("TimeZone") == "Asia/Tokyo"
    assert b.parameters.get("TimeZone") == "America/New_York"
    assert a.parameters.get("application_name") == "client-a"
    for _ in range(5):
        assert a.query("show timezone; ") == [["Asia/Tokyo"]]
        assert b.query("show timezone") == [["America/New_York"]]
        assert a.scalar("show application_name") == "client-a"
        assert b.scalar("show application_name") == "client-b"
        assert a.scalar("select '2024-03-05'::date::text") == "2024-03-05"
        assert b.scalar("select '2024-03-05'::date::text") == "03/05/2024"
    a.terminate()
    b.terminate()


def test_options_startup_parameter(pool64, pool_mode, request):
    pgbouncer_xfail(request, "rejects the 'options' startup parameter", modes=BOTH)
    proxy = pool64(pool_mode, pool_size=1)
    a_dsn = proxy.dsn(options="'-c search_path=pg_catalog,public -c statement_timeout=7s'")
    out = psql(a_dsn, sql="show search_path; show statement_timeout").stdout.splitlines()
    # Exactly what PostgreSQL 15 shows for the same options on a direct connection.
    assert out == ["pg_catalog,public", "7s"], out
    # A client without options, possibly on the same server connection, sees the defaults.
    out = psql(proxy.dsn(), sql="show statement_timeout").stdout.strip()
    assert out == "0"


@pytest.fixture(scope="module")
def tls_files():
    # Not under pytest's tmp dir: that is private to root, and PgBouncer runs as postgres.
    d = pathlib.Path(tempfile.mkdtemp(prefix="pool64-tls-"))
    cert, key = d / "server.crt", d / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    os.chmod(d, 0o755)
    os.chmod(cert, 0o644)
    os.chmod(key, 0o644)  # throwaway key; PgBouncer runs as postgres and must read it
    yield str(cert), str(key)
    shutil.rmtree(d, ignore_errors=True)


def test_tls_to_clients(pool64, pool_mode, tls_files):
    cert, key = tls_files
    proxy = pool64(pool_mode, tls_cert=cert, tls_key=key)
    out = psql(proxy.dsn(sslmode="require"),
               sql="select 'over tls'").stdout.strip()
    assert out == "over tls"
    with psycopg.connect(proxy.dsn(sslmode="require"), autocommit=True) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("select %s::int * 3", (14,)).fetchone() == (42,)
        conn.execute("select repeat('x', 5000000)").fetchone()
    # Plain clients still work when TLS is optional.
    assert psql(proxy.dsn(sslmode="disable"), sql="select 'plain'").stdout.strip() == "plain"
