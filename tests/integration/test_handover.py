"""Zero-downtime replacement on one host (issue 19, part 5): a new pool64 started with the same
--handover-socket takes the listening sockets over from the running one, which serves the clients it has until
they leave and then exits 0. pgbench keeps running through the swap with no failed transaction and no refused
connection, and a CancelRequest that reaches the new process for a client of the old one cancels that client's
query (forwarded over the hand-over socket)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

import harness
from conftest import POOL64_BIN

pytestmark = pytest.mark.skipif(harness.is_pgbouncer(), reason="pool64's own listener hand-over")


def readyz(admin_port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def wait_for_log(proxy: harness.ProxyProcess, needle: str, timeout: float = 15) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in proxy.log_text(limit=10_000_000):
            return True
        time.sleep(0.1)
    return False


def send_cancel(port: int, key: tuple[int, int]) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack("!iiii", 16, harness.CANCEL_REQUEST_CODE, key[0], key[1]))
        # The server closes the connection without an answer, as PostgreSQL does.
        s.settimeout(5)
        assert s.recv(1) == b""


def pgbench(proxy: harness.ProxyProcess, *args: str) -> subprocess.Popen:
    return subprocess.Popen([harness.pg_tool("pgbench"), "-n", *args, proxy.dsn()], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)


def finished_cleanly(bench: subprocess.Popen, what: str) -> int:
    out, err = bench.communicate(timeout=90)
    assert bench.returncode == 0, f"{what} exited {bench.returncode}:\n{out}\n{err}"
    failed = re.search(r"number of failed transactions: (\d+)", out)
    assert failed and failed.group(1) == "0", f"{what}:\n{out}\n{err}"
    assert "aborted" not in out + err and "error" not in err.lower(), f"{what}:\n{out}\n{err}"
    done = re.search(r"number of transactions actually processed: (\d+)", out)
    assert done and int(done.group(1)) > 0, f"{what}:\n{out}"
    return int(done.group(1))


@pytest.mark.timeout(240)
def test_new_process_takes_over_listeners_under_load_with_nothing_lost(pg):
    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    workdir = tempfile.mkdtemp(prefix="pool64-handover-")
    sock = os.path.join(workdir, "handover.sock")
    args = ["--handover-socket", sock, "--handover-timeout", "60", "--pool-size", "25"]
    old = new = None
    sleeper = None
    try:
        os.makedirs(os.path.join(workdir, "old"))
        old = harness.start_pool64(POOL64_BIN, pg, "transaction", os.path.join(workdir, "old"), args,
                                   {"log_level": "info"})
        # A client of the old process whose query runs across the swap; it is cancelled through the new one.
        sleeper = harness.WireClient("127.0.0.1", old.port)
        sleeper.login()
        assert sleeper.backend_key is not None
        sleeper.send(harness.message(b"Q", b"SELECT pg_sleep(60)\0"))

        steady = pgbench(old, "-c", "20", "-j", "2", "-T", "20", "-M", "extended")
        churn = pgbench(old, "-C", "-c", "2", "-j", "1", "-T", "20", "-S", "-M", "simple")
        time.sleep(5)
        assert steady.poll() is None and churn.poll() is None

        os.makedirs(os.path.join(workdir, "new"))
        new = harness.start_pool64(POOL64_BIN, pg, "transaction", os.path.join(workdir, "new"), args,
                                   {"log_level": "info"}, port=old.port)
        assert wait_for_log(new, "took the listeners over"), new.log_text()
        assert wait_for_log(old, "listeners handed over"), old.log_text()
        # The old process is not ready any more (its listeners are gone); the new one is.
        assert readyz(old.admin_port) == 503
        assert readyz(new.admin_port) == 200

        # New connections land on the new process now; their keys carry its tag.
        fresh = harness.WireClient("127.0.0.1", old.port)
        fresh.login()
        assert fresh.backend_key is not None
        assert (fresh.backend_key[0] >> 27) != (sleeper.backend_key[0] >> 27)
        assert fresh.query("select 7") == [["7"]]
        fresh.terminate()

        # The cancel reaches the new process, which forwards it to the old one, which cancels the sleeper's query.
        send_cancel(old.port, sleeper.backend_key)
        sleeper.sock.settimeout(15)
        fields = None
        while True:
            tag, payload = sleeper.recv_message()
            if tag == b"E":
                fields = harness.parse_error_fields(payload)
            if tag == b"Z":
                break
        assert fields is not None and fields.get("C") == "57014", fields
        stats = harness.admin_stats(new)
        assert stats["totals"]["cancels_forwarded"] >= 1, stats["totals"]

        steady_done = finished_cleanly(steady, "pgbench -c 20 -T 20 across the hand-over")
        churn_done = finished_cleanly(churn, "pgbench -C -c 2 -T 20 across the hand-over")
        print(f"across the hand-over: {steady_done} transactions steady, {churn_done} connections churned; 0 failed")

        # The old process still served its sleeper after the hand-over; once that leaves it exits 0 by itself.
        assert sleeper.query("select 1") == [["1"]]
        assert old.alive()
        sleeper.terminate()
        sleeper = None
        assert old.proc.wait(timeout=30) == 0, old.log_text()
        assert "pool64 stopped" in old.log_text(limit=10_000_000)

        # The new process goes on, and can itself be replaced the same way later.
        assert harness.psql_select1(new.dsn())
        assert harness.psql_select1(new.dsn(host="::1")) or not harness.ipv6_loopback_available()
    finally:
        if sleeper is not None:
            sleeper.close()
        for p in (old, new):
            if p is not None:
                p.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(120)
def test_without_a_running_predecessor_pool64_binds_and_offers_its_listeners(pg):
    """A stale socket file (the previous process crashed) is no obstacle; the process binds and serves."""
    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    workdir = tempfile.mkdtemp(prefix="pool64-handover-")
    sock = os.path.join(workdir, "handover.sock")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock)
    stale.close()
    proxy = None
    try:
        proxy = harness.start_pool64(POOL64_BIN, pg, "transaction", workdir, ["--handover-socket", sock],
                                     {"log_level": "info"})
        assert "took the listeners over" not in proxy.log_text()
        assert harness.psql_select1(proxy.dsn())
        assert os.stat(sock).st_mode & 0o777 == 0o600
    finally:
        if proxy is not None:
            proxy.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.timeout(120)
def test_sigusr2_starts_the_new_binary_which_takes_over_and_tells_systemd(pg):
    """The binary upgrade under systemd: SIGUSR2 makes pool64 start the executable at its own path with the same
    arguments; the child takes the listeners over, announces MAINPID=<its pid> and READY=1 on NOTIFY_SOCKET (the
    unit has NotifyAccess=all), and the parent exits 0 once its clients are gone. The admin port is shared during the
    overlap (SO_REUSEPORT when handover-socket is set)."""
    from test_systemd_notify import NotifyListener

    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    listener = NotifyListener()
    workdir = listener.dir
    port, admin_port = harness.free_port(), harness.free_port()
    args = [POOL64_BIN, "--listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin_port}",
            "--handover-socket", os.path.join(workdir, "handover.sock"), "--log-level", "info"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL64_") and k != "NOTIFY_SOCKET"}
    env.update({"DATABASE_URL": pg.database_url, "NOTIFY_SOCKET": listener.address})
    log_path = os.path.join(workdir, "pool64.log")
    successor = None
    with open(log_path, "ab") as log:
        parent = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  cwd=workdir)
    try:
        first, _, _ = listener.wait_for("READY", 30)
        assert first["MAINPID"] == str(parent.pid)
        client = harness.WireClient("127.0.0.1", port)
        client.login()
        parent.send_signal(signal.SIGUSR2)
        ready, sender, _ = listener.wait_for("READY", 30)
        successor = int(ready["MAINPID"])
        assert successor != parent.pid and sender == successor, ready
        # The parent still serves the client it has, then leaves by itself.
        assert client.query("select 1") == [["1"]]
        client.terminate()
        assert parent.wait(timeout=30) == 0, open(log_path).read()
        assert harness.psql_select1(harness.dsn("127.0.0.1", port))
        with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/readyz", timeout=5) as resp:
            assert resp.status == 200
        text = open(log_path).read()
        assert "SIGUSR2: started a new pool64" in text and "took the listeners over" in text, text
    finally:
        if parent.poll() is None:
            harness.stop_process(parent)
        if successor is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(successor, signal.SIGTERM)
            for _ in range(100):
                try:
                    os.kill(successor, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.kill(successor, signal.SIGKILL)
        listener.close()
