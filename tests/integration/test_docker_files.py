"""Static checks of docker/: the Dockerfile and compose.yaml agree with pool64's defaults.
(The Kubernetes manifests are in deploy/kubernetes, checked by test_kubernetes.py.)

These files are only parsed here; tests/integration/test_container_image.py builds and runs the image with podman.
Needs PyYAML (Debian package python3-yaml).
"""

import ipaddress
import json
import pathlib
import re

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
LISTEN_PORT = 6432
ADMIN_PORT = 9090


def load_compose():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def pool64_services(compose):
    return {name: svc for name, svc in compose["services"].items() if name.startswith("pool64")}


def env_of(service):
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return env


def flag(args, name):
    if name in args:
        return args[args.index(name) + 1]
    return None


def runtime_stage(dockerfile_text):
    stages = re.split(r"(?im)^FROM\s", dockerfile_text)
    return stages[-1]


# ---- Dockerfile ---------------------------------------------------------------------------------------------------


def build_args(dockerfile_text):
    """ARG defaults declared before the first FROM (the base images)."""
    head = re.split(r"(?im)^FROM\s", dockerfile_text)[0]
    return dict(re.findall(r"(?im)^ARG\s+(\w+)=(\S+)", head))


def test_dockerfile_is_multi_stage_and_builds_static_release():
    text = (DOCKER / "Dockerfile").read_text()
    froms = re.findall(r"(?im)^FROM\s+(\S+)", text)
    assert len(froms) >= 2
    # Base images are build arguments: Docker Hub's by default, local mmdebstrap ones (docker/make-base-images)
    # where no registry is reachable.
    assert froms[0] == "${BUILD_IMAGE}" and froms[-1] == "${RUNTIME_IMAGE}"
    args = build_args(text)
    # The package's dependencies need Swift tools 6.2.
    assert args["BUILD_IMAGE"] == "swift:6.2-bookworm"
    assert args["RUNTIME_IMAGE"] == "debian:bookworm-slim"
    assert "libpq-dev" in text
    assert "/opt/swift/usr/bin" in text, "a mounted host toolchain must be on PATH in the build stage"
    # Built through the same script as the demo and the benchmark.
    assert re.search(r"RUN scripts/build-release /out --static-swift-stdlib", text)
    script = (ROOT / "scripts" / "build-release").read_text()
    assert "-c release --product pool64" in script and "swift build" in script
    base_script = (DOCKER / "make-base-images").read_text()
    assert "mmdebstrap" in base_script and "localhost/pool64-build-base:bookworm" in base_script
    assert "localhost/pool64-runtime-base:bookworm" in base_script


def test_dockerignore_keeps_build_directories_out():
    ignored = (DOCKER / "Dockerfile.dockerignore").read_text().split()
    assert ".build*" in ignored, "other checkouts' .build-* directories hold gigabytes"
    assert "Package.resolved" in ignored


def test_dockerfile_runtime_installs_libpq5_and_runs_as_non_root():
    runtime = runtime_stage((DOCKER / "Dockerfile").read_text())
    assert re.search(r"for p in[^\n]*\blibpq5\b", runtime)
    assert "ca-certificates" in runtime
    assert "curl" not in runtime.replace("no curl", ""), "the health probe is the pool64 binary, not curl"
    assert re.search(r"useradd[^\n]*--uid 6432", runtime)
    users = re.findall(r"(?im)^USER\s+(\S+)", runtime)
    assert users, "runtime stage must set USER"
    assert users[-1] == "6432:6432"
    assert re.search(r"(?im)^STOPSIGNAL\s+SIGTERM\s*$", runtime)
    assert re.search(r'(?im)^ENTRYPOINT\s+\["/usr/local/bin/pool64"\]', runtime)


def test_dockerfile_exposes_ports_and_healthchecks_readyz():
    runtime = runtime_stage((DOCKER / "Dockerfile").read_text())
    exposed = re.search(r"(?im)^EXPOSE\s+(.+)$", runtime)
    assert exposed and {str(LISTEN_PORT), str(ADMIN_PORT)} <= set(exposed.group(1).split())
    healthcheck = re.search(r"(?ims)^HEALTHCHECK\b.*?CMD\s+(.+?)(?:\n\S|\Z)", runtime)
    assert healthcheck, "runtime stage must have a HEALTHCHECK"
    # Exec form running the binary's own probe: no shell, no curl in the image.
    probe = json.loads(healthcheck.group(1).strip())
    assert probe == ["/usr/local/bin/pool64", "--health-check",
                     f"http://[::1]:{ADMIN_PORT}/readyz", f"http://127.0.0.1:{ADMIN_PORT}/readyz"]


# ---- compose.yaml -------------------------------------------------------------------------------------------------


def test_compose_network_is_ipv6_with_own_ula_subnet():
    compose = load_compose()
    networks = compose["networks"]
    assert any(net.get("enable_ipv6") is True for net in networks.values())
    for net in networks.values():
        if not net.get("enable_ipv6"):
            continue
        v6 = [
            ipaddress.ip_network(cfg["subnet"])
            for cfg in net["ipam"]["config"]
            if ipaddress.ip_network(cfg["subnet"]).version == 6
        ]
        assert v6, "an IPv6 network needs an IPv6 subnet"
        for subnet in v6:
            assert subnet.subnet_of(ipaddress.ip_network("fd00::/8"))
            assert subnet != ipaddress.ip_network("fd00::/64")


def test_compose_has_postgres_15_and_two_projects():
    compose = load_compose()
    assert compose["services"]["postgres"]["image"].startswith("postgres:15")
    services = pool64_services(compose)
    assert len(services) == 2
    projects = []
    for svc in services.values():
        args = svc.get("command", [])
        projects.append(flag(args, "--project") or env_of(svc).get("POOL64_PROJECT"))
    assert sorted(projects) == ["alpha", "beta"]


def test_compose_each_pool64_has_its_own_database_url_and_project():
    services = pool64_services(load_compose())
    urls = set()
    for name, svc in services.items():
        env = env_of(svc)
        assert env.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")), name
        urls.add(env["DATABASE_URL"])
        project = flag(svc.get("command", []), "--project")
        assert env.get("POOL64_PROJECT") in (None, project), name
        assert project in env["DATABASE_URL"], name
    assert len(urls) == len(services)


def test_compose_ports_and_healthchecks_use_defaults():
    services = pool64_services(load_compose())
    published = []
    for name, svc in services.items():
        args = svc.get("command", [])
        assert flag(args, "--listen") in (None, f"[::]:{LISTEN_PORT}")
        assert flag(args, "--admin-listen") in (None, f"[::]:{ADMIN_PORT}")
        targets = {int(str(p).rsplit(":", 1)[1]) for p in svc["ports"]}
        assert targets == {LISTEN_PORT, ADMIN_PORT}, name
        published += [str(p).rsplit(":", 1)[0] for p in svc["ports"]]
        test = svc["healthcheck"]["test"]
        test = " ".join(test) if isinstance(test, list) else test
        assert f":{ADMIN_PORT}/readyz" in test, name
    assert len(published) == len(set(published)), "host ports must not collide"
