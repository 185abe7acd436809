"""Driver compatibility: ruby-pg, DBD::Pg, PHP PDO pgsql (server-side and emulated prepares), pgx v4 and pg8000 run
the same scenario list against PostgreSQL directly and through the proxy in both pool modes (pool size 2, so their
connections share server connections), and every check must pass with the same result as on PostgreSQL.

Each program in drivers/ takes a URL, a table prefix and a scope ("all" adds the session-only checks: LISTEN/NOTIFY,
SET, temp tables) and prints one JSON line per check: {"name", "ok", "detail"}. "detail" is free of anything that
depends on the target, so the proxy's details must equal PostgreSQL's.

The drivers come from Debian packages (scripts/lib/common.sh, P64_DRIVER_PACKAGES), except pg8000, which Debian ships
only in a version without SCRAM: it is installed from PyPI with pip into the session's temp dir. pgx is built once per
session in GOPATH mode against Debian's golang-github-jackc-pgx-v4-dev. A driver that cannot be had is skipped with the
reason printed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Callable

import pytest

from harness import pgbouncer_xfail

DRIVER_DIR = os.path.join(os.path.dirname(__file__), "drivers")
GOPATH_SYSTEM = "/usr/share/gocode"
PGX_SOURCE = os.path.join(GOPATH_SYSTEM, "src", "github.com", "jackc", "pgx", "v4")
PYTHON = "/usr/bin/python3"
RUN_TIMEOUT = 120

# Checks whose result differs from PostgreSQL behind pool64 in transaction mode because of pool64 bugs, not the
# drivers. A differing check listed here makes the test XFAIL with this text (every other check must still pass);
# once a check matches PostgreSQL again, its entry can go. None at the moment: ddl_change_busy_server and
# parse_error_after_drop were fixed (result shapes compared per server copy; known SQL parsed afresh).
KNOWN_POOL64_BUGS: dict[str, str] = {}


@dataclass
class Driver:
    key: str
    command: Callable[[dict, str, str, str], list[str]]  # (tools, url, prefix, scope) -> argv
    env: Callable[[dict], dict] = lambda tools: {}


def _ruby(tools, url, prefix, scope):
    return ["ruby", os.path.join(DRIVER_DIR, "ruby_pg.rb"), url, prefix, scope]


def _perl(tools, url, prefix, scope):
    return ["perl", os.path.join(DRIVER_DIR, "dbd_pg.pl"), url, prefix, scope]


def _php(prepares):
    def command(tools, url, prefix, scope):
        return ["php", os.path.join(DRIVER_DIR, "pdo_pgsql.php"), url, prefix, scope, prepares]
    return command


def _pgx(tools, url, prefix, scope):
    return [tools["pgx"], url, prefix, scope]


def _pg8000(tools, url, prefix, scope):
    return [PYTHON, os.path.join(DRIVER_DIR, "pg8000_native.py"), url, prefix, scope]


DRIVERS = {
    "ruby-pg": Driver("ruby-pg", _ruby),
    "dbd-pg": Driver("dbd-pg", _perl),
    "pdo-native": Driver("pdo-native", _php("native")),
    "pdo-emulate": Driver("pdo-emulate", _php("emulate")),
    "pgx-v4": Driver("pgx-v4", _pgx),
    "pg8000": Driver("pg8000", _pg8000, env=lambda tools: {"PYTHONPATH": tools["pg8000"]}),
}


def _skip(reason: str):
    print(f"SKIP: {reason}")
    pytest.skip(reason)


def _probe(argv: list[str]) -> str | None:
    """None when argv runs and exits 0, else why not."""
    if shutil.which(argv[0]) is None:
        return f"{argv[0]} not found"
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else (r.stderr or r.stdout).strip()[-500:] or f"exit {r.returncode}"


@pytest.fixture(scope="session")
def driver_tools(tmp_path_factory):
    """Per driver: a tool path, or ("skip", reason). pgx is compiled and pg8000 installed lazily, once."""
    cache: dict = {}
    workdir = tmp_path_factory.mktemp("drivers")

    def get(key: str):
        if key in cache:
            return cache[key]
        if key == "ruby-pg":
            why = _probe(["ruby", "-rpg", "-e", "PG.library_version"])
            cache[key] = ("skip", f"ruby-pg unusable (Debian package ruby-pg): {why}") if why else "ruby"
        elif key == "dbd-pg":
            why = _probe(["perl", "-MDBD::Pg", "-MJSON::PP", "-e", "1"])
            cache[key] = ("skip", f"DBD::Pg unusable (Debian package libdbd-pg-perl): {why}") if why else "perl"
        elif key in ("pdo-native", "pdo-emulate"):
            why = _probe(["php", "-r", "exit(in_array('pgsql', PDO::getAvailableDrivers()) && "
                          "function_exists('pcntl_fork') ? 0 : 1);"])
            cache[key] = ("skip", f"PHP with PDO pgsql and pcntl unusable (Debian packages php-cli, php-pgsql): "
                          f"{why}") if why else "php"
        elif key == "pgx":
            cache[key] = _build_pgx(workdir)
        elif key == "pg8000":
            cache[key] = _install_pg8000(workdir)
        return cache[key]

    return get


def _build_pgx(workdir) -> str | tuple:
    """Compile drivers/pgx_v4.go in GOPATH mode against Debian's pgx v4 sources (offline)."""
    if shutil.which("go") is None or not os.path.isdir(PGX_SOURCE):
        return ("skip", "go or pgx v4 sources missing (Debian packages golang-go, golang-github-jackc-pgx-v4-dev)")
    gopath = workdir / "gopath"
    src = gopath / "src" / "pgxcheck"
    src.mkdir(parents=True)
    shutil.copy(os.path.join(DRIVER_DIR, "pgx_v4.go"), src / "main.go")
    binary = workdir / "pgxcheck"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{GOPATH_SYSTEM}:{gopath}", "GOFLAGS": "",
           "GOCACHE": str(workdir / "gocache"), "GOPROXY": "off", "CGO_ENABLED": "0"}
    started = time.monotonic()
    r = subprocess.run(["go", "build", "-o", str(binary), "pgxcheck"], cwd=gopath, env=env, capture_output=True,
                       text=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"building the pgx v4 check failed:\n{r.stdout}\n{r.stderr}", pytrace=False)
    print(f"built pgx v4 check in {time.monotonic() - started:.1f}s")
    return str(binary)


def _install_pg8000(workdir) -> str | tuple:
    """pip install pg8000 (and scramp, its SCRAM implementation) into the session's temp dir."""
    target = workdir / "pg8000"
    r = subprocess.run([PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
                        "--target", str(target), "pg8000>=1.29"], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        return ("skip", f"pip install pg8000 failed (needs python3-pip and PyPI): {(r.stderr or r.stdout)[-500:]}")
    return str(target)


def _tool_key(driver: str) -> str:
    return {"pgx-v4": "pgx", "pg8000": "pg8000"}.get(driver, driver)


def run_driver(driver: str, tools: dict, url: str, target: str, scope: str) -> tuple[dict, float]:
    """Run a driver program; return ({check name: (ok, detail)}, seconds)."""
    spec = DRIVERS[driver]
    prefix = f"drv_{driver.replace('-', '_')}_{target}_{uuid.uuid4().hex[:6]}"
    argv = spec.command(tools, url, prefix, scope)
    env = {**os.environ, **spec.env(tools)}
    started = time.monotonic()
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=env,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        pytest.fail(f"{driver} against {target} did not finish within {RUN_TIMEOUT}s; output so far:\n{out}",
                    pytrace=False)
    elapsed = time.monotonic() - started
    results = {}
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        item = json.loads(line)
        results[item["name"]] = (item["ok"], item["detail"])
    if r.returncode != 0 or not results:
        pytest.fail(f"{driver} against {target} exited {r.returncode}:\nstdout:\n{r.stdout[-6000:]}\n"
                    f"stderr:\n{r.stderr[-6000:]}", pytrace=False)
    if r.stderr.strip():
        print(f"{driver} stderr:\n{r.stderr[-3000:]}")
    return results, elapsed


@pytest.fixture(scope="session")
def direct_results(pg, driver_tools):
    """Per driver, its results straight against PostgreSQL (scope "all"), run once."""
    cache: dict[str, dict] = {}

    def get(driver: str) -> dict:
        if driver not in cache:
            tools = {_tool_key(driver): _tool(driver_tools, driver)}
            cache[driver], elapsed = run_driver(driver, tools, pg.database_url, "direct", "all")
            print(f"{driver} direct: {len(cache[driver])} checks in {elapsed:.1f}s")
        return cache[driver]

    return get


def _tool(driver_tools, driver: str) -> str:
    tool = driver_tools(_tool_key(driver))
    if isinstance(tool, tuple):
        _skip(tool[1])
    return tool


def _table(results: dict, expected: dict | None = None) -> str:
    lines = []
    for name, (ok, detail) in results.items():
        mark = "ok  " if ok else "FAIL"
        line = f"  {mark} {name}: {detail}"
        if expected is not None and name in expected and expected[name][1] != detail:
            line += f"\n       PostgreSQL: {expected[name][1]}"
        lines.append(line)
    return "\n".join(lines)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("driver", list(DRIVERS))
def test_driver_direct(driver, direct_results):
    """The checks themselves hold against PostgreSQL (so a proxy difference is the proxy's)."""
    results = direct_results(driver)
    print(_table(results))
    failed = [name for name, (ok, _) in results.items() if not ok]
    assert not failed, f"{driver} checks fail against PostgreSQL itself: {failed}\n{_table(results)}"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("driver", list(DRIVERS))
@pytest.mark.parametrize("mode", ["transaction", "session"])
def test_driver_through_proxy(driver, mode, pool64, driver_tools, direct_results, request):
    if mode == "transaction":
        pgbouncer_xfail(request, "PgBouncer 1.18 does not track protocol-level prepared statements in transaction "
                        "mode", strict=False)
    tools = {_tool_key(driver): _tool(driver_tools, driver)}
    expected_all = direct_results(driver)
    scope = "all" if mode == "session" else "common"
    expected = {k: v for k, v in expected_all.items() if scope == "all" or not k.startswith("session_")}
    proxy = pool64(mode, pool_size=2, query_wait_timeout=60)
    results, elapsed = run_driver(driver, tools, proxy.url, mode, scope)
    print(f"{driver} through {proxy.kind} ({mode} mode, pool size 2): {len(results)} checks in {elapsed:.1f}s\n"
          + _table(results, expected))

    missing = sorted(set(expected) - set(results))
    extra = sorted(set(results) - set(expected))
    known, failures = [], []
    for name, (ok, detail) in results.items():
        if name not in expected:
            continue
        if ok and detail == expected[name][1]:
            continue
        why = f"{name}: {'passes' if ok else 'FAILS'} with {detail!r}; PostgreSQL: {expected[name][1]!r}"
        if mode == "transaction" and name in KNOWN_POOL64_BUGS and proxy.kind == "pool64":
            known.append(f"{why}\n    known pool64 bug: {KNOWN_POOL64_BUGS[name]}")
        else:
            failures.append(why)
    passed = len(expected) - len(missing) - len(known) - len(failures)
    print(f"{driver} {mode}: {passed}/{len(expected)} checks equal to PostgreSQL, {len(known)} known pool64 bugs")
    assert not missing and not extra, f"{driver}: checks missing {missing}, unexpected {extra}"
    assert not failures, (f"{driver} through {proxy.kind} in {mode} mode differs from PostgreSQL:\n  "
                          + "\n  ".join(failures) + ("\nalso known pool64 bugs:\n  " + "\n  ".join(known)
                                                     if known else ""))
    if known:
        for line in known:
            print(f"KNOWN POOL64 BUG ({driver}, {mode} mode): {line}", file=sys.stderr)
        pytest.xfail(f"{driver}: {len(known)} check(s) hit known pool64 bugs: "
                     + "; ".join(k.split(':')[0] for k in known))
