"""End to end through a NAT64 / DNS64 network built in namespaces by scripts/nat64-lab (docs/NAT64.md).

pool64 runs inside the IPv6-only namespace app6 (`ip netns exec`), and psql connects to it from inside
app6 too. Every case checks the rows come from the intended server (a per-server marker table plus
inet_server_addr()/inet_client_addr()) and that /stats reports the route pool64 chose.

Root only: skipped with a printed reason otherwise (CI runs as root).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import pytest

import harness
from harness import stop_process

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB_SCRIPT = os.path.join(REPO_ROOT, "scripts", "nat64-lab")
POOL64_BIN = os.path.abspath(os.path.join(REPO_ROOT, os.environ.get("POOL64_BIN", ".build/debug/pool64")))

DB4_NAT64 = "64:ff9b::6440:20a"          # 64:ff9b::100.64.2.10
DB6_NAT64_V4 = "64:ff9b::6440:30a"       # 64:ff9b::100.64.3.10
TAYGA_POOL = ipaddress.ip_network("100.64.99.0/24")
NSP_PREFIX = "fd64:64::/64"                # second gateway: network-specific prefix, /64 (u-octet)
DB4P_NSP = "fd64:64::a:4002:a00:0"         # fd64:64::/64 + 10.64.2.10 (RFC 6052 §2.2)
NSP_POOL = ipaddress.ip_network("100.64.98.0/24")

pytestmark = pytest.mark.timeout(60)

# pool64 races whole libpq logins (TCP + startup + SCRAM), not TCP handshakes: on a loaded machine a
# login slower than the Happy Eyeballs delay lets the second-preference address win. The policy
# tests use a long delay so they check the order of preference, not the race.
POLICY_HE_DELAY = "3s"

# Runs inside a lab namespace: wait for listeners, fetch /stats (no proxies from the environment).
_HELPER = r"""
import json, socket, sys, time, urllib.request
cmd = sys.argv[1]
if cmd == "wait":
    deadline = time.monotonic() + float(sys.argv[2])
    for port in sys.argv[3:]:
        while True:
            try:
                socket.create_connection(("::1", int(port)), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(1)
                time.sleep(0.05)
elif cmd == "stats":
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    print(opener.open(f"http://[::1]:{sys.argv[2]}/stats", timeout=5).read().decode())
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "NAT64 lab needs root (network namespaces, tun device); running as uid %d" % os.geteuid()
    if shutil.which("ip") is None:
        return "iproute2 'ip' not found"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "'ip netns' is unavailable"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun missing (tayga needs it)"
    if not os.path.exists(POOL64_BIN):
        return f"pool64 binary not found at {POOL64_BIN}"
    return None


class Lab:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.app6 = env["P64LAB_NS_APP6"]
        self.app46 = env["P64LAB_NS_APP46"]
        self.port_seq = 16432

    def resolv_conf_path(self, ns: str) -> str:
        return f"/etc/netns/{ns}/resolv.conf"

    def use_resolver(self, which: str, ns: str | None = None) -> None:
        """Point a client namespace at the DNS64 unbound ("dns64") or the plain one ("plain")."""
        server = {"dns64": self.env["P64LAB_DNS64"], "plain": self.env["P64LAB_PLAIN_DNS"],
                  "dns64-nsp": self.env["P64LAB_NSP_DNS64"]}[which]
        with open(self.resolv_conf_path(ns or self.app6), "w") as f:
            f.write(f"nameserver {server}\noptions timeout:2 attempts:2\n")

    def next_ports(self) -> tuple[int, int]:
        self.port_seq += 2
        return self.port_seq, self.port_seq + 1


@pytest.fixture(scope="module")
def lab():
    reason = _skip_reason()
    if reason:
        print(f"SKIP NAT64 lab: {reason}")
        pytest.skip(reason)
    lab_id = uuid.uuid4().hex[:6]
    env = {**os.environ, "P64LAB_ID": lab_id}

    # SIGTERM (a runner's timeout) must still tear the lab down: turn it into an interrupt, which
    # pytest answers by running fixture teardown.
    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous_term = signal.signal(signal.SIGTERM, on_term)
    try:
        proc = subprocess.run([LAB_SCRIPT, "up"], env=env, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"scripts/nat64-lab up failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
                        pytrace=False)
        values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
        yield Lab(values)
    finally:
        subprocess.run([LAB_SCRIPT, "down", lab_id], env=env, capture_output=True, timeout=60)
        signal.signal(signal.SIGTERM, previous_term)


class Pool64InNamespace:
    def __init__(self, lab: Lab, ns: str, url: str, args: list[str], he_delay: str = "250ms"):
        self.lab, self.ns = lab, ns
        self.port, self.admin_port = lab.next_ports()
        self.workdir = tempfile.mkdtemp(prefix="pool64-nat64lab-")
        self.log_path = os.path.join(self.workdir, "pool64.log")
        cmd = ["ip", "netns", "exec", ns, POOL64_BIN, "--listen", f"[::]:{self.port}",
               "--admin-listen", f"[::]:{self.admin_port}", "--happy-eyeballs-delay", he_delay,
               "--log-level", "debug", *args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("POOL64_")}
        env["DATABASE_URL"] = url
        with open(self.log_path, "ab") as log:
            log.write(("$ DATABASE_URL=" + url + " " + " ".join(cmd) + "\n").encode())
            log.flush()
            # `ip netns exec` execs pool64: proc.pid is pool64's own PID.
            self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, cwd=self.workdir)
        # Like harness.start_pool64: scripts/test kills pool64 processes left behind by a killed run.
        with open(os.path.join(self.workdir, "pool64.pid"), "w") as f:
            f.write(f"{self.proc.pid}\n")
        ok = self._in_ns(["wait", "20", str(self.port), str(self.admin_port)], timeout=30).returncode == 0
        if not ok or self.proc.poll() is not None:
            log = self.log()
            self.stop()
            raise AssertionError(f"pool64 did not start listening in {ns} (exit status {self.proc.returncode}):\n{log}")

    def _in_ns(self, args: list[str], timeout: float = 15) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.ns, "/usr/bin/python3", "-c", _HELPER, *args],
                              capture_output=True, text=True, timeout=timeout)

    def log(self) -> str:
        with open(self.log_path, "rb") as f:
            return f.read()[-20000:].decode("utf-8", "replace")

    def stats(self) -> dict:
        proc = self._in_ns(["stats", str(self.admin_port)])
        assert proc.returncode == 0, f"GET /stats failed: {proc.stderr}\n{self.log()}"
        return json.loads(proc.stdout)

    def psql(self, sql: str, host: str | None = None, timeout: float = 30) -> tuple[str, float]:
        """Run sql through pool64 with psql from inside the namespace; returns (stdout, seconds)."""
        host = host or "::1"
        dsn = harness.dsn(host, self.port, connect_timeout="10")
        started = time.monotonic()
        proc = subprocess.run(["ip", "netns", "exec", self.ns, harness.pg_tool("psql"), "-X", "-At",
                               "-v", "ON_ERROR_STOP=1", "-c", sql, dsn],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        elapsed = time.monotonic() - started
        assert proc.returncode == 0, (f"psql via pool64 in {self.ns} failed ({proc.returncode}): "
                                      f"{proc.stderr.strip()}\n--- pool64 log ---\n{self.log()}")
        return proc.stdout.strip(), elapsed

    def psql_fails(self, sql: str, timeout: float = 30) -> tuple[str, float]:
        dsn = harness.dsn("::1", self.port, connect_timeout="10")
        started = time.monotonic()
        proc = subprocess.run(["ip", "netns", "exec", self.ns, harness.pg_tool("psql"), "-X", "-At",
                               "-v", "ON_ERROR_STOP=1", "-c", sql, dsn],
                              capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        assert proc.returncode != 0, f"psql unexpectedly succeeded: {proc.stdout}"
        return proc.stderr.strip(), time.monotonic() - started

    def whoami(self, host: str | None = None) -> tuple[dict, float]:
        out, elapsed = self.psql("select server, host(inet_server_addr()), host(inet_client_addr()) "
                                 "from lab_marker", host=host)
        server, server_addr, client_addr = out.split("|")
        return {"server": server, "server_addr": server_addr, "client_addr": client_addr}, elapsed

    def stop(self) -> None:
        stop_process(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def pool64_in(lab: Lab, host: str, *args: str, ns: str | None = None, port: int = 5432, he_delay: str = "250ms"):
    url = f"postgresql://app:app-secret@{host}:{port}/appdb"
    proxy = Pool64InNamespace(lab, ns or lab.app6, url, list(args), he_delay=he_delay)
    try:
        yield proxy
    except AssertionError as e:
        raise AssertionError(f"{e}\n--- pool64 log ({proxy.ns}) ---\n{proxy.log()}") from None
    finally:
        proxy.stop()


def only_pool(stats: dict) -> dict:
    pools = stats["pools"]
    assert len(pools) == 1, pools
    return pools[0]


def cache_entry(stats: dict, name: str) -> dict:
    for entry in stats["resolver"]["cache"]:
        if entry["name"].rstrip(".") == name:
            return entry
    raise AssertionError(f"{name} not in resolver cache: {stats['resolver']['cache']}")


def assert_db4_via_nat64(who: dict) -> None:
    assert who["server"] == "db4", who
    assert who["server_addr"] == "100.64.2.10", who
    # PostgreSQL sees tayga's IPv4 pool address: the packets really crossed the NAT64 gateway.
    assert ipaddress.ip_address(who["client_addr"]) in TAYGA_POOL, who


# ------------------------------------------------------------------------------------------------
# (a)–(c): an IPv4-only PostgreSQL from an IPv6-only host


def test_a_ipv4_only_name_plain_resolver_pool64_synthesizes(lab):
    """No AAAA anywhere (plain unbound): pool64 itself puts 100.64.2.10 into 64:ff9b::/96."""
    lab.use_resolver("plain")
    with pool64_in(lab, "db4.test") as p:
        who, _ = p.whoami()
        assert_db4_via_nat64(who)
        stats = p.stats()
        pool = only_pool(stats)
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4_NAT64}]:5432", pool
        # The answer pool64 got had only the A record: the synthesis was its own.
        entry = cache_entry(stats, "db4.test")
        assert entry["addresses"] == ["100.64.2.10"], stats["resolver"]
        # Cached with the record's TTL (30 s in the lab zone), not longer.
        assert 0 < entry["ttl_remaining_seconds"] <= 30, entry
        assert stats["resolver"]["nat64_source"] == "configured"
        assert stats["resolver"]["nat64_prefix"] == "64:ff9b::/96"


def test_b_ipv4_only_name_dns64_resolver(lab):
    """DNS64 synthesizes the AAAA; pool64 recognises it as inside the NAT64 prefix → route nat64."""
    lab.use_resolver("dns64")
    with pool64_in(lab, "db4.test") as p:
        who, _ = p.whoami()
        assert_db4_via_nat64(who)
        stats = p.stats()
        pool = only_pool(stats)
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4_NAT64}]:5432", pool
        assert DB4_NAT64 in cache_entry(stats, "db4.test")["addresses"], stats["resolver"]


def test_c_ipv4_literal_in_database_url(lab):
    """The case the original migration missed: an IPv4 literal on an IPv6-only host."""
    lab.use_resolver("plain")
    with pool64_in(lab, "100.64.2.10") as p:
        who, _ = p.whoami()
        assert_db4_via_nat64(who)
        pool = only_pool(p.stats())
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4_NAT64}]:5432", pool


@pytest.mark.parametrize("name", ["alias4.test", "hosts4.test"])
def test_ipv4_only_via_cname_and_hosts_file(lab, name):
    """A CNAME to an A-only name, and an A-only /etc/hosts entry, both end up on the NAT64 route."""
    lab.use_resolver("plain")
    with pool64_in(lab, name) as p:
        who, _ = p.whoami()
        assert_db4_via_nat64(who)
        pool = only_pool(p.stats())
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4_NAT64}]:5432", pool


# ------------------------------------------------------------------------------------------------
# (d), (e): native IPv6


@pytest.mark.parametrize("host", ["db6.test", "[fd64:2::10]", "hosts6.test"])
def test_d_ipv6_server_direct(lab, host):
    lab.use_resolver("dns64")
    with pool64_in(lab, host) as p:
        who, _ = p.whoami()
        assert who == {"server": "db6", "server_addr": "fd64:2::10", "client_addr": "fd64:1::2"}, who
        pool = only_pool(p.stats())
        assert pool["route"] == "ipv6", pool
        assert pool["server_address"] == "[fd64:2::10]:5432", pool


@pytest.mark.parametrize("resolver", ["dns64", "plain"])
def test_e_dual_stack_name_prefers_ipv6(lab, resolver):
    """dual.test has AAAA fd64:2::10 and A 100.64.3.10, both the db6 server: IPv6 must win
    (inet_server_addr() tells which path was used)."""
    lab.use_resolver(resolver)
    with pool64_in(lab, "dual.test", he_delay=POLICY_HE_DELAY) as p:
        who, _ = p.whoami()
        assert who == {"server": "db6", "server_addr": "fd64:2::10", "client_addr": "fd64:1::2"}, who
        stats = p.stats()
        pool = only_pool(stats)
        assert pool["route"] == "ipv6", pool
        assert pool["server_address"] == "[fd64:2::10]:5432", pool
        addresses = cache_entry(stats, "dual.test")["addresses"]
        assert "fd64:2::10" in addresses, addresses


# ------------------------------------------------------------------------------------------------
# (f): RFC 7050 discovery


def wait_for_nat64_source(p: Pool64InNamespace, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        stats = p.stats()
        if stats["resolver"]["nat64_source"] != "not-found" or time.monotonic() > deadline:
            return stats
        time.sleep(0.2)


def test_f_nat64_prefix_auto_discovered(lab):
    """--nat64-prefix auto through DNS64: ipv4only.arpa's AAAA reveals 64:ff9b::/96, and an IPv4
    literal (which no DNS64 server can help with) then reaches db4 through it."""
    lab.use_resolver("dns64")
    with pool64_in(lab, "100.64.2.10", "--nat64-prefix", "auto") as p:
        stats = wait_for_nat64_source(p)
        assert stats["resolver"]["nat64_source"] == "discovered", stats["resolver"]
        assert stats["resolver"]["nat64_prefix"] == "64:ff9b::/96", stats["resolver"]
        who, _ = p.whoami()
        assert_db4_via_nat64(who)
        pool = only_pool(p.stats())
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4_NAT64}]:5432", pool


def test_f_nat64_prefix_auto_not_found_without_dns64(lab):
    """Without DNS64, ipv4only.arpa has no AAAA: nothing is discovered, and stats say so."""
    lab.use_resolver("plain")
    with pool64_in(lab, "db6.test", "--nat64-prefix", "auto") as p:
        time.sleep(1.0)
        stats = p.stats()
        assert stats["resolver"]["nat64_source"] == "not-found", stats["resolver"]
        assert stats["resolver"]["nat64_prefix"] in ("", None), stats["resolver"]
        # IPv6 destinations are unaffected.
        who, _ = p.whoami()
        assert who["server"] == "db6", who


# ------------------------------------------------------------------------------------------------
# Network-specific prefix: private IPv4 behind a /64 NAT64 prefix


def assert_db4_private_via_nsp(who: dict) -> None:
    assert who["server"] == "db4", who
    assert who["server_addr"] == "10.64.2.10", who
    assert ipaddress.ip_address(who["client_addr"]) in NSP_POOL, who


@pytest.mark.parametrize("host", ["db4p.test", "10.64.2.10"])
def test_network_specific_prefix_configured(lab, host):
    """RFC 6052 §3.1: 64:ff9b::/96 must not carry private IPv4 (10.64.2.10), so operators configure the
    gateway's own prefix; a /64 puts the IPv4 address around the u-octet."""
    lab.use_resolver("plain")
    with pool64_in(lab, host, "--nat64-prefix", NSP_PREFIX) as p:
        who, _ = p.whoami()
        assert_db4_private_via_nsp(who)
        stats = p.stats()
        pool = only_pool(stats)
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4P_NSP}]:5432", pool
        assert stats["resolver"]["nat64_prefix"] == NSP_PREFIX, stats["resolver"]


@pytest.mark.parametrize("host", ["db4p.test", "10.64.2.10"])
def test_network_specific_prefix_discovered(lab, host):
    """--nat64-prefix auto behind a DNS64 that uses fd64:64::/64: RFC 7050 finds the /64 (192.0.0.170
    and .171 sit either side of the u-octet), and both the name and the literal go through it."""
    lab.use_resolver("dns64-nsp")
    with pool64_in(lab, host, "--nat64-prefix", "auto") as p:
        stats = wait_for_nat64_source(p)
        assert stats["resolver"]["nat64_source"] == "discovered", stats["resolver"]
        assert stats["resolver"]["nat64_prefix"] == NSP_PREFIX, stats["resolver"]
        who, _ = p.whoami()
        assert_db4_private_via_nsp(who)
        pool = only_pool(p.stats())
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4P_NSP}]:5432", pool


def test_well_known_prefix_refuses_private_ipv4_quickly(lab):
    """With 64:ff9b::/96 a private IPv4 literal has no route from an IPv6-only host: the client gets an
    error at once (naming the host), not a hang."""
    lab.use_resolver("plain")
    with pool64_in(lab, "10.64.2.10") as p:
        err, elapsed = p.psql_fails("select 1")
        assert "10.64.2.10" in err, err
        assert elapsed < 5, f"took {elapsed:.1f}s to fail"


# ------------------------------------------------------------------------------------------------
# (g): Happy Eyeballs


def _he_first_query(lab, resolver):
    lab.use_resolver(resolver)
    return pool64_in(lab, "he.test")


@pytest.mark.parametrize("resolver", ["plain", "dns64"])
def test_g_happy_eyeballs_blackholed_ipv6_falls_back_to_nat64(lab, resolver):
    """he.test: AAAA fd64:9::10 (SYNs vanish without an answer) and A 100.64.2.10 (db4). The dead
    IPv6 address must cost one Happy Eyeballs delay (250 ms), not a connect timeout."""
    with _he_first_query(lab, resolver) as p:
        who, elapsed = p.whoami()
        print(f"first query through he.test ({resolver}): {elapsed:.3f}s")
        assert_db4_via_nat64(who)
        assert elapsed < 2.0, f"first query took {elapsed:.2f}s (Happy Eyeballs delay is 250 ms)"
        # Native IPv6 is tried first, so the NAT64 attempt cannot start before one delay has passed.
        assert elapsed >= 0.25, f"first query took only {elapsed:.3f}s: was the IPv6 address tried first?"
        pool = only_pool(p.stats())
        assert pool["route"] == "nat64", pool
        assert pool["server_address"] == f"[{DB4_NAT64}]:5432", pool
        # The server connection is pooled: the next client does not dial again.
        _, again = p.whoami()
        assert again < 1.0, again


def test_g_attempt_counters_include_the_abandoned_ipv6_attempt(lab):
    """Issue 4 "Visibility": counters of attempts per family. The race started an IPv6 attempt (later
    abandoned) and a NAT64 one; both are attempts."""
    with _he_first_query(lab, "plain") as p:
        p.whoami()
        attempts = p.stats()["resolver"]["attempts_by_family"]
        assert attempts.get("nat64", 0) >= 1, attempts
        assert attempts.get("ipv6", 0) >= 1, attempts


def test_g_stats_list_every_address_tried(lab):
    """Issue 4 "Visibility": the addresses tried *and* chosen. After the race, addresses_tried must
    name the abandoned IPv6 attempt as well as the NAT64 winner, in the order they were started."""
    with _he_first_query(lab, "plain") as p:
        p.whoami()
        tried = only_pool(p.stats())["addresses_tried"]
        assert tried == ["[fd64:9::10]:5432", f"[{DB4_NAT64}]:5432"], tried


# ------------------------------------------------------------------------------------------------
# (h): policy on a dual-stack host


def test_h_ip_policy_ipv4_on_dual_stack_host(lab):
    """--ip-policy ipv4 (the legacy rollback switch) on a dual-stack host: dual.test over plain IPv4."""
    lab.use_resolver("plain", ns=lab.app46)
    with pool64_in(lab, "dual.test", "--ip-policy", "ipv4", ns=lab.app46, he_delay=POLICY_HE_DELAY) as p:
        who, _ = p.whoami()
        assert who == {"server": "db6", "server_addr": "100.64.3.10", "client_addr": "100.64.4.2"}, who
        pool = only_pool(p.stats())
        assert pool["route"] == "ipv4", pool
        assert pool["server_address"] == "100.64.3.10:5432", pool


def test_h_ipv6_first_on_dual_stack_host(lab):
    lab.use_resolver("plain", ns=lab.app46)
    with pool64_in(lab, "dual.test", ns=lab.app46, he_delay=POLICY_HE_DELAY) as p:
        who, _ = p.whoami()
        assert who == {"server": "db6", "server_addr": "fd64:2::10", "client_addr": "fd64:3::2"}, who
        pool = only_pool(p.stats())
        assert pool["route"] == "ipv6", pool


def test_ipv6_only_policy_still_reaches_ipv4_only_server(lab):
    """ipv6-only never dials plain IPv4, but NAT64 is IPv6: db4 stays reachable."""
    lab.use_resolver("plain")
    with pool64_in(lab, "db4.test", "--ip-policy", "ipv6-only") as p:
        who, _ = p.whoami(host="fd64:1::2")
        assert_db4_via_nat64(who)
        assert only_pool(p.stats())["route"] == "nat64"
