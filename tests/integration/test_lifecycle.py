"""pool64 lifecycle (issue 5): SIGTERM drains under load and exits 0; SIGHUP reloads the config
file without dropping clients and rejects an invalid file without applying anything."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import harness
from conftest import POOL64_BIN

pytestmark = pytest.mark.skipif(harness.is_pgbouncer(), reason="pool64 lifecycle (signals, admin HTTP)")

SHUTDOWN_TIMEOUT = 5


# --------------------------------------------------------------------------------------------
# helpers


def http_get(port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_proxy(pg, extra_args: list[str], log_level: str = "info") -> harness.ProxyProcess:
    """pool64 in transaction mode; no --pool-size flag (so a config file can set it)."""
    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    workdir = tempfile.mkdtemp(prefix="pool64-lifecycle-")
    try:
        return harness.start_pool64(POOL64_BIN, pg, "transaction", workdir, extra_args, {"log_level": log_level})
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


@pytest.fixture
def proxies():
    started: list[harness.ProxyProcess] = []
    yield started
    for proxy in started:
        proxy.stop()
        shutil.rmtree(proxy.workdir, ignore_errors=True)


def wait_for_log(proxy, needle: str, offset: int = 0, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proxy.log_text(offset, limit=10_000_000):
            return True
        time.sleep(0.1)
    return False


def attempt_new_client(port: int) -> str:
    """Try to log in as a new client: 'refused', a FATAL SQLSTATE, 'closed', or 'ok'."""
    try:
        client = harness.WireClient("127.0.0.1", port, timeout=5)
    except ConnectionRefusedError:
        return "refused"
    except OSError as e:
        return f"oserror:{e}"
    try:
        client.login()
        client.query("select 1")
        return "ok"
    except harness.WireError as e:
        return e.sqlstate or "error"
    except (ConnectionError, OSError):
        return "closed"
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# SIGTERM


@pytest.mark.timeout(60)
def test_sigterm_drains_pgbench_and_exits_zero(pg, proxies):
    proxy = start_proxy(pg, ["--shutdown-timeout", str(SHUTDOWN_TIMEOUT)])
    proxies.append(proxy)
    log_offset = proxy.log_size()

    # A transaction that is running when SIGTERM arrives and must be allowed to finish.
    holder = harness.WireClient("127.0.0.1", proxy.port, timeout=20)
    holder.login()
    holder.query("BEGIN")
    holder_pid = holder.scalar("select pg_backend_pid()")

    bench = subprocess.Popen(
        [harness.pg_tool("pgbench"), "-n", "-c", "8", "-j", "2", "-T", "10", "-M", "extended", proxy.dsn()],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        time.sleep(2.5)
        assert bench.poll() is None, f"pgbench ended early:\n{bench.communicate()}"
        xacts = harness.app_pool(harness.admin_stats(proxy))["total_xact_count"]
        assert xacts > 20, "pgbench is not getting through pool64"
        holder.send(harness.message(b"Q", b"select pg_sleep(3)\0"))
        time.sleep(0.3)

        proxy.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()

        # /readyz goes 503 at once, while the process is still draining.
        ready_status, ready_body = None, ""
        while time.monotonic() - signalled < 1.0:
            ready_status, ready_body = http_get(proxy.admin_port, "/readyz", timeout=2)
            if ready_status == 503:
                break
            time.sleep(0.05)
        assert ready_status == 503, (ready_status, ready_body)
        ready_json = json.loads(ready_body)
        assert ready_json["ready"] is False and "drain" in ready_json["reason"], ready_body
        assert proxy.alive(), "pool64 must drain, not exit at once, while a transaction runs"
        status, body = http_get(proxy.admin_port, "/healthz", timeout=2)
        assert status == 200, body
        draining_stats = harness.admin_stats(proxy)
        assert draining_stats["process"]["draining"] is True

        # New connections are refused (listener closed) or told the server is shutting down.
        time.sleep(0.2)
        outcomes = [attempt_new_client(proxy.port) for _ in range(3)]
        assert all(o in ("refused", "57P01", "57P03") for o in outcomes), outcomes
        assert not harness.psql_select1(proxy.dsn())

        # The running transaction finishes normally, during the drain.
        tag, payload = None, b""
        rows_ok = False
        while tag != b"Z":
            tag, payload = holder.recv_message()
            assert tag != b"E", f"running transaction was cut: {harness.parse_error_fields(payload)}"
            if tag == b"C":
                rows_ok = payload.startswith(b"SELECT 1")
        assert rows_ok and payload == b"T", (tag, payload)
        assert holder.scalar("select pg_backend_pid()") == holder_pid
        holder.query("COMMIT")
        assert holder.transaction_status == "I"

        # Then pool64 ends everything and exits 0 within the timeout (+ a few seconds).
        try:
            rc = proxy.proc.wait(timeout=SHUTDOWN_TIMEOUT + 5 - (time.monotonic() - signalled))
        except subprocess.TimeoutExpired:
            pytest.fail(f"pool64 still running {SHUTDOWN_TIMEOUT + 5}s after SIGTERM:\n{proxy.log_text(log_offset)}")
        elapsed = time.monotonic() - signalled
        assert rc == 0, f"pool64 exited with {rc}:\n{proxy.log_text(log_offset)[-5000:]}"
        assert elapsed < SHUTDOWN_TIMEOUT + 5, elapsed

        # The holder, idle again, was ended by pool64 with FATAL 57P01 and its socket closed.
        state, data = harness.read_until_closed_or_message(holder.sock, timeout=3)
        assert harness.error_sqlstates(data) == ["57P01"] and state == "closed", (state, data)

        out, err = bench.communicate(timeout=30)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.communicate()
        holder.close()

    m = re.search(r"number of transactions actually processed: (\d+)", out)
    assert m and int(m.group(1)) > 0, f"pgbench processed nothing:\nstdout:\n{out}\nstderr:\n{err}"
    failed = re.search(r"number of failed transactions: (\d+)", out)
    if failed:
        assert int(failed.group(1)) == 0, out
    # Clients pgbench aborted were ended by the shutdown (57P01) while waiting to start a new
    # transaction: the abort is at command 4, the script's BEGIN (commands 0-3 are \set), never
    # inside a transaction that was already running.
    aborts = [line for line in err.splitlines() if "aborted" in line and "Run was aborted" not in line]
    assert len(aborts) <= 8, err
    for line in aborts:
        assert re.search(r"client \d+ script 0 aborted in command 4 query 0: FATAL:  terminating connection "
                         r"due to administrator command", line), f"unexpected pgbench abort: {line}\n{err}"
    others = [line for line in err.splitlines() if line.strip() and line not in aborts
              and "Run was aborted; the above results are incomplete" not in line]
    assert not others, f"pgbench reported errors other than the shutdown:\n{err}"

    log = proxy.log_text(log_offset, limit=10_000_000)
    assert "draining" in log
    assert "pool64 stopped" in log
    for bad in ("Fatal error", "fatalError", "Segmentation", "SIGSEGV", "Illegal instruction", "panic"):
        assert bad not in log, log[-5000:]


# --------------------------------------------------------------------------------------------
# SIGHUP


def write_config(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def poll_pool_size(proxy, want: int, timeout: float = 5) -> int:
    deadline = time.monotonic() + timeout
    size = -1
    while time.monotonic() < deadline:
        size = harness.app_pool(harness.admin_stats(proxy))["pool_size"]
        if size == want:
            return size
        time.sleep(0.1)
    return size


@pytest.mark.timeout(60)
def test_sighup_reloads_pool_size_and_rejects_invalid_file(pg, proxies):
    workdir = tempfile.mkdtemp(prefix="pool64-config-")
    try:
        config = os.path.join(workdir, "pool64.conf")
        write_config(config, "# pool64 test configuration\npool-size = 7\nquery-wait-timeout = 30\n")
        proxy = start_proxy(pg, ["--config", config])
        proxies.append(proxy)
        assert harness.app_pool(harness.admin_stats(proxy))["pool_size"] == 7, "pool size from the config file at start"

        # A client connected across the reloads, inside a transaction (so it holds one backend).
        client = harness.WireClient("127.0.0.1", proxy.port)
        client.login()
        idle_client = harness.WireClient("127.0.0.1", proxy.port)
        idle_client.login()
        assert idle_client.scalar("select 1") == "1"
        client.query("BEGIN")
        client.query("create temp table reload_probe(n int) on commit drop")
        client.query("insert into reload_probe values (1)")
        backend = client.scalar("select pg_backend_pid()")
        before = harness.admin_stats(proxy)
        closes_before = dict(before["totals"]["close_reasons"])

        # valid change
        offset = proxy.log_size()
        write_config(config, "pool-size = 11\nquery-wait-timeout = 30\n")
        proxy.proc.send_signal(signal.SIGHUP)
        assert poll_pool_size(proxy, 11) == 11, proxy.log_text(offset)
        assert wait_for_log(proxy, "configuration reloaded", offset), proxy.log_text(offset)
        assert "configuration reload rejected" not in proxy.log_text(offset)
        assert proxy.alive()
        client.query("insert into reload_probe values (2)")
        assert client.scalar("select pg_backend_pid()") == backend, "the client kept its server connection"
        assert client.scalar("select sum(n) from reload_probe") == "3"
        assert idle_client.scalar("select 2") == "2"
        snap = harness.admin_stats(proxy)
        assert snap["totals"]["clients_current"] == before["totals"]["clients_current"] >= 2
        assert snap["totals"]["close_reasons"] == closes_before, "no client was dropped by the reload"
        status, metrics = http_get(proxy.admin_port, "/metrics")
        assert status == 200
        assert re.search(r'^pool64_pool_size\{[^}]*database="appdb"[^}]*\} 11(\.0)?$', metrics, re.M), \
            [l for l in metrics.splitlines() if l.startswith("pool64_pool_size")]

        # invalid file: nothing changes, the rejection is logged
        for bad_text in ("pool-size = banana\n", "pool-size = 3\nmin-pool-size = 9\n",
                         "pool-size = 3\nno-such-setting = 1\n"):
            offset = proxy.log_size()
            write_config(config, bad_text)
            proxy.proc.send_signal(signal.SIGHUP)
            assert wait_for_log(proxy, "configuration reload rejected", offset), \
                f"{bad_text!r} not rejected:\n{proxy.log_text(offset)}"
            assert "configuration reloaded" not in proxy.log_text(offset)
            assert harness.app_pool(harness.admin_stats(proxy))["pool_size"] == 11, bad_text
            assert proxy.alive()
            assert client.scalar("select pg_backend_pid()") == backend
            assert idle_client.scalar("select 3") == "3"
        # the first rejection names the bad value
        assert "banana" in proxy.log_text(0, limit=10_000_000)

        client.query("insert into reload_probe values (4)")
        assert client.scalar("select sum(n) from reload_probe") == "7"
        client.query("COMMIT")
        assert client.transaction_status == "I"
        assert harness.admin_stats(proxy)["totals"]["close_reasons"] == closes_before

        # a later valid file is applied again
        offset = proxy.log_size()
        write_config(config, "pool-size = 5\n")
        proxy.proc.send_signal(signal.SIGHUP)
        assert poll_pool_size(proxy, 5) == 5, proxy.log_text(offset)
        assert client.scalar("select 5") == "5"
        client.terminate()
        idle_client.terminate()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(40)
def test_sigterm_drain_is_bounded_by_shutdown_timeout(pg, proxies):
    """A transaction left open past --shutdown-timeout does not hold the process: its client gets
    FATAL 57P01 once the timeout passes, a client waiting for a server gets 57P01 too, exit 0."""
    timeout = 2
    proxy = start_proxy(pg, ["--shutdown-timeout", str(timeout)])
    proxies.append(proxy)
    log_offset = proxy.log_size()
    stuck = harness.WireClient("127.0.0.1", proxy.port, timeout=15)
    stuck.login()
    stuck.query("BEGIN")
    stuck.query("select 1")
    idle = harness.WireClient("127.0.0.1", proxy.port, timeout=15)
    idle.login()
    assert idle.scalar("select 1") == "1"
    try:
        proxy.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        try:
            rc = proxy.proc.wait(timeout=timeout + 5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"pool64 still running {timeout + 5}s after SIGTERM:\n{proxy.log_text(log_offset)}")
        elapsed = time.monotonic() - signalled
        assert rc == 0, proxy.log_text(log_offset)
        assert elapsed >= timeout - 0.5, f"drain ended after {elapsed:.1f}s, before the open transaction's timeout"
        # Read what pool64 sent unprompted (sending first could draw a RST that discards it).
        for name, client in (("in transaction", stuck), ("idle", idle)):
            state, data = harness.read_until_closed_or_message(client.sock, timeout=3)
            assert harness.error_sqlstates(data) == ["57P01"], (name, state, data)
            assert state == "closed", (name, data)
    finally:
        stuck.close()
        idle.close()
    assert "draining" in proxy.log_text(log_offset)


# --------------------------------------------------------------------------------------------
# issue 19: Kubernetes service links must not crash-loop the pod


def test_unknown_pool64_environment_variables_are_logged_and_ignored(pg):
    """A Service named pool64-alpha makes the kubelet inject POOL64_ALPHA_PORT=tcp://… and friends. pool64 used
    to exit 2 with 'invalid setting alpha-port'; now it names them in one warning and serves. A bad value of a known
    setting from the environment still stops startup with exit 2."""
    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    port, admin_port = harness.free_port(), harness.free_port()
    service_links = {
        "POOL64_ALPHA_PORT": "tcp://10.96.0.12:6432",
        "POOL64_ALPHA_PORT_6432_TCP": "tcp://10.96.0.12:6432",
        "POOL64_ALPHA_PORT_6432_TCP_ADDR": "10.96.0.12",
        "POOL64_ALPHA_SERVICE_HOST": "10.96.0.12",
        "POOL64_ALPHA_SERVICE_PORT": "6432",
    }
    # Like `env -i`: only what the kubelet would give, plus the settings.
    env = {"PATH": "/usr/bin:/bin", "DATABASE_URL": pg.database_url, "POOL64_LISTEN": f"127.0.0.1:{port}",
           "POOL64_ADMIN_LISTEN": f"127.0.0.1:{admin_port}", **service_links}
    with tempfile.TemporaryDirectory(prefix="pool64-env-") as workdir:
        log_path = os.path.join(workdir, "pool64.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([POOL64_BIN], env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=workdir)
        try:
            assert harness.wait_for_port("127.0.0.1", port, 30), open(log_path).read()
            assert harness.psql_select1(harness.dsn("127.0.0.1", port)), open(log_path).read()
            text = open(log_path).read()
            warnings = [line for line in text.splitlines() if "name no pool64 setting" in line]
            assert len(warnings) == 1, text
            for name in service_links:
                assert name in warnings[0]
            assert proc.poll() is None
        finally:
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=30)
        assert rc == 0

        bad = subprocess.run([POOL64_BIN], env={**env, "POOL64_POOL_SIZE": "many"}, capture_output=True,
                             text=True, timeout=30, cwd=workdir)
        assert bad.returncode == 2
        assert "pool-size" in bad.stderr and "many" in bad.stderr
