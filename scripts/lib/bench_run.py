#!/usr/bin/env python3
"""pool64 vs PgBouncer benchmark orchestrator (run through scripts/bench, which builds pool64 and raises limits).

Starts a throwaway PostgreSQL 15 with a `pgbench -i -s 10` database, PgBouncer 1.18 and pool64 with the same
settings (transaction mode, 20 server connections, 10,000 max clients, SCRAM client auth with a 1-iteration
secret, no TLS, no per-connection logging), then runs every scenario against DIRECT, PGBOUNCER and POOL64
interleaved, and prints one markdown table (medians over --runs, with spread).
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, asdict

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_idle import scram_secret  # noqa: E402

PG_BIN = os.environ.get("P64_PG_BIN", "/usr/lib/postgresql/15/bin")
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
IDLE_SCRIPT = os.path.join(HERE, "bench_idle.py")
PY = sys.executable

USER, PASSWORD, DB = "app", "app-secret", "appdb"
TARGETS = ["DIRECT", "PGBOUNCER", "POOL64"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> None:
    log(f"error: {msg}")
    sys.exit(1)


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def as_postgres(cmd: list[str], cwd: str, **kw) -> subprocess.CompletedProcess:
    # setpriv execs the command (no intermediate process), so Popen's pid is the program's pid, and it keeps
    # our raised RLIMIT_NOFILE.
    return subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd], cwd=cwd, **kw)


def popen_as_postgres(cmd: list[str], cwd: str, **kw) -> subprocess.Popen:
    return subprocess.Popen(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *cmd], cwd=cwd, **kw)


def proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    # fields[0] is field 3 (state); utime is field 14, stime field 15
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, steal) CPU seconds of all cores since boot (/proc/stat): busy is user, nice, system, irq and softirq;
    steal is time the hypervisor gave to someone else while this machine wanted to run."""
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f.readline().split()[1:9])
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def status_fields(path: str, *names: str) -> list[int]:
    """The first number of each named line of a /proc status file (0 when absent)."""
    found = dict.fromkeys(names, 0)
    with open(path) as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in found:
                found[key] = int(rest.split()[0])
    return [found[n] for n in names]


def proc_context_switches(pid: int) -> tuple[int, int]:
    """(voluntary, involuntary) context switches summed over every thread of the process: a voluntary one is a
    wait for events (epoll_wait), an involuntary one a preemption."""
    vol = invol = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            v, i = status_fields(f"/proc/{pid}/task/{tid}/status", "voluntary_ctxt_switches",
                                 "nonvoluntary_ctxt_switches")
        except FileNotFoundError:  # the thread ended
            continue
        vol, invol = vol + v, invol + i
    return vol, invol


def proc_rss_kib(pid: int) -> int:
    return status_fields(f"/proc/{pid}/status", "VmRSS")[0]


# ---------------------------------------------------------------------------------------------------------------
# Services

class Services:
    def __init__(self, args):
        self.args = args
        self.work = tempfile.mkdtemp(prefix="pool64-bench.")
        os.chmod(self.work, 0o755)
        self.pg_dir = os.path.join(self.work, "pg")
        self.pgb_dir = os.path.join(self.work, "pgbouncer")
        self.p64_dir = os.path.join(self.work, "pool64")
        self.pg_port = free_port()
        self.pgb_port = free_port()
        self.p64_port = free_port()
        self.p64_admin = free_port()
        self.pg_started = False
        self.pgb: subprocess.Popen | None = None
        self.p64: subprocess.Popen | None = None
        self.pg_pid = 0
        # One 1-iteration SCRAM verifier for the app user everywhere: PostgreSQL's role, PgBouncer's userlist and
        # pool64's auth file. PgBouncer 1.18 logs in to the server with the client's SCRAM keys (pass-through) when
        # the client authenticated against a SCRAM secret for the same user, which only works when the server's
        # verifier is that same secret; it also keeps the clients' PBKDF2 cheap for DIRECT churn.
        self.secret = scram_secret(PASSWORD, 1)

    # -- PostgreSQL
    def start_postgres(self):
        d = self.pg_dir
        os.makedirs(d)
        shutil.chown(d, "postgres", "postgres")
        os.chmod(d, 0o700)
        r = as_postgres([f"{PG_BIN}/initdb", "-D", f"{d}/data", "-U", "postgres", "--auth-local=trust",
                         "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"],
                        cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            die(f"initdb failed:\n{r.stdout}{r.stderr}")
        with open(f"{d}/data/postgresql.conf", "a") as f:
            f.write(f"""
listen_addresses = '127.0.0.1'
port = {self.pg_port}
unix_socket_directories = '{d}'
password_encryption = 'scram-sha-256'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = {self.args.pg_max_connections}
shared_buffers = 256MB
log_min_messages = warning
""")
        r = as_postgres([f"{PG_BIN}/pg_ctl", "-D", f"{d}/data", "-l", f"{d}/postgresql.log", "-w", "-t", "60", "start"],
                        cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            die(f"PostgreSQL failed to start:\n{r.stdout}{r.stderr}\n{open(f'{d}/postgresql.log').read()[-3000:]}")
        self.pg_started = True
        with open(f"{d}/data/postmaster.pid") as f:
            self.pg_pid = int(f.readline())
        sql = f"CREATE ROLE {USER} LOGIN PASSWORD '{self.secret}';\nCREATE DATABASE {DB} OWNER {USER};\n"
        r = as_postgres([f"{PG_BIN}/psql", "-X", "-q", "-h", d, "-p", str(self.pg_port), "-U", "postgres",
                         "-d", "postgres", "-v", "ON_ERROR_STOP=1"], cwd=d, input=sql, capture_output=True, text=True)
        if r.returncode != 0:
            die(f"creating role/database failed: {r.stderr}")
        log(f"PostgreSQL 15 on 127.0.0.1:{self.pg_port} (max_connections={self.args.pg_max_connections}); "
            f"pgbench -i -s {self.args.scale}")
        r = subprocess.run([f"{PG_BIN}/pgbench", "-i", "-q", "-s", str(self.args.scale), "-h", "127.0.0.1",
                            "-p", str(self.pg_port), "-U", USER, DB], env=self.client_env(),
                           capture_output=True, text=True)
        if r.returncode != 0:
            die(f"pgbench -i failed: {r.stderr}")

    def stop_postgres(self):
        if self.pg_started:
            as_postgres([f"{PG_BIN}/pg_ctl", "-D", f"{self.pg_dir}/data", "-m", "immediate", "-w", "-t", "30", "stop"],
                        cwd=self.pg_dir, capture_output=True)
            self.pg_started = False

    def client_env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(PGPASSWORD=PASSWORD, PGSSLMODE="disable", PGCONNECT_TIMEOUT="30")
        return env

    # -- auth file shared by both poolers: the URL user with a 1-iteration SCRAM secret (cheap client PBKDF2)
    def userlist(self, path: str, owner: str | None = None):
        with open(path, "w") as f:
            f.write(f'"{USER}" "{self.secret}"\n')
        if owner:
            shutil.chown(path, owner, owner)

    # -- PgBouncer
    def start_pgbouncer(self):
        d = self.pgb_dir
        os.makedirs(d, exist_ok=True)
        shutil.chown(d, "postgres", "postgres")
        self.userlist(f"{d}/userlist.txt", "postgres")
        with open(f"{d}/pgbouncer.ini", "w") as f:
            f.write(f"""[databases]
{DB} = host=127.0.0.1 port={self.pg_port} dbname={DB} user={USER} password={PASSWORD}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.pgb_port}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = {d}/userlist.txt
pool_mode = transaction
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 10000
max_db_connections = 20
server_tls_sslmode = disable
client_tls_sslmode = disable
log_connections = 0
log_disconnections = 0
log_pooler_errors = 1
stats_period = 60
logfile = {d}/pgbouncer.log
ignore_startup_parameters = extra_float_digits
listen_backlog = 4096
""")
        shutil.chown(f"{d}/pgbouncer.ini", "postgres", "postgres")
        self.pgb = popen_as_postgres([PGBOUNCER, f"{d}/pgbouncer.ini"], cwd=d, stdin=subprocess.DEVNULL,
                                     stdout=open(f"{d}/stdout.log", "w"), stderr=subprocess.STDOUT)
        self.wait_sql(self.pgb_port, self.pgb, "PgBouncer", f"{d}/pgbouncer.log")

    # -- pool64
    def start_pool64(self, wrapper: list[str] | None = None, extra_env: dict | None = None):
        d = self.p64_dir
        os.makedirs(d, exist_ok=True)
        self.userlist(f"{d}/userlist.txt")
        env = {k: v for k, v in os.environ.items() if not k.startswith("POOL64_") and not k.startswith("PG")}
        env.update(extra_env or {})
        env["DATABASE_URL"] = f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.pg_port}/{DB}?sslmode=disable"
        cmd = [self.args.bin, "--listen", f"127.0.0.1:{self.p64_port}", "--admin-listen", f"127.0.0.1:{self.p64_admin}",
               "--pool-mode", "transaction", "--pool-size", "20", "--max-client-conn", "10000",
               "--log-level", "warning", "--auth-file", f"{d}/userlist.txt"]
        self.p64_log = f"{d}/pool64.log"
        self.p64 = subprocess.Popen((wrapper or []) + cmd, cwd=d, env=env, stdin=subprocess.DEVNULL,
                                    stdout=open(self.p64_log, "w"), stderr=subprocess.STDOUT)
        self.wait_sql(self.p64_port, self.p64, "pool64", self.p64_log, timeout=120 if wrapper else 30)

    def wait_sql(self, port: int, proc: subprocess.Popen, name: str, logfile: str, timeout: float = 30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                die(f"{name} exited with {proc.returncode}:\n{open(logfile).read()[-3000:]}")
            r = subprocess.run([f"{PG_BIN}/psql", "-X", "-At", "-h", "127.0.0.1", "-p", str(port), "-U", USER,
                                "-d", DB, "-c", "SELECT 1"], env=self.client_env(), capture_output=True, text=True)
            if r.returncode == 0:
                log(f"{name} (pid {proc.pid}) ready on 127.0.0.1:{port}")
                return
            time.sleep(0.3)
        die(f"{name} did not become ready:\n{open(logfile).read()[-3000:]}")

    def stop_proc(self, proc: subprocess.Popen | None, grace: float = 10):
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def warm_up(self, target: str):
        # fill the pool (20 server connections) and page in the tables
        subprocess.run([f"{PG_BIN}/pgbench", "-n", "-S", "-j", "2", "-c", "20", "-T", "2", "-h", "127.0.0.1",
                        "-p", str(self.port(target)), "-U", USER, DB], env=self.client_env(), capture_output=True)

    def restart(self, target: str):
        """A fresh pooler process, warmed up: per-client memory is measured from a clean baseline (PgBouncer keeps
        freed client slots in its slabs, so a second measurement in one process would read ~0)."""
        if target == "PGBOUNCER":
            self.stop_proc(self.pgb)
            self.start_pgbouncer()
        elif target == "POOL64":
            self.stop_proc(self.p64)
            self.start_pool64()
        self.warm_up(target)

    def port(self, target: str) -> int:
        return {"DIRECT": self.pg_port, "PGBOUNCER": self.pgb_port, "POOL64": self.p64_port}[target]

    def pid(self, target: str) -> int | None:
        return {"DIRECT": None, "PGBOUNCER": self.pgb.pid if self.pgb else None,
                "POOL64": self.p64.pid if self.p64 else None}[target]

    def alive(self, target: str) -> bool:
        p = {"PGBOUNCER": self.pgb, "POOL64": self.p64}.get(target)
        return p is None or p.poll() is None

    def cleanup(self):
        self.stop_proc(self.p64)
        self.stop_proc(self.pgb)
        self.stop_postgres()
        if self.args.keep:
            log(f"kept work directory {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# ---------------------------------------------------------------------------------------------------------------
# Scenarios

@dataclass
class Scenario:
    name: str
    kind: str  # pgbench | idle
    clients: int = 0
    mode: str = "simple"
    select_only: bool = True
    connect_each: bool = False
    idle_count: int = 0


def scenarios(args) -> list[Scenario]:
    out = []
    for c in args.clients:
        for m in ("simple", "extended", "prepared"):
            out.append(Scenario(f"-S c={c} {m}", "pgbench", clients=c, mode=m))
    out.append(Scenario("TPC-B c=50 simple", "pgbench", clients=50, select_only=False))
    out.append(Scenario("churn -C -S c=10", "pgbench", clients=10, connect_each=True))
    for n in args.idle_counts:
        out.append(Scenario(f"idle {n} clients", "idle", idle_count=n))
    return out


@dataclass
class Result:
    scenario: str
    target: str
    run: int
    status: str  # ok | FAIL | skip
    reason: str = ""
    tps: float | None = None
    latency_ms: float | None = None
    transactions: int | None = None
    failed: int | None = None
    cpu_s: float | None = None
    cpu_per_100k: float | None = None
    rss_before_kib: int | None = None
    rss_after_kib: int | None = None
    kib_per_client: float | None = None
    rss_previous_process_kib: int | None = None  # idle: RSS of the pooler that ran the scenarios before, at restart
    seconds: float | None = None
    # Diagnostics: where the machine's CPU went. On 2 shared cores a pooler that costs pgbench or the machine more
    # per transaction loses TPS even when its own CPU is lower.
    pgbench_cpu_per_100k: float | None = None
    machine_cpu_per_100k: float | None = None
    steal_s: float | None = None
    waits_per_tx: float | None = None
    preemptions_per_tx: float | None = None


def run_pgbench(svc: Services, sc: Scenario, target: str, run: int, duration: int) -> Result:
    res = Result(sc.name, target, run, "ok")
    if target == "DIRECT" and sc.clients + 2 * 20 + 5 > svc.args.pg_max_connections:
        res.status, res.reason = "skip", f"needs max_connections >= {sc.clients + 45}"
        return res
    cmd = [f"{PG_BIN}/pgbench", "-n", "-j", "2", "-c", str(sc.clients), "-T", str(duration),
           "-h", "127.0.0.1", "-p", str(svc.port(target)), "-U", USER]
    if sc.select_only:
        cmd.append("-S")
    cmd += ["-M", sc.mode]
    if sc.connect_each:
        cmd.append("-C")
    cmd.append(DB)
    if not sc.select_only:
        # TPC-B updates accounts, tellers and branches and appends to history: without the vacuum pgbench does
        # itself without -n (plus accounts, as -v), each run would meet the dead rows of the runs before it, and
        # whichever target runs later in a set would be slowed by its predecessors' writes.
        r = subprocess.run([f"{PG_BIN}/psql", "-X", "-q", "-h", "127.0.0.1", "-p", str(svc.pg_port), "-U", USER,
                            "-d", DB, "-c", "VACUUM pgbench_branches", "-c", "VACUUM pgbench_tellers",
                            "-c", "TRUNCATE pgbench_history", "-c", "VACUUM pgbench_accounts"],
                           env=svc.client_env(), capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            log(f"vacuum before {sc.name} failed: {r.stderr.strip()}")
    pid = svc.pid(target)
    cpu0 = proc_cpu_seconds(pid) if pid else None
    res.rss_before_kib = proc_rss_kib(pid) if pid else None
    sw0 = proc_context_switches(pid) if pid else None
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy0, steal0 = machine_cpu_seconds()
    t0 = time.monotonic()
    try:
        r = subprocess.run(cmd, env=svc.client_env(), capture_output=True, text=True, timeout=duration + 180)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err, rc = "timeout", -1
    res.seconds = round(time.monotonic() - t0, 1)
    busy1, steal1 = machine_cpu_seconds()
    busy, res.steal_s = busy1 - busy0, round(steal1 - steal0, 2)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    pgbench_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    switches = None
    if pid:
        res.cpu_s = round(proc_cpu_seconds(pid) - cpu0, 3)
        res.rss_after_kib = proc_rss_kib(pid)
        sw1 = proc_context_switches(pid)
        switches = (sw1[0] - sw0[0], sw1[1] - sw0[1])
    m = re.search(r"number of transactions actually processed: (\d+)", out)
    res.transactions = int(m.group(1)) if m else 0
    m = re.search(r"number of failed transactions: (\d+)", out)
    res.failed = int(m.group(1)) if m else 0
    m = re.search(r"latency average = ([\d.]+) ms", out)
    res.latency_ms = float(m.group(1)) if m else None
    m = re.search(r"^tps = ([\d.]+)", out, re.M)
    res.tps = float(m.group(1)) if m else None
    if res.cpu_s is not None and res.transactions:
        res.cpu_per_100k = round(res.cpu_s * 100000 / res.transactions, 3)
    if res.transactions:
        res.pgbench_cpu_per_100k = round(pgbench_cpu * 100000 / res.transactions, 3)
        res.machine_cpu_per_100k = round(busy * 100000 / res.transactions, 3)
        if switches is not None:
            res.waits_per_tx = round(switches[0] / res.transactions, 3)
            res.preemptions_per_tx = round(switches[1] / res.transactions, 3)
    problems = []
    if rc != 0:
        problems.append(f"pgbench exit {rc}")
    if res.failed:
        problems.append(f"{res.failed} failed transactions")
    if not res.transactions:
        problems.append("no transactions")
    if "aborted" in out + err:
        problems.append("clients aborted")
    if not svc.alive(target):
        problems.append("pooler exited")
    if problems:
        res.status = "FAIL"
        first_err = next((ln.strip() for ln in err.splitlines() if "error" in ln.lower() or "fatal" in ln.lower()
                          or "timeout" in ln.lower()), err.strip().splitlines()[0] if err.strip() else "")
        res.reason = "; ".join(problems) + (f": {first_err[:200]}" if first_err else "")
    return res


def run_idle(svc: Services, sc: Scenario, target: str, run: int) -> Result:
    res = Result(sc.name, target, run, "ok")
    pid = svc.pid(target)
    if pid is None:
        res.status, res.reason = "skip", "PostgreSQL backends are processes; not comparable"
        return res
    res.rss_previous_process_kib = proc_rss_kib(pid)
    svc.restart(target)
    pid = svc.pid(target)
    time.sleep(1)
    res.rss_before_kib = proc_rss_kib(pid)
    cpu0 = proc_cpu_seconds(pid)
    cmd = [PY, IDLE_SCRIPT, "--port", str(svc.port(target)), "--user", USER, "--database", DB,
           "--count", str(sc.idle_count), "--concurrency", "50"]
    p = subprocess.Popen(cmd, env=svc.client_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    line = p.stdout.readline()
    res.seconds = round(time.monotonic() - t0, 1)
    m = re.match(r"READY ok=(\d+) failed=(\d+)", line)
    if not m:
        p.kill()
        _, err = p.communicate()
        res.status, res.reason = "FAIL", f"idle client script: {line.strip()} {err.strip()[:300]}"
        return res
    ok, failed = int(m.group(1)), int(m.group(2))
    time.sleep(2)  # let both sides settle (allocator, lazily grown buffers)
    res.rss_after_kib = proc_rss_kib(pid)
    res.cpu_s = round(proc_cpu_seconds(pid) - cpu0, 3)
    res.transactions = ok
    res.failed = failed
    res.kib_per_client = round((res.rss_after_kib - res.rss_before_kib) / max(ok, 1), 2)
    # connections opened per second (SCRAM-authenticated, 50 in flight), for information
    res.tps = round(ok / res.seconds, 1) if res.seconds else None
    try:
        out, err = p.communicate(input="", timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    m2 = re.search(r"DONE closed_early=(\d+)", out)
    closed_early = int(m2.group(1)) if m2 else -1
    problems = []
    if failed:
        problems.append(f"{failed} of {sc.idle_count} connections failed: {err.strip().splitlines()[0][:200] if err.strip() else ''}")
    if closed_early:
        problems.append(f"{closed_early} connections closed by the pooler while idle")
    if not svc.alive(target):
        problems.append("pooler exited")
    if problems:
        res.status, res.reason = "FAIL", "; ".join(problems)
    time.sleep(2)  # let the pooler reap the closed clients before the next measurement
    return res


# ---------------------------------------------------------------------------------------------------------------
# Reporting

def fmt_num(v: float | None, digits: int = 0) -> str:
    if v is None:
        return "—"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def summarize(vals: list[float], digits: int) -> tuple[float | None, str]:
    vals = [v for v in vals if v is not None]
    if not vals:
        return None, "—"
    med = statistics.median(vals)
    s = fmt_num(med, digits)
    if len(vals) > 1 and med:
        spread = (max(vals) - min(vals)) / 2 / abs(med) * 100
        s += f" ±{spread:.0f}%"
    return med, s


def cell(results: list[Result], attr: str, digits: int) -> tuple[float | None, str]:
    if not results:
        return None, "—"
    fails = [r for r in results if r.status == "FAIL"]
    skips = [r for r in results if r.status == "skip"]
    if skips and len(skips) == len(results):
        return None, "skip"
    if fails:
        return None, f"FAIL ({len(fails)}/{len(results)})" if len(results) > 1 else "FAIL"
    return summarize([getattr(r, attr) for r in results], digits)


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def paired(p64: list[Result], pgb: list[Result], attr: str) -> str:
    """pool64/PgBouncer within each set (the two ran back to back, so slow drifts of a shared machine cancel):
    the median of those ratios and their range."""
    base = {r.run: getattr(r, attr) for r in pgb if r.status == "ok"}
    rs = sorted(getattr(r, attr) / base[r.run] for r in p64
                if r.status == "ok" and getattr(r, attr) and base.get(r.run))
    if not rs:
        return "—"
    if len(rs) == 1:
        return f"{rs[0]:.2f}×"
    return f"{statistics.median(rs):.2f}× ({rs[0]:.2f}–{rs[-1]:.2f})"


def table(all_results: list[Result], scs: list[Scenario], runs: int) -> str:
    lines = ["| Scenario | Metric | DIRECT | PgBouncer | pool64 | pool64/PgBouncer | per set |",
             "|---|---|---:|---:|---:|---:|---:|"]
    by = {}
    for r in all_results:
        by.setdefault((r.scenario, r.target), []).append(r)
    for sc in scs:
        g = {t: by.get((sc.name, t), []) for t in TARGETS}
        if sc.kind == "idle":
            metrics = [("KiB per idle client", "kib_per_client", 1), ("RSS with clients, KiB", "rss_after_kib", 0),
                       ("connections opened/s", "tps", 0)]
        else:
            metrics = [("TPS" if not sc.connect_each else "TPS (= new connections/s)", "tps", 0),
                       ("avg latency ms", "latency_ms", 3),
                       ("pooler CPU s/100k tx", "cpu_per_100k", 2),
                       ("pgbench CPU s/100k tx", "pgbench_cpu_per_100k", 2),
                       ("machine CPU s/100k tx", "machine_cpu_per_100k", 2)]
        for i, (label, attr, digits) in enumerate(metrics):
            cells = {t: cell(g[t], attr, digits) for t in TARGETS}
            if attr == "cpu_per_100k" or sc.kind == "idle":
                cells["DIRECT"] = (None, "—")
            name = sc.name if i == 0 else ""
            lines.append(f"| {name} | {label} | {cells['DIRECT'][1]} | {cells['PGBOUNCER'][1]} | {cells['POOL64'][1]} "
                         f"| {ratio(cells['POOL64'][0], cells['PGBOUNCER'][0])} "
                         f"| {paired(g['POOL64'], g['PGBOUNCER'], attr)} |")
    return "\n".join(lines)


def failures_text(all_results: list[Result]) -> str:
    seen = []
    for r in all_results:
        if r.status in ("FAIL", "skip"):
            key = (r.scenario, r.target, r.status, r.reason)
            if key not in seen:
                seen.append(key)
    return "\n".join(f"- {s} / {t}: {st} — {why}" for s, t, st, why in seen)


def machine_info(binary: str) -> str:
    cpu = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024} MiB"
    except OSError:
        pass
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip().splitlines()[0]
        except Exception:  # noqa: BLE001
            return "?"
    commit = out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    return (f"- CPU: {cpu} × {os.cpu_count()} (pooler, pgbench and PostgreSQL share them)\n"
            f"- Memory: {mem}; kernel {platform.release()}\n"
            f"- {out([f'{PG_BIN}/postgres', '--version'])}; {out([PGBOUNCER, '--version'])}; "
            f"{out([f'{PG_BIN}/pgbench', '--version'])}\n"
            f"- pool64: HEAD {commit} at report time; binary built "
            f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(os.path.getmtime(binary)))}, `{os.path.relpath(binary, REPO) if binary.startswith(REPO + '/') else binary}`")


# ---------------------------------------------------------------------------------------------------------------

def profile(args) -> int:
    """Runs pool64 under valgrind --tool=callgrind while pgbench -S -c 10 drives it, then prints the top costs."""
    if not shutil.which("valgrind"):
        die("valgrind is not installed (apt-get install valgrind)")
    duration = args.duration or 20
    svc = Services(args)
    try:
        svc.start_postgres()
        out = os.path.join(svc.p64_dir, "callgrind.out")
        os.makedirs(svc.p64_dir, exist_ok=True)
        # Valgrind 3.19 cannot read the DWARF 5 that Swift's clang emits: profile a copy without debug info (the
        # symbol table still names every function).
        stripped = os.path.join(svc.p64_dir, "pool64-nodebug")
        subprocess.run(["objcopy", "--strip-debug", args.bin, stripped], check=True)
        args.bin = stripped
        shim = os.path.join(svc.p64_dir, "sigsuspend_shim.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, os.path.join(HERE, "bench_sigsuspend_shim.c")],
                       check=True)
        svc.start_pool64(wrapper=["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                                  "--instr-atstart=no", *(["--dump-instr=yes"] if args.profile_instr else [])],
                          extra_env={"LD_PRELOAD": shim})
        # warm-up outside the measurement (pool fill, first-use initialisation), then collect only the steady state
        subprocess.run([f"{PG_BIN}/pgbench", "-n", "-S", "-j", "2", "-c", "10", "-T", "3", "-h", "127.0.0.1",
                        "-p", str(svc.p64_port), "-U", USER, DB], env=svc.client_env(), capture_output=True)
        r = subprocess.run(["callgrind_control", "-i", "on", str(svc.p64.pid)], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"callgrind_control -i on failed: {r.stdout}{r.stderr}")
        total_tx = 0
        for mode in args.profile_modes.split(","):
            # "churn" is -M simple with a new connection per transaction (pgbench -C); "tpcb" the TPC-B-like
            # read-write script at -c 50 as in the benchmark (seven statements per transaction, clients queue)
            flags = {"churn": ["-S", "-M", "simple", "-C", "-c", "10"],
                     "tpcb": ["-M", "simple", "-c", "50"]}.get(mode, ["-S", "-M", mode, "-c", str(args.profile_clients)])
            r = subprocess.run([f"{PG_BIN}/pgbench", "-n", *flags, "-j", "2", "-T", str(duration),
                                "-h", "127.0.0.1", "-p", str(svc.p64_port), "-U", USER, DB],
                               env=svc.client_env(), capture_output=True, text=True)
            m = re.search(r"number of transactions actually processed: (\d+)", r.stdout)
            total_tx += int(m.group(1)) if m else 0
            log(f"profile: -M {mode}: {m.group(1) if m else '?'} transactions under callgrind")
        r = subprocess.run(["callgrind_control", "-d", str(svc.p64.pid)], capture_output=True, text=True)
        if r.returncode != 0:
            die(f"callgrind_control -d failed: {r.stdout}{r.stderr}")
        time.sleep(2)
        svc.p64.kill()  # the dump is written; a SIGTERM drain under valgrind only takes time
        svc.p64.wait()
        files = sorted(f for f in os.listdir(svc.p64_dir) if f.startswith("callgrind.out")
                       and os.path.getsize(os.path.join(svc.p64_dir, f)) > 0)
        if not files:
            die("callgrind wrote no output")
        paths = [os.path.join(svc.p64_dir, f) for f in files]
        def annotate(inclusive: str) -> str:
            text = subprocess.run(["callgrind_annotate", f"--inclusive={inclusive}", "--threshold=99", *paths],
                                  capture_output=True, text=True).stdout
            swift = shutil.which("swift")
            if swift:  # demangle Swift symbols
                text = subprocess.run([swift, "demangle", "--simplified"], input=text, capture_output=True,
                                      text=True).stdout or text
            return text
        ann, incl = annotate("no"), annotate("yes")
        print(f"## callgrind: pool64 under pgbench -S -c 10 ({args.profile_modes}, {duration}s each), "
              f"{total_tx} transactions\n")
        print("### Self cost (exclusive)\n```\n" + "\n".join(ann.splitlines()[:60]) + "\n```\n")
        print("### Inclusive\n```\n" + "\n".join(incl.splitlines()[:60]) + "\n```")
        if args.keep:
            log(f"callgrind files: {' '.join(paths)}")
    finally:
        svc.cleanup()
    return 0


def soak(args) -> int:
    """Memory over time: pgbench runs against POOL64 and PGBOUNCER side by side for --soak seconds (a mix of
    -M simple, extended and prepared -S clients, TPC-B and connection churn, all at once), sampling each pooler's
    RSS every 10 s. Flat means the last minute's RSS is within 10 % (and 4 MiB) of the RSS after the first minute."""
    seconds = args.soak
    svc = Services(args)
    failed = 0
    try:
        svc.start_postgres()
        svc.start_pgbouncer()
        svc.start_pool64()
        for t in ("PGBOUNCER", "POOL64"):
            svc.warm_up(t)
        loads = [("-S -M simple -c 20", []), ("-S -M extended -c 20", []), ("-S -M prepared -c 20", ["POOL64"]),
                 ("-c 10", []), ("-S -C -c 4", [])]
        procs = []
        for t in ("PGBOUNCER", "POOL64"):
            for opts, only in loads:
                if only and t not in only:
                    continue  # PgBouncer 1.18 cannot run -M prepared in transaction mode
                cmd = [f"{PG_BIN}/pgbench", "-n", "-j", "1", "-T", str(seconds), "-h", "127.0.0.1",
                       "-p", str(svc.port(t)), "-U", USER, *opts.split(), DB]
                procs.append((t, opts, subprocess.Popen(cmd, env=svc.client_env(), stdout=subprocess.PIPE,
                                                        stderr=subprocess.PIPE, text=True)))
        samples: dict[str, list[tuple[int, int]]] = {"PGBOUNCER": [], "POOL64": []}
        start = time.monotonic()
        while time.monotonic() - start < seconds + 2:
            el = int(time.monotonic() - start)
            for t in samples:
                if svc.alive(t):
                    samples[t].append((el, proc_rss_kib(svc.pid(t))))
            time.sleep(10)
        lines = [f"## pool64 soak: {seconds} s of mixed pgbench load on both poolers "
                 f"({time.strftime('%Y-%m-%d %H:%M')})\n", machine_info(args.bin) + "\n",
                 "Load per pooler: " + "; ".join(f"pgbench {o}" for o, _ in loads)
                 + " (-M prepared on pool64 only: PgBouncer 1.18 cannot run it in transaction mode).\n"]
        for t, opts, p in procs:
            out, err = p.communicate()
            m = re.search(r"number of transactions actually processed: (\d+)", out)
            fails = re.search(r"number of failed transactions: (\d+)", out)
            tx = int(m.group(1)) if m else 0
            nfail = int(fails.group(1)) if fails else 0
            ok = p.returncode == 0 and tx > 0 and nfail == 0
            if not ok:
                failed += 1
            lines.append(f"- {t} pgbench {opts}: {tx:,} transactions, {nfail} failed, exit {p.returncode}"
                         + ("" if ok else f" — FAIL {err.strip().splitlines()[-1][:200] if err.strip() else ''}"))
        lines.append("\n| pooler | RSS at 60 s KiB | max RSS KiB | RSS at end KiB | end vs 60 s |\n|---|---:|---:|---:|---:|")
        for t, ss in samples.items():
            if not ss:
                continue
            base = next((r for e, r in ss if e >= 60), ss[0][1])
            tail = [r for e, r in ss if e >= seconds - 60] or [ss[-1][1]]
            end = max(tail)
            growth = end - base
            flat = growth <= max(0.10 * base, 4096)
            if not flat:
                failed += 1
            lines.append(f"| {t} | {base:,} | {max(r for _, r in ss):,} | {ss[-1][1]:,} | "
                         f"{growth:+,} KiB ({'flat' if flat else 'GROWING'}) |")
        lines.append("\nRSS samples (s: KiB): " + "; ".join(
            f"{t}: " + ", ".join(f"{e}:{r}" for e, r in ss[::6]) for t, ss in samples.items()))
        text = "\n".join(lines)
        print(text)
        if args.output:
            with open(args.output, "w") as f:
                f.write(text)
    finally:
        svc.cleanup()
    return 1 if failed else 0


def pgbench_duration(args, sc: Scenario, target: str) -> int:
    """Seconds for one pgbench run. pgbench's -T clock includes opening its connections, and DIRECT opens one
    PostgreSQL backend per client: on a busy 2-core machine 500 of them took the whole 2 s of a smoke run (CI: "no
    transactions"), and with parallel builds running 8 s was not always enough either. Smoke runs give DIRECT at
    -c 500 and more 20 s; every other run keeps --duration."""
    if args.smoke and target == "DIRECT" and sc.clients >= 500:
        return max(args.duration, 20)
    return args.duration


def main() -> int:
    ap = argparse.ArgumentParser(description="pool64 vs PgBouncer vs direct PostgreSQL (see scripts/bench --help)")
    ap.add_argument("--bin", required=True, help="pool64 binary")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--duration", type=int, default=None, help="seconds per pgbench run")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--clients", default="10,100,500")
    ap.add_argument("--idle-counts", default=None)
    ap.add_argument("--only", default=None, help="comma-separated substrings: run only matching scenarios")
    ap.add_argument("--targets", default="DIRECT,PGBOUNCER,POOL64")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--pg-max-connections", type=int, default=600)
    ap.add_argument("--json", default=None, help="write raw results here")
    ap.add_argument("--output", default=None, help="also write the markdown report here")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--profile-clients", type=int, default=10,
                    help="with --profile: pgbench -c for the simple/extended/prepared modes (default 10)")
    ap.add_argument("--profile-instr", action="store_true",
                    help="with --profile: record costs per instruction (callgrind --dump-instr=yes), to find call sites "
                         "with objdump")
    ap.add_argument("--profile", action="store_true", help="callgrind profile of pool64 under pgbench -S instead")
    ap.add_argument("--profile-modes", default="simple,extended", help="pgbench -M modes run under --profile (churn: -M simple -C; tpcb: the TPC-B-like script at -c 50)")
    ap.add_argument("--soak", type=int, default=0, help="memory soak for this many seconds instead of the set")
    ap.add_argument("--command-line", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.profile:
        return profile(args)
    if args.soak:
        return soak(args)

    if args.duration is None:
        args.duration = 2 if args.smoke else 5 if args.quick else 30
    args.clients = [int(c) for c in args.clients.split(",") if c]
    if args.idle_counts is None:
        args.idle_counts = "200,500" if args.smoke else "2000,5000"
    args.idle_counts = [int(c) for c in args.idle_counts.split(",") if c]
    targets = [t.strip().upper() for t in args.targets.split(",")]
    scs = scenarios(args)
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        scs = [s for s in scs if any(k in s.name for k in keys)]

    svc = Services(args)
    all_results: list[Result] = []
    started = time.time()

    def on_signal(signum, _frame):
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        svc.start_postgres()
        if "PGBOUNCER" in targets:
            svc.start_pgbouncer()
        if "POOL64" in targets:
            svc.start_pool64()
        for t in targets:
            if t != "DIRECT":
                pid = svc.pid(t)
                lim = [ln for ln in open(f"/proc/{pid}/limits") if ln.startswith("Max open files")]
                log(f"{t} {lim[0].strip() if lim else ''}")
        for t in targets:
            svc.warm_up(t)
        rss_start = {t: proc_rss_kib(svc.pid(t)) for t in targets if svc.pid(t)}
        for run in range(args.runs):
            for sc in scs:
                order = list(targets)
                if run % 2 == 1 and "PGBOUNCER" in order and "POOL64" in order:  # alternate which pooler goes first
                    i, j = order.index("PGBOUNCER"), order.index("POOL64")
                    order[i], order[j] = order[j], order[i]
                for t in order:
                    if not svc.alive(t):
                        res = Result(sc.name, t, run, "FAIL", reason="pooler is not running")
                    elif sc.kind == "idle":
                        res = run_idle(svc, sc, t, run)
                    else:
                        res = run_pgbench(svc, sc, t, run, pgbench_duration(args, sc, t))
                    all_results.append(res)
                    detail = (f"tps={fmt_num(res.tps)} lat={res.latency_ms} cpu/100k={res.cpu_per_100k} "
                              f"pgbench/100k={res.pgbench_cpu_per_100k} machine/100k={res.machine_cpu_per_100k} "
                              f"waits/tx={res.waits_per_tx} preempted/tx={res.preemptions_per_tx} steal={res.steal_s}s"
                              if sc.kind == "pgbench" else
                              f"KiB/client={res.kib_per_client} rss={res.rss_after_kib} opened/s={res.tps}")
                    log(f"run {run + 1}/{args.runs} {sc.name:22s} {t:9s} {res.status:4s} {detail}"
                        + (f" — {res.reason}" if res.reason else ""))
                    time.sleep(0.5)
        rss_end = {t: proc_rss_kib(svc.pid(t)) for t in targets if svc.pid(t)}
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        svc.cleanup()

    elapsed = time.time() - started
    expected_fail = lambda r: r.target == "PGBOUNCER" and "prepared" in r.scenario  # noqa: E731
    report = []
    report.append(f"## pool64 benchmark ({'smoke' if args.smoke else 'quick' if args.quick else 'full'}, "
                  f"{args.runs} run(s), {args.duration}s per pgbench run, {time.strftime('%Y-%m-%d %H:%M')})\n")
    report.append(machine_info(args.bin) + "\n")
    report.append(f"Command: `{args.command_line or ' '.join(sys.argv)}` — took {elapsed / 60:.1f} min\n")
    report.append(table(all_results, scs, args.runs) + "\n")
    ft = failures_text(all_results)
    if ft:
        report.append("Failures and skips:\n\n" + ft + "\n")
    if rss_start:
        growth = []
        for t in rss_start:
            prev = [r.rss_previous_process_kib for r in all_results
                    if r.target == t and r.rss_previous_process_kib is not None]
            steps = " → ".join(f"{v:,}" for v in [rss_start[t], *prev, rss_end.get(t, 0)])
            growth.append(f"{t} {steps}")
        report.append("Pooler RSS (KiB) after warm-up → before each idle scenario's restart → end: "
                      + "; ".join(growth) + "\n")
    text = "\n".join(report)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in all_results], f, indent=1)

    if args.smoke:
        passed = sum(1 for r in all_results if r.status == "ok")
        failed = sum(1 for r in all_results if r.status == "FAIL" and not expected_fail(r))
        xfail = sum(1 for r in all_results if r.status == "FAIL" and expected_fail(r))
        skipped = sum(1 for r in all_results if r.status == "skip")
        extra = []
        if xfail:
            extra.append(f"{xfail} expected failures (PgBouncer 1.18 -M prepared)")
        if skipped:
            extra.append(f"{skipped} skipped")
        print(f"{passed} passed, {failed} failed" + (f" ({', '.join(extra)})" if extra else ""))
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
