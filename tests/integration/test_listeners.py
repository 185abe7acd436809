"""Dual-stack listeners (DESIGN decision 6, issue 4): `[::]` accepts IPv4 and IPv6 clients on both the
PostgreSQL and the admin listener, several --listen addresses work side by side, IPv4 peers are logged
as a.b.c.d, and a port already in use stops pool64 with a message naming the address."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

import harness
from harness import free_port, ipv6_loopback_available, psql, stop_process

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
POOL64_BIN = os.path.abspath(os.path.join(REPO_ROOT, os.environ.get("POOL64_BIN", ".build/debug/pool64")))

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _needs_pool64_and_ipv6():
    if harness.PROXY_KIND != "pool64":
        pytest.skip("pool64 listener behaviour")
    if not os.path.exists(POOL64_BIN):
        pytest.fail(f"pool64 binary not found at {POOL64_BIN}", pytrace=False)
    if not ipv6_loopback_available():
        pytest.skip("no IPv6 loopback on this machine")


def http_get(host: str, port: int, path: str, timeout: float = 5) -> tuple[int, str]:
    """Plain HTTP/1.1 GET over a raw socket (no proxy environment)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        hostport = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {hostport}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode("utf-8", "replace")


class Pool64:
    def __init__(self, pg, listen: list[str], admin: list[str], netns: str | None = None):
        self.workdir = tempfile.mkdtemp(prefix="pool64-listeners-")
        self.log_path = os.path.join(self.workdir, "pool64.log")
        args = [POOL64_BIN]
        for a in listen:
            args += ["--listen", a]
        for a in admin:
            args += ["--admin-listen", a]
        args += ["--log-level", "debug"]
        if netns:
            args = ["ip", "netns", "exec", netns, *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("POOL64_")}
        env["DATABASE_URL"] = pg.database_url
        with open(self.log_path, "ab") as log:
            log.write(("$ " + " ".join(args) + "\n").encode())
            log.flush()
            self.proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=harness.raise_nofile, cwd=self.workdir)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read()[-20000:].decode("utf-8", "replace")

    def wait_listening(self, endpoints: list[tuple[str, int]], timeout: float = 30) -> None:
        for host, port in endpoints:
            deadline = time.monotonic() + timeout
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError(f"pool64 exited with {self.proc.returncode}:\n{self.log()}")
                try:
                    socket.create_connection((host, port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise AssertionError(f"pool64 not listening on {host}:{port}:\n{self.log()}")
                    time.sleep(0.1)

    def wait_exit(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"pool64 still running after {timeout}s:\n{self.log()}") from None

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def start(pg):
    started: list[Pool64] = []

    def run(listen: list[str], admin: list[str], netns: str | None = None) -> Pool64:
        p = Pool64(pg, listen, admin, netns)
        started.append(p)
        return p

    yield run
    for p in started:
        p.stop()


@contextlib.contextmanager
def with_log(p: Pool64):
    try:
        yield
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- pool64 log ---\n{p.log()}") from None


def assert_sql_works(host: str, port: int) -> None:
    out = psql(harness.dsn(host, port), sql="select 'ok via ' || current_database()").stdout.strip()
    assert out == "ok via appdb", out


def test_wildcard_listeners_accept_ipv4_and_ipv6(start):
    port, admin = free_port(), free_port()
    p = start([f"[::]:{port}"], [f"[::]:{admin}"])
    with with_log(p):
        p.wait_listening([("127.0.0.1", port), ("::1", port), ("127.0.0.1", admin), ("::1", admin)])
        assert_sql_works("127.0.0.1", port)
        assert_sql_works("::1", port)
        for host in ("127.0.0.1", "::1"):
            status, body = http_get(host, admin, "/healthz")
            assert status == 200, (host, status, body)
            status, body = http_get(host, admin, "/stats")
            assert status == 200 and '"pools"' in body, (host, status, body[:500])
        # IPv4 clients of a [::] socket arrive as ::ffff:127.0.0.1; pool64 shows them as 127.0.0.1.
        log = p.log()
        assert re.search(r"peer=127\.0\.0\.1:\d+", log), "no IPv4 peer logged as 127.0.0.1:PORT"
        assert "::ffff:127.0.0.1" not in log, "IPv4 peer logged in IPv4-mapped form"
        assert re.search(r"peer=\[::1\]:\d+", log), "no IPv6 peer logged as [::1]:PORT"


def test_several_listen_addresses(start):
    port, admin = free_port(), free_port()
    p = start([f"127.0.0.1:{port}", f"[::1]:{port}"], [f"127.0.0.1:{admin}", f"[::1]:{admin}"])
    with with_log(p):
        p.wait_listening([("127.0.0.1", port), ("::1", port), ("127.0.0.1", admin), ("::1", admin)])
        assert_sql_works("127.0.0.1", port)
        assert_sql_works("::1", port)
        for host in ("127.0.0.1", "::1"):
            assert http_get(host, admin, "/healthz")[0] == 200, host


def _occupy(family: int, host: str, port: int) -> socket.socket:
    s = socket.socket(family, socket.SOCK_STREAM)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if host == "::" else 1)
    s.bind((host, port))
    s.listen(1)
    return s


@pytest.mark.parametrize("which,taken,listen_text", [
    ("listen", (socket.AF_INET6, "::"), "[::]:{port}"),
    ("listen", (socket.AF_INET, "127.0.0.1"), "127.0.0.1:{port}"),
    ("listen", (socket.AF_INET6, "::1"), "[::1]:{port}"),
    ("admin", (socket.AF_INET6, "::"), "[::]:{port}"),
])
def test_port_in_use_fails_startup_naming_the_address(start, which, taken, listen_text):
    port, other = free_port(), free_port()
    address = listen_text.format(port=port)
    blocker = _occupy(taken[0], taken[1], port)
    try:
        if which == "listen":
            p = start([address], [f"127.0.0.1:{other}"])
        else:
            p = start([f"127.0.0.1:{other}"], [address])
        rc = p.wait_exit()
        log = p.log()
        assert rc != 0, f"pool64 exited 0 although {address} is taken:\n{log}"
        # The message names the address that could not be bound, as it was given.
        assert address in log.split("\n", 1)[1], f"exit message does not name {address}:\n{log}"
        assert re.search(r"in use|EADDRINUSE|bind", log, re.I), f"no 'address in use' reason:\n{log}"
    finally:
        blocker.close()


@pytest.mark.parametrize("sysctls,hosts", [
    (["net.ipv6.bindv6only=1"], ["::1", "127.0.0.1"]),
    (["net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
      "net.ipv6.conf.lo.disable_ipv6=1"], ["127.0.0.1"]),
], ids=["bindv6only", "ipv6-disabled"])
def test_dual_stack_even_when_bindv6only_is_set(start, sysctls, hosts):
    """IPV6_V6ONLY=0 must be set explicitly: in a namespace where net.ipv6.bindv6only=1, a [::]
    listener must still accept IPv4 clients (admin listener: no database needed). On a host with
    IPv6 disabled by sysctl, `[::]` listeners must still serve IPv4 (dual-stack or the 0.0.0.0
    fallback)."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2 for a private network namespace")
    ns = f"p64lst-{uuid.uuid4().hex[:6]}"
    if subprocess.run(["ip", "netns", "add", ns], capture_output=True).returncode != 0:
        pytest.skip("'ip netns add' is unavailable")
    p = None
    try:
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw", *sysctls], check=True)
        port, admin = 6432, 9090
        p = start([f"[::]:{port}"], [f"[::]:{admin}"], netns=ns)
        probe = (
            "import socket, sys, time\n"
            "deadline = time.monotonic() + 20\n"
            "for host, port in [(h, p) for h in %r for p in (%d, %d)]:\n"
            "    while True:\n"
            "        try:\n"
            "            s = socket.create_connection((host, port), timeout=1)\n"
            "            if port == %d:\n"
            "                s.sendall(b'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n')\n"
            "                assert s.recv(64).startswith(b'HTTP/1.1 200'), host\n"
            "            s.close()\n"
            "            print('ok', host, port)\n"
            "            break\n"
            "        except (OSError, AssertionError) as e:\n"
            "            if time.monotonic() > deadline:\n"
            "                print('FAILED', host, port, e); sys.exit(1)\n"
            "            time.sleep(0.1)\n"
        ) % (hosts, port, admin, admin)
        out = subprocess.run(["ip", "netns", "exec", ns, "/usr/bin/python3", "-c", probe],
                             capture_output=True, text=True, timeout=40)
        assert out.returncode == 0, f"{out.stdout}{out.stderr}\n--- pool64 log ---\n{p.log()}"
    finally:
        if p is not None:
            p.stop()
        # Anything left in the namespace is ours (pool64, the probe): end it by PID.
        for pid in subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)
