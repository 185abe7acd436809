"""Fixtures for pool64's integration tests: a real PostgreSQL 15, the real pool64 binary
(or PgBouncer with POOL64_TEST_PROXY=pgbouncer), real clients.

Environment:
  POOL64_BIN              pool64 binary (default .build/debug/pool64 relative to the repo root)
  POOL64_TEST_PROXY       pool64 (default) or pgbouncer
  POOL64_TEST_LOG_LEVEL   --log-level given to pool64 (default debug)
  POOL64_TEST_TIMEOUT     per-test timeout in seconds (default 180)
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import harness  # noqa: E402

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PROXY_KIND = harness.PROXY_KIND
POOL64_BIN = os.path.abspath(os.path.join(REPO_ROOT, os.environ.get("POOL64_BIN", ".build/debug/pool64")))
POOL_MODES = ["transaction", "session"]

_live_proxies: list[harness.ProxyProcess] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "issue3: transaction-mode session-state isolation (issue 3)")
    config.addinivalue_line("markers", "timeout(seconds): per-test timeout enforced with SIGALRM")
    if PROXY_KIND not in ("pool64", "pgbouncer"):
        raise pytest.UsageError(f"POOL64_TEST_PROXY must be pool64 or pgbouncer, not {PROXY_KIND!r}")


def pytest_report_header(config):
    target = POOL64_BIN if PROXY_KIND == "pool64" else (shutil.which("pgbouncer") or "pgbouncer")
    return f"pool64 integration: proxy={PROXY_KIND} ({target})"


# ---------------------------------------------------------------------------------------------
# Per-test timeout and proxy logs on failure


@pytest.fixture(autouse=True)
def _test_timeout(request):
    marker = request.node.get_closest_marker("timeout")
    seconds = int(marker.args[0]) if marker else int(os.environ.get("POOL64_TEST_TIMEOUT", "180"))

    def on_alarm(signum, frame):
        raise TimeoutError(f"test exceeded its {seconds}s timeout")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(autouse=True)
def _proxy_log_offsets(request):
    request.node._proxy_log_offsets = {id(p): p.log_size() for p in _live_proxies}
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when in ("call", "setup") and report.failed:
        offsets = getattr(item, "_proxy_log_offsets", {})
        for proxy in list(_live_proxies):
            text = proxy.log_text(offsets.get(id(proxy), 0))
            status = "running" if proxy.alive() else f"exited with {proxy.proc.returncode}"
            report.sections.append(
                (f"{proxy.kind} log ({proxy.mode} mode, port {proxy.port}, {status}, {proxy.log_path})", text))


# ---------------------------------------------------------------------------------------------
# PostgreSQL


@pytest.fixture(scope="session")
def pg():
    """A throwaway PostgreSQL 15 with role app/app-secret, database appdb and pgbench tables.
    pg.stop()/pg.start()/pg.stopped() control it mid-test."""
    server = harness.PgServer()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


# ---------------------------------------------------------------------------------------------
# Proxies


class ProxyFactory:
    def __init__(self, pg: harness.PgServer):
        self.pg = pg
        self.started: list[harness.ProxyProcess] = []

    def __call__(self, mode: str = "transaction", extra_args: list[str] | None = None,
                 **options) -> harness.ProxyProcess:
        """Start a proxy in front of `pg`; options: pool_size, query_wait_timeout, client_login_timeout,
        max_client_conn, ... (see harness.PROXY_OPTION_FLAGS)."""
        workdir = tempfile.mkdtemp(prefix=f"pool64-{PROXY_KIND}-{mode}-")
        extra_args = list(extra_args or [])
        try:
            if PROXY_KIND == "pgbouncer":
                unknown = [k for k in options if k not in harness.PGBOUNCER_OPTIONS and k != "log_level"]
                if unknown or extra_args:
                    pytest.skip(f"options {unknown + extra_args} have no PgBouncer equivalent")
                proxy = harness.start_pgbouncer(self.pg, mode, workdir, extra_args, options)
            else:
                if not os.path.exists(POOL64_BIN):
                    pytest.fail(f"pool64 binary not found at {POOL64_BIN} (build it or set POOL64_BIN)",
                                pytrace=False)
                proxy = harness.start_pool64(POOL64_BIN, self.pg, mode, workdir, extra_args, options)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        self.started.append(proxy)
        _live_proxies.append(proxy)
        return proxy

    def stop_all(self) -> None:
        for proxy in self.started:
            proxy.stop()
            if proxy in _live_proxies:
                _live_proxies.remove(proxy)
            shutil.rmtree(proxy.workdir, ignore_errors=True)
        self.started.clear()


@pytest.fixture
def pool64(pg):
    """Factory: pool64(mode="transaction", pool_size=2, extra_args=[...]) starts a dedicated proxy
    for this test and stops it (SIGTERM, then SIGKILL after 10 s) at teardown."""
    factory = ProxyFactory(pg)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def _shared_proxies(pg):
    factory = ProxyFactory(pg)
    proxies: dict[str, harness.ProxyProcess] = {}

    def get(mode: str) -> harness.ProxyProcess:
        proxy = proxies.get(mode)
        if proxy is None or not proxy.alive():
            proxies[mode] = proxy = factory(mode)
        return proxy

    yield get
    factory.stop_all()


@pytest.fixture(params=POOL_MODES)
def pool_mode(request):
    return request.param


@pytest.fixture
def proxy(_shared_proxies, pool_mode):
    """The shared proxy for this pool mode (default settings, pool size 20)."""
    return _shared_proxies(pool_mode)
