"""TLS between pool64 and PostgreSQL: libpq negotiates it, the relay reads and writes through libpq's own SSL
session on the TLS loop (LibPQTLSHandler bridged to the relay loop by ChannelTransport)."""

import os
import shutil
import tempfile

import pytest

import harness
from conftest import POOL64_BIN
from test_pgbench import assert_clean_run, run_pgbench


class TLSPgServer(harness.PgServer):
    """PostgreSQL with ssl=on; pool64 reaches it with sslmode=require."""

    @property
    def database_url(self) -> str:
        return super().database_url + "?sslmode=require"


@pytest.fixture(scope="module")
def tls_pg():
    server = TLSPgServer()
    try:
        server.init()
        cert, key = os.path.join(server.datadir, "server.crt"), os.path.join(server.datadir, "server.key")
        server.run_as_postgres(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                                "-subj", "/CN=localhost", "-keyout", key, "-out", cert])
        os.chmod(key, 0o600)
        with open(os.path.join(server.datadir, "postgresql.conf"), "a") as f:
            f.write("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n")
        server.restart()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def tls_proxy(tls_pg):
    if harness.is_pgbouncer():
        pytest.skip("pool64's server-side TLS path; the PgBouncer harness run does not configure server TLS")
    workdir = tempfile.mkdtemp(prefix="pool64-server-tls-")
    proxy = harness.start_pool64(POOL64_BIN, tls_pg, "transaction", workdir, [], {"pool_size": 3})
    try:
        yield proxy
    finally:
        proxy.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_server_connections_use_tls(tls_proxy):
    out = harness.psql(tls_proxy.dsn(), sql="select ssl from pg_stat_ssl where pid = pg_backend_pid()")
    assert out.stdout.strip() == "t", out.stdout + out.stderr


def test_large_results_over_server_tls(tls_pg, tls_proxy):
    out = harness.psql(tls_proxy.dsn(), sql="select length(repeat('x', 5000000))")
    assert out.stdout.strip() == "5000000"
    sql = "select md5(string_agg(g::text, ',')) from generate_series(1, 200000) g"
    via_proxy = harness.psql(tls_proxy.dsn(), sql=sql).stdout.strip()
    direct = harness.psql(tls_pg.app_dsn, sql=sql).stdout.strip()
    assert len(via_proxy) == 32 and via_proxy == direct
    # 100k rows streamed back through the TLS session
    rows = harness.psql(tls_proxy.dsn(), sql="select g from generate_series(1, 100000) g").stdout.split()
    assert len(rows) == 100000 and rows[-1] == "100000"


@pytest.mark.parametrize("protocol", ["simple", "extended", "prepared"])
def test_pgbench_over_server_tls(tls_proxy, protocol):
    proc, result = run_pgbench(tls_proxy, "-M", protocol, "-S", "-c", "6", "-j", "2", "-T", "3")
    assert_clean_run(proc, result)
