"""systemd integration (issue 19, part 4): the notify protocol against a fake NOTIFY_SOCKET, and the template
unit deploy/systemd/pool64@.service.

A datagram socket stands in for systemd: pool64 must send READY=1 only once it accepts clients, MAINPID equal to
its own pid (the kernel's SCM_CREDENTIALS say who really sent it), WATCHDOG=1 every WATCHDOG_USEC/2 and none when
WATCHDOG_PID names another process, RELOADING=1 with MONOTONIC_USEC then READY=1 around SIGHUP, and STOPPING=1 on
SIGTERM before exiting 0.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

import harness
from conftest import POOL64_BIN, REPO_ROOT

UNIT_FILE = os.path.join(REPO_ROOT, "deploy", "systemd", "pool64@.service")
EXAMPLE_ENV = os.path.join(REPO_ROOT, "deploy", "systemd", "example.env")

needs_pool64 = pytest.mark.skipif(harness.is_pgbouncer(), reason="pool64's systemd notifications")


# --------------------------------------------------------------------------------------------
# a fake systemd


class NotifyListener:
    """The manager's end of NOTIFY_SOCKET: a bound AF_UNIX datagram socket with SO_PASSCRED, as systemd's."""

    def __init__(self, abstract: bool = False) -> None:
        self.dir = tempfile.mkdtemp(prefix="pool64-notify-")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        if abstract:
            name = f"pool64-notify-test-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.address = "@" + name
        else:
            self.address = os.path.join(self.dir, "notify")
            self.sock.bind(self.address)

    def receive(self, timeout: float) -> tuple[dict[str, str], int | None, float] | None:
        """The next message as assignments, the sender's pid and the arrival time (time.monotonic())."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except (socket.timeout, BlockingIOError):
            return None
        now = time.monotonic()
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid, _uid, _gid = struct.unpack("3i", payload[:12])
        fields: dict[str, str] = {}
        for line in data.decode().split("\n"):
            if line:
                key, _, value = line.partition("=")
                fields[key] = value
        return fields, pid, now

    def wait_for(self, key: str, timeout: float) -> tuple[dict[str, str], int | None, float]:
        """The first message carrying `key`; messages without it are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            got = self.receive(left) if left > 0 else None
            if got is None:
                raise AssertionError(f"no {key}=... notification within {timeout}s")
            if key in got[0]:
                return got

    def collect(self, seconds: float) -> list[tuple[dict[str, str], int | None, float]]:
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            got = self.receive(left)
            if got is not None:
                out.append(got)
        return out

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Instance:
    """pool64 started the way systemd starts it: NOTIFY_SOCKET and WATCHDOG_* in its environment."""

    def __init__(self, pg, listener: NotifyListener, env: dict[str, str] | None = None,
                 watchdog_pid_self: bool = False) -> None:
        if not os.path.exists(POOL64_BIN):
            pytest.fail(f"pool64 binary not found at {POOL64_BIN} (build it or set POOL64_BIN)", pytrace=False)
        self.workdir = listener.dir
        self.port = harness.free_port()
        self.admin_port = harness.free_port()
        self.config = os.path.join(self.workdir, "pool64.conf")
        with open(self.config, "w") as f:
            f.write("pool-size = 4\n")
        args = [POOL64_BIN, "--listen", f"127.0.0.1:{self.port}", "--admin-listen", f"127.0.0.1:{self.admin_port}",
                "--config", self.config, "--log-level", "debug"]
        if watchdog_pid_self:
            # systemd sets WATCHDOG_PID to the main pid; the shell's pid is pool64's after exec.
            args = ["/bin/sh", "-c", 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', "sh", *args]
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith("POOL64_") and k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        full_env.update({"DATABASE_URL": pg.database_url, "NOTIFY_SOCKET": listener.address, **(env or {})})
        self.log_path = os.path.join(self.workdir, "pool64.log")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, preexec_fn=harness.raise_nofile, cwd=self.workdir)

    def dsn(self) -> str:
        return harness.dsn("127.0.0.1", self.port)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read()[-20000:].decode("utf-8", "replace")

    def stop(self) -> None:
        harness.stop_process(self.proc)


@pytest.fixture
def notify():
    listener = NotifyListener()
    yield listener
    listener.close()


@pytest.fixture
def instances():
    started: list[Instance] = []
    yield started
    for inst in started:
        inst.stop()


def start(pg, listener, instances, **kwargs) -> Instance:
    inst = Instance(pg, listener, **kwargs)
    instances.append(inst)
    return inst


def wait_ready(inst: Instance, listener: NotifyListener, timeout: float = 30):
    try:
        return listener.wait_for("READY", timeout)
    except AssertionError:
        raise AssertionError(f"no READY=1 (exit status {inst.proc.poll()}):\n{inst.log()}")


# --------------------------------------------------------------------------------------------
# the protocol, against the real binary


@needs_pool64
def test_ready_comes_once_clients_are_accepted_with_mainpid(pg, notify, instances):
    inst = start(pg, notify, instances)
    fields, sender, _ = wait_ready(inst, notify)
    # READY=1 is the first thing pool64 says, and the port must take a query right away: no retry loop here.
    with socket.create_connection(("127.0.0.1", inst.port), timeout=2):
        pass
    assert harness.psql_select1(inst.dsn()), inst.log()
    assert fields["READY"] == "1"
    assert fields["MAINPID"] == str(inst.proc.pid)
    assert sender == inst.proc.pid, "the datagram came from another process"
    assert fields["STATUS"].startswith("listening on 127.0.0.1:"), fields
    # The admin server is bound before READY=1 too.
    assert harness.wait_for_port("127.0.0.1", inst.admin_port, 0.5)


@needs_pool64
def test_abstract_notify_socket(pg, instances):
    listener = NotifyListener(abstract=True)
    try:
        inst = start(pg, listener, instances)
        fields, sender, _ = wait_ready(inst, listener)
        assert fields["MAINPID"] == str(inst.proc.pid) and sender == inst.proc.pid
    finally:
        listener.close()


@needs_pool64
@pytest.mark.parametrize("watchdog_pid", ["unset", "self"])
def test_watchdog_pings_every_half_timeout(pg, notify, instances, watchdog_pid):
    inst = start(pg, notify, instances, env={"WATCHDOG_USEC": "2000000"},
                 watchdog_pid_self=(watchdog_pid == "self"))
    wait_ready(inst, notify)
    pings = [m for m in notify.collect(5.5) if m[0].get("WATCHDOG") == "1"]
    assert len(pings) >= 4, f"{len(pings)} pings in 5.5 s:\n{inst.log()}"
    gaps = [b[2] - a[2] for a, b in zip(pings, pings[1:])]
    assert all(0.5 < g < 1.6 for g in gaps), gaps
    assert all(p[1] == inst.proc.pid for p in pings)
    # The first ping carries the status the relay loop reported; later ones only when it changed.
    assert pings[0][0].get("STATUS") == "serving 0 clients", pings[0]
    assert all("STATUS" not in p[0] for p in pings[1:]), pings


@needs_pool64
def test_watchdog_for_another_pid_sends_no_pings(pg, notify, instances):
    # WATCHDOG_PID names this test process, not pool64: the watchdog is someone else's.
    inst = start(pg, notify, instances, env={"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid())})
    wait_ready(inst, notify)
    later = notify.collect(3.5)
    assert not [m for m in later if "WATCHDOG" in m[0]], later
    assert harness.psql_select1(inst.dsn())


@needs_pool64
def test_sighup_reports_reloading_then_ready(pg, notify, instances):
    inst = start(pg, notify, instances)
    wait_ready(inst, notify)
    inst.proc.send_signal(signal.SIGHUP)
    fields, sender, at = notify.wait_for("RELOADING", 10)
    assert fields["RELOADING"] == "1" and sender == inst.proc.pid
    # MONOTONIC_USEC is CLOCK_MONOTONIC, the clock time.monotonic() reads on Linux.
    assert abs(int(fields["MONOTONIC_USEC"]) / 1e6 - at) < 5, (fields, at)
    fields, _, _ = notify.wait_for("READY", 10)
    assert fields["STATUS"] == "configuration reloaded"
    assert fields["MAINPID"] == str(inst.proc.pid)

    # A rejected reload still ends the reload: READY=1, with a status that says so.
    with open(inst.config, "w") as f:
        f.write("pool-size = lots\n")
    inst.proc.send_signal(signal.SIGHUP)
    notify.wait_for("RELOADING", 10)
    fields, _, _ = notify.wait_for("READY", 10)
    assert "rejected" in fields["STATUS"], fields
    assert harness.psql_select1(inst.dsn())


@needs_pool64
def test_sigterm_reports_stopping_and_exits_zero(pg, notify, instances):
    inst = start(pg, notify, instances, env={"POOL64_SHUTDOWN_TIMEOUT": "5"})
    wait_ready(inst, notify)
    inst.proc.send_signal(signal.SIGTERM)
    fields, sender, _ = notify.wait_for("STOPPING", 10)
    assert fields == {"STOPPING": "1", "STATUS": "draining"} and sender == inst.proc.pid
    assert inst.proc.wait(timeout=20) == 0, inst.log()


# --------------------------------------------------------------------------------------------
# the unit file


def parse_unit(path: str) -> dict[str, dict[str, list[str]]]:
    """systemd's unit syntax: [Section], Key=value lines (a key may repeat), # and ; comments."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("[") and line.endswith("]"):
                current = sections.setdefault(line[1:-1], {})
                continue
            assert current is not None, f"{path}: assignment outside a section: {line}"
            key, sep, value = line.partition("=")
            assert sep, f"{path}: not key=value: {line}"
            current.setdefault(key.strip(), []).append(value.strip())
    return sections


def test_unit_file_has_the_required_directives():
    unit = parse_unit(UNIT_FILE)
    service = {k: v[-1] for k, v in unit["Service"].items()}
    expected = {
        "Type": "notify", "NotifyAccess": "all", "RuntimeDirectory": "pool64-%i", "EnvironmentFile": "/etc/pool64/%i.env",
        "ExecStart": "/usr/local/bin/pool64",
        "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM", "Restart": "on-failure",
        "DynamicUser": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "PrivateDevices": "yes", "NoNewPrivileges": "yes",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX", "CapabilityBoundingSet": "",
        "SystemCallFilter": "@system-service", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
    }
    for key, value in expected.items():
        assert service.get(key) == value, f"{key}={service.get(key)!r}, want {value!r}"
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    # The project id, and the hand-over socket the SIGUSR2 binary upgrade goes through (in the RuntimeDirectory).
    assert unit["Service"]["Environment"] == [
        "POOL64_PROJECT=%i", "POOL64_HANDOVER_SOCKET=%t/pool64-%i/handover.sock"]

    def seconds(v: str) -> float:
        m = re.fullmatch(r"(\d+)(s|min)?", v)
        assert m, v
        return int(m.group(1)) * (60 if m.group(2) == "min" else 1)

    # The drain (shutdown-timeout, 30 s by default) must end before systemd's SIGKILL.
    assert seconds(service["TimeoutStopSec"]) > 30 + 5
    assert seconds(service["WatchdogSec"]) >= 10
    # OpenFileLimit.wanted for the defaults: max-client-conn 10,000 + 4 x pool-size 20 + 128.
    assert int(service["LimitNOFILE"]) >= 10_000 + 4 * 20 + 128


def test_example_env_names_real_settings():
    documented = open(os.path.join(REPO_ROOT, "docs", "CONFIGURATION.md")).read()
    keys = []
    for line in open(EXAMPLE_ENV):
        line = line.strip().lstrip("#").strip()
        m = re.match(r"([A-Z][A-Z0-9_]*)=", line)
        if m:
            keys.append(m.group(1))
    assert "DATABASE_URL" in keys
    for key in keys:
        assert key == "DATABASE_URL" or f"`{key}`" in documented, f"{key} is not a documented setting"


def test_unit_file_passes_systemd_analyze_verify():
    analyze = shutil.which("systemd-analyze")
    system_units = "/usr/lib/systemd/system"
    if analyze is None or not os.path.isdir(system_units):
        pytest.skip("systemd-analyze not installed (Debian package systemd)")
    # verify checks that ExecStart's binary exists and resolves the unit's dependencies, so it runs against a
    # small root holding the unit, a stand-in binary, the env file and the system's own units.
    root = tempfile.mkdtemp(prefix="pool64-unit-verify-")
    try:
        for d in ("etc/systemd/system", "etc/pool64", "usr/local/bin", "usr/lib/systemd", "bin"):
            os.makedirs(os.path.join(root, d), exist_ok=True)
        # A copy, links kept: verify resolves absolute links inside --root, so a link to the real directory loops.
        shutil.copytree(system_units, os.path.join(root, "usr/lib/systemd/system"), symlinks=True)
        shutil.copy(UNIT_FILE, os.path.join(root, "etc/systemd/system"))
        shutil.copy("/bin/true", os.path.join(root, "usr/local/bin/pool64"))
        shutil.copy(shutil.which("kill") or "/bin/kill", os.path.join(root, "bin/kill"))
        shutil.copy(EXAMPLE_ENV, os.path.join(root, "etc/pool64/alpha.env"))
        proc = subprocess.run([analyze, "verify", f"--root={root}", "--man=no", "pool64@alpha.service"],
                              capture_output=True, text=True, timeout=60)
        output = (proc.stdout + proc.stderr).strip()
        # verify exits 0 even for unknown keys and bad values; it only warns, so any output is a failure.
        assert proc.returncode == 0 and output == "", output
    finally:
        shutil.rmtree(root, ignore_errors=True)
