"""Admin HTTP endpoints of pool64 (issue 5): /healthz, /readyz, /stats, /metrics over IPv4 and
IPv6 loopback, counters under pgbench, Prometheus parsing, bearer-token enforcement, readiness
following the database, and errors by SQLSTATE class; the paged client and server lists and the
POST /admin/pause|resume|reconnect commands (issue 20)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import harness
from conftest import POOL64_BIN

from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.skipif(harness.is_pgbouncer(), reason="admin HTTP endpoints are pool64-only")

PROJECT = "admin-test"
TOKEN = "s3cret-admin-token"
IPV6 = harness.ipv6_loopback_available()


# --------------------------------------------------------------------------------------------
# helpers


def http_get(host: str, port: int, path: str, token: str | None = None, timeout: float = 10
             ) -> tuple[int, str, str]:
    """GET http://host:port/path; return (status, content-type, body) also for 4xx/5xx."""
    h = f"[{host}]" if ":" in host else host
    req = urllib.request.Request(f"http://{h}:{port}{path}")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def get_json(host: str, port: int, path: str, token: str | None = None) -> tuple[int, dict]:
    status, _, body = http_get(host, port, path, token)
    return status, json.loads(body)


def metric_samples(text: str) -> dict[str, list]:
    """Parse Prometheus text with the reference parser; map sample name -> [Sample]."""
    out: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def pool_sample(samples: dict[str, list], name: str, **labels: str):
    want = {"project": PROJECT, "database": harness.APP_DB, "user": harness.APP_USER, **labels}
    matches = [s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in want.items())]
    assert len(matches) == 1, f"expected one {name}{want}, found {matches} (names: {sorted(samples)[:80]})"
    return matches[0]


def run_pgbench(dsn_str: str, *args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess, int]:
    cmd = [harness.pg_tool("pgbench"), *args, dsn_str]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    m = re.search(r"number of transactions actually processed: (\d+)", proc.stdout)
    processed = int(m.group(1)) if m else -1
    return proc, processed


def start_proxy(pg: harness.PgServer, extra_args: list[str], log_level: str = "info") -> harness.ProxyProcess:
    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    workdir = tempfile.mkdtemp(prefix="pool64-admin-")
    try:
        return harness.start_pool64(POOL64_BIN, pg, "transaction", workdir, extra_args, {"log_level": log_level})
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def stop_proxy(proxy: harness.ProxyProcess) -> None:
    proxy.stop()
    shutil.rmtree(proxy.workdir, ignore_errors=True)


def admin_hosts(proxy) -> list[tuple[str, int]]:
    hosts = [("127.0.0.1", proxy.admin_port)]
    if IPV6:
        hosts.append(("::1", proxy.admin6_port))
    return hosts


def assert_alive(proxy) -> None:
    assert proxy.alive(), f"pool64 exited with {proxy.proc.returncode}:\n{proxy.log_text()[-4000:]}"


# --------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def admin_proxy(pg):
    """pool64 with a second admin listener on [::1] and a project id, no token."""
    admin6 = harness.free_port()
    extra = ["--project", PROJECT]
    if IPV6:
        extra += ["--admin-listen", f"[::1]:{admin6}"]
    proxy = start_proxy(pg, extra)
    proxy.admin6_port = admin6
    proxy.pg_port = pg.port
    assert harness.wait_for_port("127.0.0.1", proxy.admin_port, 10)
    if IPV6:
        assert harness.wait_for_port("::1", admin6, 10), "admin listener on [::1] did not come up"
    yield proxy
    stop_proxy(proxy)


# --------------------------------------------------------------------------------------------
# tests


@pytest.mark.timeout(60)
def test_every_endpoint_over_ipv4_and_ipv6(admin_proxy):
    hosts = admin_hosts(admin_proxy)
    if not IPV6:
        pytest.skip("no IPv6 loopback on this machine")
    for host, port in hosts:
        status, ctype, body = http_get(host, port, "/healthz")
        assert status == 200, (host, body)
        assert "json" in ctype
        assert json.loads(body) == {"status": "ok"}

        status, body_json = get_json(host, port, "/readyz")
        assert status == 200, (host, body_json)
        assert body_json["ready"] is True

        status, stats = get_json(host, port, "/stats")
        assert status == 200, host
        proc = stats["process"]
        assert proc["project"] == PROJECT
        assert proc["draining"] is False
        assert proc["pool_mode"] == "transaction"
        assert proc["version"]
        assert proc["uptime_seconds"] > 0
        assert f"127.0.0.1:{admin_proxy.port}" in proc["listeners"]
        assert f"127.0.0.1:{admin_proxy.admin_port}" in proc["admin_listeners"]
        assert f"[::1]:{admin_proxy.admin6_port}" in proc["admin_listeners"]
        for key in ("clients_accepted", "clients_rejected", "clients_current", "protocol_errors",
                    "auth_failures", "close_reasons"):
            assert key in stats["totals"], key
        assert "resolver" in stats
        pool = harness.app_pool(stats)
        for key in ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_login", "maxwait_us",
                    "pool_mode", "total_xact_count", "total_query_count", "total_received", "total_sent",
                    "total_xact_time", "total_query_time", "total_wait_time", "pinned_clients",
                    "xact_latency_us", "wait_latency_us", "route", "server_address", "errors_by_sqlstate_class"):
            assert key in pool, key
        assert pool["total_xact_count"] >= 1  # the harness's readiness SELECT 1

        status, ctype, text = http_get(host, port, "/metrics")
        assert status == 200, host
        assert ctype.startswith("text/plain")
        samples = metric_samples(text)
        assert pool_sample(samples, "pool64_xact_count_total").value >= 1
        assert pool_sample(samples, "pool64_pool_size").value == harness.app_pool(stats)["pool_size"]

        status, _, _ = http_get(host, port, "/no-such-endpoint")
        assert status == 404, (host, status)
    assert_alive(admin_proxy)


@pytest.mark.timeout(90)
def test_stats_and_metrics_follow_pgbench(admin_proxy):
    host, port = "127.0.0.1", admin_proxy.admin_port
    status, before = get_json(host, port, "/stats")
    assert status == 200
    b = harness.app_pool(before)

    clients, per_client = 4, 200
    proc, processed = run_pgbench(admin_proxy.dsn(), "-n", "-S", "-c", str(clients), "-t", str(per_client),
                                  "-M", "simple")
    assert proc.returncode == 0, f"pgbench failed:\n{proc.stdout}\n{proc.stderr}"
    assert processed == clients * per_client, proc.stdout
    time.sleep(0.3)

    # /metrics, then /stats at once (no traffic in between): the counters must agree exactly.
    status, _, text = http_get(host, port, "/metrics")
    assert status == 200
    status, after = get_json(host, port, "/stats")
    assert status == 200
    a = harness.app_pool(after)

    slack = clients + 2
    xacts = a["total_xact_count"] - b["total_xact_count"]
    queries = a["total_query_count"] - b["total_query_count"]
    assert processed <= xacts <= processed + slack, (processed, xacts)
    # pgbench -S in simple mode: one statement per transaction, one ReadyForQuery each
    assert processed <= queries <= processed + slack, (processed, queries)
    assert a["total_received"] > b["total_received"] + processed * 20
    assert a["total_sent"] > b["total_sent"] + processed * 20
    assert a["total_xact_time"] > b["total_xact_time"]
    assert a["total_query_time"] > b["total_query_time"]
    lat = a["xact_latency_us"]
    assert lat["count"] >= processed, lat
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"], lat
    assert a["route"] == "ipv4"
    assert a["server_address"] == f"127.0.0.1:{admin_proxy.pg_port}"
    assert a["sv_active"] == 0 and a["cl_active"] == 0 and a["cl_waiting"] == 0, a
    assert a["total_server_connections"] >= 1
    assert 1 <= a["sv_idle"] + a["sv_used"] <= a["pool_size"]
    assert after["totals"]["clients_accepted"] >= before["totals"]["clients_accepted"] + clients

    samples = metric_samples(text)
    assert pool_sample(samples, "pool64_xact_count_total").value == a["total_xact_count"]
    assert pool_sample(samples, "pool64_query_count_total").value == a["total_query_count"]
    assert pool_sample(samples, "pool64_transaction_duration_seconds_count").value == a["total_xact_count"]
    assert pool_sample(samples, "pool64_transaction_duration_seconds_bucket", le="+Inf").value \
        == a["total_xact_count"]
    assert pool_sample(samples, "pool64_transaction_duration_seconds_sum").value > 0
    assert pool_sample(samples, "pool64_received_bytes_total").value == a["total_received"]
    assert pool_sample(samples, "pool64_sent_bytes_total").value == a["total_sent"]
    assert pool_sample(samples, "pool64_client_wait_duration_seconds_count").value >= 0
    assert pool_sample(samples, "pool64_cl_active").value == 0
    # histogram buckets are cumulative
    buckets = sorted(
        (float(s.labels["le"]), s.value) for s in samples["pool64_transaction_duration_seconds_bucket"]
        if s.labels.get("database") == harness.APP_DB and s.labels.get("user") == harness.APP_USER)
    assert all(x[1] <= y[1] for x, y in zip(buckets, buckets[1:])), buckets
    assert_alive(admin_proxy)


@pytest.mark.timeout(30)
def test_errors_by_sqlstate_class(admin_proxy):
    host, port = "127.0.0.1", admin_proxy.admin_port
    _, before = get_json(host, port, "/stats")
    class22 = harness.app_pool(before)["errors_by_sqlstate_class"].get("22", 0)
    client = harness.WireClient("127.0.0.1", admin_proxy.port)
    try:
        client.login()
        with pytest.raises(harness.WireError) as err:
            client.query("select 1/0")
        assert err.value.sqlstate == "22012"
        assert client.scalar("select 42") == "42"  # the connection stays usable
    finally:
        client.terminate()
    time.sleep(0.2)
    _, after = get_json(host, port, "/stats")
    errors = harness.app_pool(after)["errors_by_sqlstate_class"]
    assert errors.get("22", 0) == class22 + 1, errors


@pytest.mark.timeout(60)
def test_admin_token_enforced(pg):
    admin6 = harness.free_port()
    extra = ["--project", PROJECT, "--admin-token", TOKEN]
    if IPV6:
        extra += ["--admin-listen", f"[::1]:{admin6}"]
    proxy = start_proxy(pg, extra)
    proxy.admin6_port = admin6
    try:
        for host, port in admin_hosts(proxy):
            for path in ("/stats", "/metrics"):
                status, _, body = http_get(host, port, path)
                assert status == 401, (host, path, status, body)
                assert "total_xact_count" not in body  # no data leaks without a token
                status, _, _ = http_get(host, port, path, token="wrong-token")
                assert status == 401, (host, path, status)
                status, _, _ = http_get(host, port, path, token=TOKEN + "x")
                assert status == 401, (host, path, status)
                status, _, body = http_get(host, port, path, token=TOKEN)
                assert status == 200, (host, path, status, body)
            # a non-Bearer scheme carrying the token is still refused
            req = urllib.request.Request(f"http://{'[::1]' if ':' in host else host}:{port}/stats")
            req.add_header("Authorization", f"Basic {TOKEN}")
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            assert e.value.code == 401
            _, stats = get_json(host, port, "/stats", token=TOKEN)
            assert stats["process"]["project"] == PROJECT
            # probes stay open without a token
            status, _, body = http_get(host, port, "/healthz")
            assert status == 200 and json.loads(body) == {"status": "ok"}
            status, _, body = http_get(host, port, "/readyz")
            assert status == 200 and json.loads(body)["ready"] is True
        assert_alive(proxy)
    finally:
        stop_proxy(proxy)


def poll_readyz(host: str, port: int, want: int, timeout: float = 15) -> tuple[int, dict]:
    deadline = time.monotonic() + timeout
    status, body = -1, {}
    while time.monotonic() < deadline:
        status, _, text = http_get(host, port, "/readyz", timeout=10)
        body = json.loads(text)
        if status == want:
            return status, body
        time.sleep(0.3)
    return status, body


@pytest.mark.timeout(90)
def test_readyz_follows_database_without_restart():
    """A private PostgreSQL (the session one is shared with other tests) is stopped and started
    again under a running pool64; /readyz must go 503 and return to 200."""
    own_pg = harness.PgServer()
    proxy = None
    try:
        own_pg.init(pgbench=False)
        admin6 = harness.free_port()
        extra = ["--project", PROJECT]
        if IPV6:
            extra += ["--admin-listen", f"[::1]:{admin6}"]
        proxy = start_proxy(own_pg, extra)
        proxy.admin6_port = admin6
        pid = proxy.proc.pid
        for host, port in admin_hosts(proxy):
            status, body = poll_readyz(host, port, 200, timeout=5)
            assert status == 200, (host, body)

        own_pg.stop("fast")
        for host, port in admin_hosts(proxy):
            status, body = poll_readyz(host, port, 503)
            assert status == 503, (host, status, body)
            assert body["ready"] is False and body.get("reason"), body
        # liveness is not readiness
        status, _, _ = http_get("127.0.0.1", proxy.admin_port, "/healthz")
        assert status == 200
        assert not harness.psql_select1(proxy.dsn())

        own_pg.start()
        for host, port in admin_hosts(proxy):
            status, body = poll_readyz(host, port, 200)
            assert status == 200, (host, status, body)
            assert body["ready"] is True
        assert proxy.alive() and proxy.proc.pid == pid, "pool64 must not have restarted"
        assert harness.psql_select1(proxy.dsn()), "queries through pool64 work again"
        _, stats = get_json("127.0.0.1", proxy.admin_port, "/stats")
        assert harness.app_pool(stats)["server_connect_failures"] >= 1
    finally:
        if proxy is not None:
            stop_proxy(proxy)
        own_pg.destroy()


# --------------------------------------------------------------------------------------------
# issue 20: SHOW CLIENTS / SHOW SERVERS over HTTP, and PAUSE / RESUME / RECONNECT as POST endpoints


def http_post(host: str, port: int, path: str, token: str | None = None, timeout: float = 70
              ) -> tuple[int, dict, dict]:
    """POST http://host:port/path with an empty body; return (status, headers, JSON body) also for 4xx/5xx."""
    h = f"[{host}]" if ":" in host else host
    req = urllib.request.Request(f"http://{h}:{port}{path}", data=b"", method="POST")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read().decode())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read().decode())


@pytest.fixture(scope="module")
def token_proxy(pg):
    """pool64 with an admin token, so the control endpoints are enabled."""
    proxy = start_proxy(pg, ["--project", PROJECT, "--admin-token", TOKEN])
    assert harness.wait_for_port("127.0.0.1", proxy.admin_port, 10)
    yield proxy
    stop_proxy(proxy)


def open_clients(proxy, n: int) -> list[harness.WireClient]:
    clients = []
    for i in range(n):
        c = harness.WireClient("127.0.0.1", proxy.port)
        c.login(application_name=f"http-page-{i}")
        assert c.scalar("select 1") == "1"
        clients.append(c)
    return clients


@pytest.mark.timeout(60)
def test_stats_pages_clients_and_servers(token_proxy):
    host, port = "127.0.0.1", token_proxy.admin_port
    clients = open_clients(token_proxy, 5)
    try:
        ports = {c.sock.getsockname()[1] for c in clients}
        # /stats keeps its document and gains one page of each list
        status, stats = get_json(host, port, "/stats?limit=2", token=TOKEN)
        assert status == 200
        for key in ("process", "pools", "resolver", "totals"):
            assert key in stats, key
        assert harness.app_pool(stats)["total_xact_count"] >= 5
        assert stats["limit"] == 2 and stats["offset"] == 0
        assert len(stats["clients"]) == 2 and stats["clients_total"] >= 5
        assert len(stats["servers"]) <= 2 and stats["servers_total"] >= 1

        # page through /stats/clients two at a time: every client once, ids ascending
        seen, offset = [], 0
        while True:
            status, page = get_json(host, port, f"/stats/clients?limit=2&offset={offset}", token=TOKEN)
            assert status == 200, page
            assert set(page) == {"clients", "clients_total", "limit", "offset"}, page.keys()
            assert len(page["clients"]) <= 2
            if not page["clients"]:
                break
            seen += page["clients"]
            offset += len(page["clients"])
        ids = [c["id"] for c in seen]
        assert ids == sorted(ids) and len(set(ids)) == len(ids), ids
        ours = [c for c in seen if c["port"] in ports and c["address"] == "127.0.0.1"]
        assert len(ours) == 5, seen
        for c in ours:
            assert c["user"] == harness.APP_USER and c["database"] == harness.APP_DB, c
            assert c["state"] == "active", c
            assert c["application_name"].startswith("http-page-"), c
            assert c["local_port"] == token_proxy.port, c
            for key in ("connect_time", "request_time", "wait_us", "tls", "prepared_statements", "pinned"):
                assert key in c, key

        status, servers = get_json(host, port, "/stats/servers?limit=1000", token=TOKEN)
        assert status == 200
        assert set(servers) == {"servers", "servers_total", "limit", "offset"}
        assert servers["servers_total"] == len(servers["servers"]) >= 1
        server = servers["servers"][0]
        assert server["database"] == harness.APP_DB and server["user"] == harness.APP_USER, server
        assert server["state"] in ("idle", "active", "used"), server
        assert server["route"] == "ipv4" and server["address"] == "127.0.0.1", server
        assert server["remote_pid"] > 0

        # bad paging is a 400 with a JSON reason; the token still guards the lists
        for bad in ("/stats?limit=1001", "/stats/clients?limit=-1", "/stats/servers?offset=x"):
            status, body = get_json(host, port, bad, token=TOKEN)
            assert status == 400 and "error" in body, (bad, status, body)
        status, _, body = http_get(host, port, "/stats/clients")
        assert status == 401 and "user" not in body
    finally:
        for c in clients:
            c.terminate()
    assert_alive(token_proxy)


@pytest.mark.timeout(60)
def test_control_endpoints_need_the_token(token_proxy, admin_proxy):
    host, port = "127.0.0.1", token_proxy.admin_port
    for action in ("pause", "resume", "reconnect"):
        status, headers, body = http_post(host, port, f"/admin/{action}")
        assert status == 401 and body["ok"] is False, (action, status, body)
        status, _, body = http_post(host, port, f"/admin/{action}", token="wrong-token")
        assert status == 401 and body["ok"] is False, (action, status, body)
        status, _, _ = http_get(host, port, f"/admin/{action}", token=TOKEN)
        assert status == 405, (action, status)
        # without a configured token the commands are refused outright, never open
        status, _, body = http_post("127.0.0.1", admin_proxy.admin_port, f"/admin/{action}")
        assert status == 403 and body["ok"] is False and "token" in body["error"], (action, status, body)
    # a typo in the parameter is refused rather than widened to every database
    status, _, body = http_post(host, port, f"/admin/pause?db={harness.APP_DB}", token=TOKEN)
    assert status == 400, body
    # nothing was paused by any of that
    assert harness.psql_select1(token_proxy.dsn())
    assert_alive(token_proxy)


@pytest.mark.timeout(90)
def test_pause_resume_reconnect_over_http(token_proxy):
    import threading

    host, port = "127.0.0.1", token_proxy.admin_port
    log_offset = token_proxy.log_size()
    idle = harness.WireClient("127.0.0.1", token_proxy.port)
    idle.login()
    assert idle.scalar("select 1") == "1"
    try:
        status, _, body = http_post(host, port, f"/admin/pause?database={harness.APP_DB}", token=TOKEN, timeout=30)
        assert status == 200 and body == {"ok": True}, (status, body)
        status, _, body = http_post(host, port, f"/admin/pause?database={harness.APP_DB}", token=TOKEN)
        assert status == 409 and body["ok"] is False and body["sqlstate"] == "08P01", body

        result: dict = {}

        def run_query():
            try:
                result["value"] = idle.scalar("select 42")
            except Exception as e:  # noqa: BLE001 - reported by the assertion below
                result["error"] = e

        worker = threading.Thread(target=run_query, daemon=True)
        worker.start()
        worker.join(1.5)
        assert worker.is_alive(), f"a query ran while the database was paused: {result}"
        _, page = get_json(host, port, "/stats/clients?limit=1000", token=TOKEN)
        waiting = [c for c in page["clients"] if c["port"] == idle.sock.getsockname()[1]]
        assert waiting and waiting[0]["state"] == "waiting", waiting

        status, _, body = http_post(host, port, f"/admin/resume?database={harness.APP_DB}", token=TOKEN)
        assert status == 200 and body == {"ok": True}, (status, body)
        worker.join(10)
        assert not worker.is_alive() and result.get("value") == "42", result
        status, _, body = http_post(host, port, "/admin/resume", token=TOKEN)
        assert status == 409 and body["sqlstate"] == "08P01", body

        # a pause waits for an open transaction to end
        idle.query("begin")
        idle.query("select 1")
        pause: dict = {}
        pauser = threading.Thread(
            target=lambda: pause.update(r=http_post(host, port, "/admin/pause", token=TOKEN, timeout=30)),
            daemon=True)
        pauser.start()
        pauser.join(1.5)
        assert pauser.is_alive(), f"pause returned while a transaction was open: {pause}"
        idle.query("commit")
        pauser.join(15)
        assert not pauser.is_alive() and pause["r"][0] == 200, pause
        status, _, body = http_post(host, port, "/admin/resume", token=TOKEN)
        assert status == 200, body

        status, _, body = http_post(host, port, "/admin/reconnect?database=no_such_db", token=TOKEN)
        assert status == 409 and "no_such_db" in body["error"], body
        status, _, body = http_post(host, port, f"/admin/reconnect?database={harness.APP_DB}", token=TOKEN)
        assert status == 200 and body == {"ok": True}, body
        assert idle.scalar("select 7") == "7"
    finally:
        idle.terminate()
    log = token_proxy.log_text(log_offset)
    assert "admin command" in log and "127.0.0.1" in log, log[-3000:]
    assert_alive(token_proxy)
