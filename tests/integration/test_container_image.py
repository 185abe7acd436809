"""The container image (issue 19): docker/Dockerfile built with podman and run against the test PostgreSQL.

No image registry is reachable from the test machines, so docker/make-base-images makes both base images from
Debian packages with mmdebstrap (cached across runs), and the build stage mounts the host's Swift toolchain
(/opt/swift) and package mirror (/opt/swift-packages). The container runs with --network host: PostgreSQL listens
on the host's loopback only, and clients reach pool64 on [::1] and 127.0.0.1 directly.

When podman cannot build or run containers here, these tests fail and say why; they never skip.

Environment:
  POOL64_SWIFT_ROOT       toolchain mounted into the build stage (default /opt/swift)
  POOL64_SWIFT_PACKAGES   git mirror of the package's dependencies (default /opt/swift-packages)
  POOL64_PODMAN_RUNTIME   OCI runtime (default runc when installed: crun refuses this machine's hybrid cgroups)
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import harness

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD_BASE = "localhost/pool64-build-base:bookworm"
RUNTIME_BASE = "localhost/pool64-runtime-base:bookworm"
IMAGE = f"localhost/pool64:test-{os.getpid()}"
SWIFT_ROOT = os.environ.get("POOL64_SWIFT_ROOT", "/opt/swift")
SWIFT_PACKAGES = os.environ.get("POOL64_SWIFT_PACKAGES", "/opt/swift-packages")
UID = 6432
BASE_TIMEOUT = 1500   # mmdebstrap of both bases from a cold apt cache: ~3 min here
BUILD_TIMEOUT = 2400  # a clean release build: ~5 min on 2 idle cores, much more when the machine is busy
IMAGE_SIZE_LIMIT = 200 * 1000 * 1000
BAKED_HEALTHCHECK = ["/usr/local/bin/pool64", "--health-check",
                     "http://[::1]:9090/readyz", "http://127.0.0.1:9090/readyz"]

_containers: list[str] = []


def report(request, line: str) -> None:
    """A measured number, printed even when the test passes (-q hides passing output)."""
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if terminal is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            terminal.write_line(f"container image: {line}")


def find_key(tree, name: str):
    """The first value under a key spelled `name` in any case (podman's inspect output moved it between versions)."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key.lower() == name and value:
                return value
        for value in tree.values():
            found = find_key(value, name)
            if found:
                return found
    return None


def podman(*args: str, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    cmd = ["podman", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"timed out after {timeout}s: {' '.join(cmd)}\n{(e.stderr or b'')[-4000:]!r}")
    if check and proc.returncode != 0:
        raise AssertionError(f"podman failed ({proc.returncode}): {' '.join(cmd)}\n"
                             f"stdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}")
    return proc


def runtime_args() -> list[str]:
    """Flags every container (and every build step) needs here.

    runc, because crun rejects cgroup v1 with controllers also on the v2 hierarchy ("hybrid mode not supported").
    Explicit ulimits, because podman's defaults for root (nofile 1048576) exceed this machine's hard limits and
    root here lacks CAP_SYS_RESOURCE to raise them.
    """
    runtime = os.environ.get("POOL64_PODMAN_RUNTIME") or ("runc" if shutil.which("runc") else "")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
    args = ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", "nproc=4096:4096"]
    return (["--runtime", runtime] if runtime else []) + args


def fail_unusable(what: str, detail: str) -> None:
    pytest.fail(f"podman cannot {what} on this machine, so the container image is untested (not skipped): "
                f"{detail.strip()[-3000:]}\nscripts/test installs podman, buildah, mmdebstrap, runc, netavark, "
                f"iptables; see docker/README.md", pytrace=False)


@pytest.fixture(scope="module")
def image(request):
    """Base images (cached), then the pool64 image from docker/Dockerfile; the pool64 tag is removed afterwards."""
    if shutil.which("podman") is None:
        fail_unusable("run", "podman is not installed (apt-get install podman)")
    info = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=120)
    if info.returncode != 0:
        fail_unusable("run", f"`podman info` exited {info.returncode}: {info.stderr}")
    for path in (SWIFT_ROOT + "/usr/bin/swift", SWIFT_PACKAGES):
        if not os.path.exists(path):
            pytest.fail(f"{path} not found: the image build mounts the host toolchain and package mirror",
                        pytrace=False)

    started = time.monotonic()
    bases = subprocess.run([os.path.join(ROOT, "docker", "make-base-images")], capture_output=True, text=True,
                           timeout=BASE_TIMEOUT, stdin=subprocess.DEVNULL)
    if bases.returncode != 0:
        fail_unusable("build the base images", bases.stderr)
    report(request, f"base images ready in {time.monotonic() - started:.0f} s")

    smoke = podman("run", "--rm", *runtime_args(), "--network", "none", RUNTIME_BASE, "true", check=False)
    if smoke.returncode != 0:
        fail_unusable("run a container", smoke.stderr)

    started = time.monotonic()
    build = podman(
        "build", "--format", "docker", "--layers=false", *runtime_args(), "--network", "host",
        "-f", "docker/Dockerfile", "--ignorefile", "docker/Dockerfile.dockerignore",
        "--build-arg", f"BUILD_IMAGE={BUILD_BASE}", "--build-arg", f"RUNTIME_IMAGE={RUNTIME_BASE}",
        "-v", f"{SWIFT_ROOT}:/opt/swift:ro", "-v", f"{SWIFT_PACKAGES}:{SWIFT_PACKAGES}:ro",
        "--build-arg", "GIT_CONFIG_COUNT=1",
        "--build-arg", f"GIT_CONFIG_KEY_0=url.{SWIFT_PACKAGES.rstrip('/')}/.insteadOf",
        "--build-arg", "GIT_CONFIG_VALUE_0=https://github.com/",
        "-t", IMAGE, ".", timeout=BUILD_TIMEOUT, check=False, cwd=ROOT)
    build_seconds = time.monotonic() - started
    if build.returncode != 0:
        pytest.fail(f"podman build of docker/Dockerfile failed ({build.returncode}) after {build_seconds:.0f} s:\n"
                    f"{build.stdout[-8000:]}\n{build.stderr[-4000:]}", pytrace=False)
    report(request, f"podman build of docker/Dockerfile: {build_seconds:.0f} s")
    try:
        yield IMAGE
    finally:
        for name in list(_containers):
            podman("rm", "-f", "-t", "0", name, check=False)
            _containers.remove(name)
        podman("rmi", "-f", IMAGE, check=False)


class Container:
    """One pool64 container on the host network with its own listen and admin ports."""

    def __init__(self, image: str, pg: harness.PgServer, *pool64_args: str) -> None:
        self.name = f"pool64-test-{os.getpid()}-{len(_containers)}-{int(time.time() * 1000) % 100000}"
        self.port = harness.free_port()
        self.admin_port = harness.free_port()
        health = ["/usr/local/bin/pool64", "--health-check", f"http://[::1]:{self.admin_port}/readyz",
                  f"http://127.0.0.1:{self.admin_port}/readyz"]
        _containers.append(self.name)
        podman(
            "run", "-d", "--name", self.name, *runtime_args(), "--network", "host",
            # The image's HEALTHCHECK probes port 9090; on the host network that may be someone else's, so the
            # same probe is pointed at this container's admin port.
            "--health-cmd", json.dumps(health), "--health-interval", "0",
            "-e", f"DATABASE_URL={pg.database_url}", "-e", "POOL64_PROJECT=container-test",
            image, "--listen", f"[::]:{self.port}", "--admin-listen", f"[::]:{self.admin_port}",
            "--log-level", "info", *pool64_args)
        self.wait_ready()

    def get(self, path: str, host: str = "127.0.0.1") -> tuple[int, str]:
        url = f"http://{'[' + host + ']' if ':' in host else host}:{self.admin_port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def state(self) -> dict:
        return json.loads(podman("inspect", "--format", "{{json .State}}", self.name).stdout)

    def logs(self) -> str:
        proc = podman("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.state().get("Running"):
                raise AssertionError(f"container {self.name} exited early:\n{self.logs()[-6000:]}")
            try:
                if self.get("/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"/readyz never answered 200 within {timeout}s:\n{self.logs()[-6000:]}")

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)
        if self.name in _containers:
            _containers.remove(self.name)


@pytest.fixture
def container(image, pg):
    c = Container(image, pg)
    yield c
    c.remove()


def require_ipv6() -> None:
    if not harness.ipv6_loopback_available():
        pytest.fail("no IPv6 loopback (::1) on this machine; the container test needs it", pytrace=False)


@pytest.mark.timeout(300)
def test_image_is_small_non_root_and_keeps_its_healthcheck(image, request):
    config = json.loads(podman("image", "inspect", image).stdout)[0]
    size = int(config["Size"])
    report(request, f"runtime image {image}: {size / 1e6:.1f} MB")
    assert size < IMAGE_SIZE_LIMIT, f"runtime image is {size / 1e6:.1f} MB"
    assert config["Config"]["User"] == f"{UID}:{UID}"
    assert config["Config"]["Entrypoint"] == ["/usr/local/bin/pool64"]
    assert config["Config"].get("StopSignal") in ("SIGTERM", "15")
    assert {"6432/tcp", "9090/tcp"} <= set(config["Config"]["ExposedPorts"])
    # Docker format keeps HEALTHCHECK; it runs the binary itself (exec form: no shell, no curl).
    healthcheck = find_key(config, "healthcheck")
    assert healthcheck, f"no HEALTHCHECK in the image (built without --format docker?): {json.dumps(config)[:3000]}"
    assert healthcheck["Test"] == ["CMD", *BAKED_HEALTHCHECK], healthcheck
    probe = podman("run", "--rm", *runtime_args(), "--network", "none", "--entrypoint", "/bin/sh", image,
                   "-c", "id -u; id -g; command -v curl || echo no-curl; ldd /usr/local/bin/pool64")
    uid, gid, curl, *libraries = probe.stdout.splitlines()
    assert (uid, gid) == (str(UID), str(UID))
    assert curl == "no-curl"
    linked = "\n".join(libraries)
    assert "libpq.so.5" in linked and "not found" not in linked, linked
    assert "libswiftCore" not in linked, "the Swift standard library should be linked statically"


@pytest.mark.timeout(300)
def test_psql_through_the_container_over_ipv6_and_ipv4(container):
    require_ipv6()
    for host in ("::1", "127.0.0.1"):
        dsn = harness.dsn(host, container.port)
        out = harness.psql(dsn, sql="SELECT count(*) FROM pgbench_accounts").stdout.strip()
        assert out == "100000", (host, out)
        out = harness.psql(dsn, input="BEGIN;\nCREATE TEMP TABLE t (x int);\nINSERT INTO t VALUES (1), (2);\n"
                                      "SELECT sum(x) FROM t;\nCOMMIT;\n").stdout.split()
        assert "3" in out, (host, out)
        assert harness.psql_select1(dsn), host
    stats = json.loads(container.get("/stats", host="::1")[1])
    assert stats, "/stats answered over IPv6"
    assert container.state()["Running"]


@pytest.mark.timeout(300)
def test_readyz_and_the_health_check(container, image, pg):
    require_ipv6()
    for host in ("::1", "127.0.0.1"):
        status, body = container.get("/readyz", host=host)
        assert status == 200 and json.loads(body) == {"ready": True}, (host, status, body)
    # podman's own health check runs the probe inside the container (no systemd timer needed for a manual run).
    check = podman("healthcheck", "run", container.name, check=False)
    assert check.returncode == 0, f"podman healthcheck run: {check.returncode} {check.stdout} {check.stderr}"
    state = container.state()
    health = state.get("Health") or state.get("Healthcheck") or {}
    assert health.get("Status") == "healthy", state
    # The probe reads no configuration: no DATABASE_URL, no project, and a closed port fails it with 1.
    closed = harness.free_port()
    ok = podman("run", "--rm", *runtime_args(), "--network", "host", image,
                "--health-check", f"http://[::1]:{container.admin_port}/readyz", check=False)
    assert ok.returncode == 0, ok.stderr
    bad = podman("run", "--rm", *runtime_args(), "--network", "host", image,
                 "--health-check", f"http://[::1]:{closed}/readyz", f"http://127.0.0.1:{closed}/readyz", check=False)
    assert bad.returncode == 1, (bad.returncode, bad.stdout, bad.stderr)
    assert "refused" in bad.stderr.lower(), bad.stderr


@pytest.mark.timeout(300)
def test_sigterm_drains_and_exits_zero(image, pg):
    c = Container(image, pg, "--shutdown-timeout", "30")
    try:
        client = harness.WireClient("::1" if harness.ipv6_loopback_available() else "127.0.0.1", c.port)
        client.login()
        client.query("BEGIN")
        assert client.scalar("SELECT 41 + 1") == "42"
        podman("kill", "--signal", "TERM", c.name)
        # Draining: not ready any more, while the open transaction keeps running to its end.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and c.get("/readyz")[0] != 503:
            time.sleep(0.1)
        status, body = c.get("/readyz")
        assert status == 503 and "draining" in body, (status, body)
        assert client.scalar("SELECT 2") == "2"
        client.query("COMMIT")
        client.terminate()
        exit_code = podman("wait", c.name, timeout=60).stdout.strip()
        logs = c.logs()
        assert exit_code == "0", f"exit code {exit_code}:\n{logs[-6000:]}"
        assert "draining" in logs and "pool64 stopped" in logs, logs[-6000:]
        assert logs.index("draining") < logs.index("pool64 stopped")
        assert c.state()["ExitCode"] == 0
    finally:
        c.remove()
