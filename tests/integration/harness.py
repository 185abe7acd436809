"""Real-process harness for pool64's integration tests.

Starts a throwaway PostgreSQL 15 cluster, the pool64 binary (or PgBouncer, for
comparison), and offers small clients: psql/pgbench runners and a raw v3 wire
client (startup, SCRAM-SHA-256 / md5 / cleartext auth, simple query) for the
tests that need exact bytes or SQLSTATEs from the login phase.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import pwd
import resource
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

import pytest
from dataclasses import dataclass, field

PG_BIN = os.environ.get("POOL64_PG_BIN", "/usr/lib/postgresql/15/bin")
APP_USER = "app"
APP_PASSWORD = "app-secret"
APP_DB = "appdb"
NOFILE_LIMIT = 65536
PROXY_KIND = os.environ.get("POOL64_TEST_PROXY", "pool64")


def pg_tool(name: str) -> str:
    path = os.path.join(PG_BIN, name)
    return path if os.path.exists(path) else (shutil.which(name) or name)


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port free on 127.0.0.1 and (when present) ::1."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if ipv6_loopback_available():
            try:
                with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                    s6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    s6.bind(("::1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port")


def raise_nofile() -> None:
    """preexec_fn: give a child (pool64, PgBouncer) room for thousands of sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = max(hard, NOFILE_LIMIT) if os.geteuid() == 0 else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def raise_own_nofile(minimum: int = NOFILE_LIMIT) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= minimum:
        return soft
    target = minimum if (os.geteuid() == 0 or hard >= minimum) else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(hard, target)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def dsn(host: str, port: int, user: str = APP_USER, password: str | None = APP_PASSWORD,
        dbname: str = APP_DB, **extra: str) -> str:
    parts = [f"host={host}", f"port={port}", f"user={user}", f"dbname={dbname}"]
    if password is not None:
        parts.append(f"password={password}")
    parts += [f"{k}={v}" for k, v in extra.items()]
    return " ".join(parts)


# --------------------------------------------------------------------------------------------
# PostgreSQL


class PgServer:
    """A throwaway PostgreSQL 15 cluster in a temp dir owned by the postgres user."""

    def __init__(self) -> None:
        self.pw = pwd.getpwnam("postgres")
        self.dir = tempfile.mkdtemp(prefix="pool64-pg-")
        os.chown(self.dir, self.pw.pw_uid, self.pw.pw_gid)
        os.chmod(self.dir, 0o700)
        self.datadir = os.path.join(self.dir, "data")
        self.logfile = os.path.join(self.dir, "postgresql.log")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.socket_dir = self.dir

    # Run a command as postgres, in our dir (postgres cannot enter root's cwd).
    def run_as_postgres(self, args: list[str], check: bool = True, timeout: float = 120,
                        input: str | None = None) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            args, cwd=self.dir, user=self.pw.pw_uid, group=self.pw.pw_gid, extra_groups=[],
            env={**os.environ, "HOME": self.dir, "PGPASSWORD": ""}, input=input,
            capture_output=True, text=True, timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def init(self, pgbench: bool = True) -> None:
        self.run_as_postgres([
            pg_tool("initdb"), "-D", self.datadir, "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8",
        ])
        listen = "127.0.0.1,::1" if ipv6_loopback_available() else "127.0.0.1"
        with open(os.path.join(self.datadir, "postgresql.conf"), "a") as f:
            f.write(
                f"listen_addresses = '{listen}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "password_encryption = 'scram-sha-256'\nfsync = off\nsynchronous_commit = off\n"
                "full_page_writes = off\nmax_connections = 300\nshared_buffers = 128MB\n"
                "log_min_messages = warning\n"
            )
        self.start()
        self.superuser_sql(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{APP_PASSWORD}'")
        self.superuser_sql(f"CREATE DATABASE {APP_DB} OWNER {APP_USER}")
        if not pgbench:
            return
        proc = subprocess.run(
            [pg_tool("pgbench"), "-i", "-s", "1", "-q", "-h", self.host, "-p", str(self.port),
             "-U", APP_USER, APP_DB],
            env={**os.environ, "PGPASSWORD": APP_PASSWORD}, capture_output=True, text=True, timeout=300,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"pgbench -i failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> None:
        self.run_as_postgres([pg_tool("pg_ctl"), "-D", self.datadir, "-l", self.logfile, "-w", "-t", "60",
                              "start"])

    def stop(self, mode: str = "fast") -> None:
        if os.path.exists(os.path.join(self.datadir, "postmaster.pid")):
            self.run_as_postgres([pg_tool("pg_ctl"), "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop"],
                                 check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    @contextlib.contextmanager
    def stopped(self, mode: str = "fast"):
        """Stop the server for the body of a with-block; start it again afterwards."""
        self.stop(mode)
        try:
            yield self
        finally:
            self.start()

    def superuser_sql(self, sql: str, db: str = "postgres") -> str:
        proc = self.run_as_postgres([
            pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.socket_dir,
            "-p", str(self.port), "-U", "postgres", "-d", db, "-c", sql,
        ])
        return proc.stdout.strip()

    @property
    def app_dsn(self) -> str:
        """libpq DSN straight to PostgreSQL (bypassing the proxy) as app."""
        return dsn(self.host, self.port)

    @property
    def database_url(self) -> str:
        return f"postgresql://{APP_USER}:{APP_PASSWORD}@{self.host}:{self.port}/{APP_DB}"

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Proxies


PROXY_OPTION_FLAGS = {
    "pool_size": "--pool-size",
    "min_pool_size": "--min-pool-size",
    "max_client_conn": "--max-client-conn",
    "query_wait_timeout": "--query-wait-timeout",
    "server_lifetime": "--server-lifetime",
    "server_idle_timeout": "--server-idle-timeout",
    "client_idle_timeout": "--client-idle-timeout",
    "client_login_timeout": "--client-login-timeout",
    "auth_type": "--auth-type",
    "auth_file": "--auth-file",
    "log_level": "--log-level",
    "tls_cert": "--tls-cert",
    "tls_key": "--tls-key",
}

PGBOUNCER_OPTIONS = {
    "pool_size": "default_pool_size",
    "min_pool_size": "min_pool_size",
    "max_client_conn": "max_client_conn",
    "query_wait_timeout": "query_wait_timeout",
    "server_lifetime": "server_lifetime",
    "server_idle_timeout": "server_idle_timeout",
    "client_idle_timeout": "client_idle_timeout",
    "client_login_timeout": "client_login_timeout",
    "auth_type": "auth_type",
    "auth_file": "auth_file",
    "tls_cert": "client_tls_cert_file",
    "tls_key": "client_tls_key_file",
    "admin_users": "admin_users",
}


@dataclass
class ProxyProcess:
    """A running proxy (pool64 or PgBouncer) in front of the test cluster."""

    kind: str
    mode: str
    host: str
    port: int
    admin_port: int | None
    log_path: str
    proc: subprocess.Popen
    workdir: str
    options: dict = field(default_factory=dict)

    def dsn(self, user: str = APP_USER, password: str | None = APP_PASSWORD, host: str | None = None,
            **extra: str) -> str:
        return dsn(host or self.host, self.port, user=user, password=password, **extra)

    @property
    def url(self) -> str:
        return f"postgresql://{APP_USER}:{APP_PASSWORD}@{self.host}:{self.port}/{APP_DB}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_size(self) -> int:
        try:
            return os.path.getsize(self.log_path)
        except OSError:
            return 0

    def log_text(self, offset: int = 0, limit: int = 40000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return ""
        if len(data) > limit:
            data = b"[... log truncated ...]\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def stop(self) -> None:
        stop_process(self.proc)


def admin_stats(proxy: "ProxyProcess") -> dict:
    """pool64's `/stats` document from its admin listener."""
    with urllib.request.urlopen(f"http://127.0.0.1:{proxy.admin_port}/stats", timeout=10) as resp:
        assert resp.status == 200
        return json.load(resp)


def app_pool(snapshot: dict, database: str = APP_DB, user: str = APP_USER) -> dict:
    """The pool for `database`/`user` in a `/stats` document."""
    for pool in snapshot["pools"]:
        if pool["database"] == database and pool["user"] == user:
            return pool
    raise AssertionError(f"no pool {database}/{user} in /stats: {json.dumps(snapshot)[:2000]}")


def psql_select1(dsn_str: str, timeout: float = 5) -> bool:
    try:
        proc = subprocess.run([pg_tool("psql"), "-X", "-At", "-c", "SELECT 1", dsn_str],
                              env={**os.environ, "PGCONNECT_TIMEOUT": "3"}, capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        return proc.returncode == 0 and proc.stdout.strip() == "1"
    except subprocess.TimeoutExpired:
        return False


def start_pool64(binary: str, pg: PgServer, mode: str, workdir: str, extra_args: list[str],
                 options: dict, ready_timeout: float = 30, port: int | None = None,
                 admin_port: int | None = None, database_url_env: bool = True) -> ProxyProcess:
    """pool64 on `port` (default: a free one) of 127.0.0.1 and ::1; a second process given the same port and
    `--handover-socket` takes the listeners over from the first."""
    port = port or free_port()
    admin_port = admin_port or free_port()
    args = [binary, "--listen", f"127.0.0.1:{port}"]
    if ipv6_loopback_available():
        args += ["--listen", f"[::1]:{port}"]
    args += ["--admin-listen", f"127.0.0.1:{admin_port}", "--pool-mode", mode]
    options = {"log_level": os.environ.get("POOL64_TEST_LOG_LEVEL", "debug"), **options}
    for key, value in options.items():
        args += [PROXY_OPTION_FLAGS[key], str(value)]
    args += extra_args
    log_path = os.path.join(workdir, "pool64.log")
    # pool64 ignores POOL64_* variables it does not know (with a warning); the harness's own (POOL64_BIN,
    # POOL64_TEST_*, ...) are kept from it all the same, so its logs carry no such warning.
    env = {k: v for k, v in os.environ.items() if not k.startswith("POOL64_")}
    if database_url_env:
        env["DATABASE_URL"] = pg.database_url
    with open(log_path, "ab") as log:
        log.write(("$ " + " ".join(args) + "\n").encode())
        log.flush()
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=raise_nofile, cwd=workdir)
    with open(os.path.join(workdir, "pool64.pid"), "w") as f:
        f.write(f"{proc.pid}\n")
    proxy = ProxyProcess("pool64", mode, "127.0.0.1", port, admin_port, log_path, proc, workdir, options)
    _wait_ready(proxy, ready_timeout)
    return proxy


def start_pgbouncer(pg: PgServer, mode: str, workdir: str, extra_args: list[str], options: dict,
                    ready_timeout: float = 30) -> ProxyProcess:
    pw = pwd.getpwnam("postgres")
    os.chown(workdir, pw.pw_uid, pw.pw_gid)
    port = free_port()
    listen = "127.0.0.1,::1" if ipv6_loopback_available() else "127.0.0.1"
    userlist = os.path.join(workdir, "userlist.txt")
    with open(userlist, "w") as f:
        f.write(f'"{APP_USER}" "{APP_PASSWORD}"\n')
    settings = {
        "listen_addr": listen,
        "listen_port": port,
        "unix_socket_dir": "",
        "auth_type": "scram-sha-256",
        "auth_file": userlist,
        "pool_mode": mode,
        "default_pool_size": 20,
        "max_client_conn": 2000,
        "ignore_startup_parameters": "extra_float_digits",
        "server_reset_query": "DISCARD ALL",
        "server_check_delay": 0,
        "pidfile": os.path.join(workdir, "pgbouncer.pid"),
        "verbose": 0,
        "listen_backlog": 4096,
    }
    if "tls_cert" in options:
        settings["client_tls_sslmode"] = "allow"
    for key, value in options.items():
        if key == "log_level":
            continue
        if key not in PGBOUNCER_OPTIONS:
            raise KeyError(f"option {key} has no PgBouncer equivalent")
        settings[PGBOUNCER_OPTIONS[key]] = value
    if extra_args:
        raise KeyError(f"pool64-only arguments {extra_args} have no PgBouncer equivalent")
    ini = os.path.join(workdir, "pgbouncer.ini")
    with open(ini, "w") as f:
        f.write("[databases]\n")
        f.write(f"* = host={pg.host} port={pg.port}\n")
        f.write("[pgbouncer]\n")
        for key, value in settings.items():
            f.write(f"{key} = {value}\n")
    for path in (userlist, ini):
        os.chown(path, pw.pw_uid, pw.pw_gid)
    log_path = os.path.join(workdir, "pgbouncer.log")
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"

    def preexec() -> None:
        raise_nofile()
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)

    with open(log_path, "ab") as log:
        proc = subprocess.Popen([binary, ini], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=preexec, cwd=workdir, env={**os.environ, "HOME": workdir})
    proxy = ProxyProcess("pgbouncer", mode, "127.0.0.1", port, None, log_path, proc, workdir, options)
    _wait_ready(proxy, ready_timeout)
    return proxy


def _wait_ready(proxy: ProxyProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proxy.alive():
            raise RuntimeError(f"{proxy.kind} exited with {proxy.proc.returncode} before accepting clients:\n"
                               + proxy.log_text())
        if psql_select1(proxy.dsn()):
            return
        time.sleep(0.2)
    proxy.stop()
    raise RuntimeError(f"{proxy.kind} did not answer SELECT 1 within {timeout}s:\n" + proxy.log_text())


# --------------------------------------------------------------------------------------------
# psql / pgbench


def psql(dsn_str: str, *args: str, sql: str | None = None, input: str | None = None, timeout: float = 120,
         check: bool = True, cwd: str | None = None) -> subprocess.CompletedProcess:
    cmd = [pg_tool("psql"), "-X", "-At", "-v", "ON_ERROR_STOP=1", *args]
    if sql is not None:
        cmd += ["-c", sql]
    cmd.append(dsn_str)
    proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, cwd=cwd,
                          stdin=None if input is not None else subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"psql failed ({proc.returncode}): {' '.join(cmd)}\nstdout:\n{proc.stdout[-4000:]}\n"
                             f"stderr:\n{proc.stderr[-4000:]}")
    return proc


# --------------------------------------------------------------------------------------------
# Raw PostgreSQL v3 wire client


PROTOCOL_3_0 = 196608
SSL_REQUEST_CODE = 80877103
GSSENC_REQUEST_CODE = 80877104
CANCEL_REQUEST_CODE = 80877102


def startup_message(params: dict[str, str], version: int = PROTOCOL_3_0) -> bytes:
    body = struct.pack("!i", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def message(tag: bytes, payload: bytes = b"") -> bytes:
    return tag + struct.pack("!i", len(payload) + 4) + payload


def parse_error_fields(payload: bytes) -> dict[str, str]:
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


class WireError(Exception):
    def __init__(self, fields: dict[str, str]):
        self.fields = fields
        self.sqlstate = fields.get("C")
        super().__init__(f"{fields.get('S', 'ERROR')} {self.sqlstate}: {fields.get('M')}")


class WireClient:
    """Minimal v3 frontend: enough to log in and run simple queries, byte-exact."""

    def __init__(self, host: str, port: int, timeout: float = 10) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.parameters: dict[str, str] = {}
        self.backend_key: tuple[int, int] | None = None
        self.notices: list[dict[str, str]] = []
        self.notifications: list[tuple[int, str, str]] = []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed by peer")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def recv_byte(self) -> bytes:
        return self._recv_exact(1)

    def recv_message(self) -> tuple[bytes, bytes]:
        tag = self._recv_exact(1)
        (length,) = struct.unpack("!i", self._recv_exact(4))
        return tag, self._recv_exact(length - 4)

    def login(self, user: str = APP_USER, password: str | None = APP_PASSWORD, database: str = APP_DB,
              **params: str) -> None:
        self.send(startup_message({"user": user, "database": database, **params}))
        scram = None
        while True:
            tag, payload = self.recv_message()
            if tag == b"E":
                raise WireError(parse_error_fields(payload))
            if tag == b"R":
                (code,) = struct.unpack("!i", payload[:4])
                if code == 0:
                    continue
                if code == 3:
                    self.send(message(b"p", (password or "").encode() + b"\0"))
                elif code == 5:
                    salt = payload[4:8]
                    inner = hashlib.md5(((password or "") + user).encode()).hexdigest()
                    outer = "md5" + hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send(message(b"p", outer.encode() + b"\0"))
                elif code == 10:
                    mechanisms = payload[4:].split(b"\0")
                    if b"SCRAM-SHA-256" not in mechanisms:
                        raise RuntimeError(f"no supported SASL mechanism in {mechanisms}")
                    scram = _Scram(password or "")
                    first = scram.client_first()
                    self.send(message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first))
                elif code == 11:
                    assert scram is not None
                    self.send(message(b"p", scram.client_final(payload[4:])))
                elif code == 12:
                    assert scram is not None
                    scram.verify_server_final(payload[4:])
                else:
                    raise RuntimeError(f"unsupported authentication request {code}")
            elif tag == b"S":
                k, v, _ = payload.split(b"\0", 2)
                self.parameters[k.decode()] = v.decode()
            elif tag == b"K":
                self.backend_key = struct.unpack("!ii", payload)
            elif tag == b"N":
                self.notices.append(parse_error_fields(payload))
            elif tag == b"Z":
                return
            else:
                raise RuntimeError(f"unexpected message {tag!r} during login")

    def query(self, sql: str) -> list[list[str | None]]:
        """Run a simple query; return rows of the last result. Raises WireError on ErrorResponse
        (after reading up to ReadyForQuery so the connection stays usable)."""
        self.send(message(b"Q", sql.encode() + b"\0"))
        rows: list[list[str | None]] = []
        error = None
        while True:
            tag, payload = self.recv_message()
            if tag == b"T":
                rows = []
            elif tag == b"D":
                (n,) = struct.unpack("!h", payload[:2])
                pos, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", payload[pos:pos + 4])
                    pos += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(payload[pos:pos + ln].decode())
                        pos += ln
                rows.append(row)
            elif tag == b"E":
                error = WireError(parse_error_fields(payload))
            elif tag == b"N":
                self.notices.append(parse_error_fields(payload))
            elif tag == b"S":
                k, v, _ = payload.split(b"\0", 2)
                self.parameters[k.decode()] = v.decode()
            elif tag == b"A":
                pid = struct.unpack("!i", payload[:4])[0]
                channel, extra, _ = payload[4:].split(b"\0", 2)
                self.notifications.append((pid, channel.decode(), extra.decode()))
            elif tag == b"Z":
                self.transaction_status = payload.decode()
                if error:
                    raise error
                return rows

    def scalar(self, sql: str) -> str | None:
        rows = self.query(sql)
        return rows[0][0] if rows else None

    def terminate(self) -> None:
        with contextlib.suppress(OSError):
            self.send(message(b"X"))
        self.close()

    def abort_connection(self) -> None:
        """Drop the TCP connection with a RST, as a crashed client or a broken network would."""
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()


class _Scram:
    """SCRAM-SHA-256 client side (RFC 5802 / RFC 7677), no channel binding."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(secrets.token_bytes(18)).decode()
        self.client_first_bare = f"n=,r={self.nonce}"

    def client_first(self) -> bytes:
        return ("n,," + self.client_first_bare).encode()

    def client_final(self, server_first: bytes) -> bytes:
        text = server_first.decode()
        attrs = dict(item.split("=", 1) for item in text.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise RuntimeError("server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = f"c=biws,r={attrs['r']}"
        auth_message = f"{self.client_first_bare},{text},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        self.expected_server_signature = hmac.new(server_key, auth_message, hashlib.sha256).digest()
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify_server_final(self, server_final: bytes) -> None:
        attrs = dict(item.split("=", 1) for item in server_final.decode().split(","))
        if base64.b64decode(attrs.get("v", "")) != self.expected_server_signature:
            raise RuntimeError("server signature mismatch in SCRAM final message")


def read_until_closed_or_message(sock: socket.socket, timeout: float, single_byte: bool = False
                                 ) -> tuple[str, bytes]:
    """Read from a raw socket until it closes, or a complete message has arrived (then wait
    0.5 s more for the close), or `timeout` passes. With single_byte, one byte is enough
    (SSLRequest / GSSENCRequest answers). Returns ("closed" | "open", bytes_received)."""
    sock.settimeout(0.1)
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return "closed", data
        if not chunk:
            return "closed", data
        data += chunk
        if single_byte:
            return "open", data
        if len(data) >= 5 and len(data) >= 1 + struct.unpack("!i", data[1:5])[0]:
            deadline = min(deadline, time.monotonic() + 0.5)
    return "open", data


def error_sqlstates(data: bytes) -> list[str]:
    """SQLSTATEs of the v3 ErrorResponse messages at the start of `data` (best effort)."""
    states, pos = [], 0
    while pos + 5 <= len(data):
        tag = data[pos:pos + 1]
        (length,) = struct.unpack("!i", data[pos + 1:pos + 5])
        if length < 4 or pos + 1 + length > len(data):
            break
        if tag == b"E":
            states.append(parse_error_fields(data[pos + 5:pos + 1 + length]).get("C", ""))
        pos += 1 + length
    return states


# --------------------------------------------------------------------------------------------
# Expected failures of the comparison proxy


def is_pgbouncer() -> bool:
    return PROXY_KIND == "pgbouncer"


def pgbouncer_xfail(request, reason: str, modes=("transaction",), strict: bool = True) -> None:
    """Mark the running test as expected to fail, but only when the proxy is PgBouncer 1.18
    and only in the given pool modes. pool64 is never excused."""
    mode = request.node.callspec.params.get("pool_mode") if hasattr(request.node, "callspec") else None
    if is_pgbouncer() and (mode is None or mode in modes):
        print(f"XFAIL under PgBouncer ({mode} mode): {reason}")
        request.node.add_marker(pytest.mark.xfail(reason=f"PgBouncer 1.18: {reason}", strict=strict))


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds; waits for the exit either way."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
