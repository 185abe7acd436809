"""deploy/kubernetes renders with `kubectl kustomize` and says what docs/DEPLOY.md says it does.

No cluster runs on the test machines, so nothing is applied: each kustomization (the base and every overlay) is
rendered with `kubectl kustomize` (no cluster needed), parsed with PyYAML, checked property by property, and
validated against the Kubernetes 1.30 and newest OpenAPI schemas in strict mode (unknown fields are errors) with
kubernetes-validate, installed from PyPI into the session's temp dir (that check is skipped, with the reason, when
pip cannot get it). `kubectl apply --dry-run=client` is not used: it needs an API server to map kinds.

kubectl: the machine's own, 1.27 or later (kustomize v5, as docs/DEPLOY.md asks; the machine image's Google Cloud CLI
ships one). A missing kubectl fails the tests rather than skipping them. Debian 12's kubernetes-client is no help: it
is kubectl 1.20, whose kustomize v2.0.3 knows neither `components:` nor `labels:`.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if (p / "kustomization.yaml").is_file())
TARGETS = ["base"] + [f"overlays/{name}" for name in OVERLAYS]
LISTEN_PORT = 6432
ADMIN_PORT = 9090
# Kubernetes versions the rendered objects must validate against: 1.30 is the oldest with the preStop sleep action
# on by default; the newest one kubernetes-validate knows is added at run time.
OLDEST_KUBERNETES = "1.30.0"
# /readyz gives a fresh dial this long (docs/OPERATIONS.md, "Probes").
READYZ_DIAL_SECONDS = 3


# ---- pool64's own settings, read from the source ------------------------------------------------------------------


@functools.cache
def configuration_source() -> str:
    return (ROOT / "Sources" / "Pool64Core" / "Config" / "Configuration.swift").read_text()


@functools.cache
def setting_keys() -> frozenset[str]:
    """The keys of `Configuration.keys` (`pool-size`, ...), parsed from Configuration.swift."""
    table = re.search(r"static let keys\s*:[^=]*=\s*\[(.*?)\n\s*\]", configuration_source(), re.S)
    assert table, "Configuration.keys not found in Configuration.swift"
    keys = frozenset(re.findall(r'^\s*\("([a-z0-9-]+)",', table.group(1), re.M))
    assert {"pool-size", "ip-policy", "shutdown-timeout", "database-url"} <= keys, keys
    return keys


def env_name(key: str) -> str:
    return "POOL64_" + key.upper().replace("-", "_")


def key_of(env: str) -> str | None:
    if env == "DATABASE_URL":
        return "database-url"
    if env.startswith("POOL64_"):
        key = env[len("POOL64_"):].lower().replace("_", "-")
        return key if key in setting_keys() else None
    return None


def allowed_values(key: str) -> list[str]:
    """The values `case "key":` in Configuration.swift accepts: its literal list (`["ipv6-first", "ipv4",
    "ipv6-only"].contains(value)`, `let levels = [...]`) or the raw values of the enum it builds."""
    source = configuration_source()
    case = re.search(rf'case "{re.escape(key)}":(.*?)(?=\n\s*case "|\n\s*default:)', source, re.S)
    assert case, f"no case for {key} in Configuration.swift"
    listed = re.search(r'\[((?:\s*"[^"]+",?)+)\s*\]', case.group(1))
    if listed:
        return re.findall(r'"([^"]+)"', listed.group(1))
    enum = re.search(r"(\w+)\(rawValue:", case.group(1))
    assert enum, f"cannot tell the values of {key}"
    body = re.search(rf"enum {enum.group(1)}\b[^{{]*\{{(.*?)\n    \}}", source, re.S).group(1)
    body = "\n".join(line for line in body.splitlines() if not line.strip().startswith("//"))
    out = []
    for cases in re.findall(r"^\s*case (.+)$", body, re.M):
        for item in cases.split(","):
            name, _, raw = item.partition("=")
            out.append(raw.strip().strip('"') if raw else name.strip())
    return out


def seconds(value: str) -> float:
    """pool64's duration syntax: `30`, `2.5`, `30s`, `250ms`."""
    value = value.strip()
    if value.endswith("ms"):
        return float(value[:-2]) / 1000
    return float(value.removesuffix("s"))


def quantity(value: str | int) -> float:
    """A Kubernetes quantity in base units (bytes, cores)."""
    text = str(value)
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9, "m": 1e-3}
    for suffix, scale in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


# ---- rendering ----------------------------------------------------------------------------------------------------


@functools.cache
def kubectl() -> str:
    path = shutil.which("kubectl")
    if not path:
        pytest.fail(
            "kubectl not found: these tests render deploy/kubernetes with `kubectl kustomize` (kubectl 1.27+; "
            "Debian 12's kubernetes-client 1.20 is too old for components: and labels:)",
            pytrace=False,
        )
    return path


@functools.cache
def kubectl_version() -> str:
    r = subprocess.run([kubectl(), "version", "--client"], capture_output=True, text=True, timeout=60)
    return (r.stdout + r.stderr).strip()


@functools.cache
def rendered(target: str) -> tuple[dict, ...]:
    r = subprocess.run(
        [kubectl(), "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    if r.returncode != 0:
        pytest.fail(f"kubectl kustomize {target} failed ({kubectl_version()}):\n{r.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(r.stdout) if doc)


def stderr_of(target: str) -> str:
    r = subprocess.run(
        [kubectl(), "kustomize", str(K8S / target)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    return r.stderr


def one(docs, kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(docs) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs) -> dict:
    containers = pod_spec(docs)["containers"]
    assert [c["name"] for c in containers] == ["pool64"]
    return containers[0]


def pod_labels(docs) -> dict:
    return one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]


def config(docs) -> dict:
    return one(docs, "ConfigMap")["data"]


def named_port(c: dict, port) -> int:
    if isinstance(port, int):
        return port
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert port in ports, f"port {port!r} is not a container port"
    return ports[port]


def project_of(target: str) -> str:
    return "default" if target == "base" else target.split("/", 1)[1]


# ---- every kustomization ------------------------------------------------------------------------------------------


def test_there_are_overlays_for_two_projects():
    assert {"alpha", "beta"} <= set(OVERLAYS)


@pytest.mark.parametrize("target", TARGETS)
def test_renders_without_deprecation_warnings(target):
    docs = rendered(target)
    assert sorted(d["kind"] for d in docs) == ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]
    # No Secret is rendered: DATABASE_URL is never committed.
    assert "deprecated" not in stderr_of(target).lower(), stderr_of(target)


@pytest.mark.parametrize("target", TARGETS)
def test_names_and_project_label(target):
    docs = rendered(target)
    project = project_of(target)
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.get("pool64/project") == project, doc["metadata"]["name"]
        assert labels.get("app.kubernetes.io/name") == "pool64"
        if target != "base":
            assert project in doc["metadata"]["name"], doc["metadata"]["name"]
    assert pod_labels(docs)["pool64/project"] == project


@pytest.mark.parametrize("target", TARGETS)
def test_service_is_postgres_port_only_and_dual_stack(target):
    docs = rendered(target)
    services = [d for d in docs if d["kind"] == "Service"]
    assert len(services) == 1, "one Service, for PostgreSQL; the admin port has none"
    spec = services[0]["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    assert spec["ipFamilyPolicy"] == "PreferDualStack"
    assert [p["port"] for p in spec["ports"]] == [LISTEN_PORT]
    assert named_port(container(docs), spec["ports"][0]["targetPort"]) == LISTEN_PORT
    assert spec["ports"][0].get("protocol", "TCP") == "TCP"
    labels = pod_labels(docs)
    assert spec["selector"].items() <= labels.items()
    assert spec["selector"]["pool64/project"] == project_of(target)


def test_ip_families_ipv6_first_only_where_the_overlay_asks():
    # The API server rejects a Service naming a family the cluster lacks, so the base leaves the order alone.
    assert "ipFamilies" not in one(rendered("base"), "Service")["spec"]
    assert one(rendered("overlays/alpha"), "Service")["spec"]["ipFamilies"] == ["IPv6", "IPv4"]
    assert "ipFamilies" not in one(rendered("overlays/beta"), "Service")["spec"]


@pytest.mark.parametrize("target", TARGETS)
def test_probes_and_ports_agree_with_the_listen_settings(target):
    docs = rendered(target)
    c = container(docs)
    settings = config(docs)
    assert settings["POOL64_LISTEN"] == f"[::]:{LISTEN_PORT}"
    assert settings["POOL64_ADMIN_LISTEN"] == f"[::]:{ADMIN_PORT}"
    assert {p["containerPort"] for p in c["ports"]} == {LISTEN_PORT, ADMIN_PORT}
    ready, live = c["readinessProbe"], c["livenessProbe"]
    assert ready["httpGet"]["path"] == "/readyz"
    assert live["httpGet"]["path"] == "/healthz"
    assert named_port(c, ready["httpGet"]["port"]) == ADMIN_PORT
    assert named_port(c, live["httpGet"]["port"]) == ADMIN_PORT
    # /readyz may spend its whole dial budget before answering.
    assert ready["timeoutSeconds"] > READYZ_DIAL_SECONDS
    assert live["timeoutSeconds"] >= 1 and live["failureThreshold"] >= 3
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == ADMIN_PORT
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("target", TARGETS)
def test_every_environment_variable_is_a_pool64_setting_with_a_valid_value(target):
    docs = rendered(target)
    c = container(docs)
    settings = config(docs)
    names = list(settings) + [e["name"] for e in c.get("env", [])]
    unknown = [n for n in names if key_of(n) is None]
    assert not unknown, f"not pool64 settings (Configuration.keys): {unknown}"
    assert len(names) == len(set(names)), "a setting set twice"
    for name, value in settings.items():
        key = key_of(name)
        if key in ("pool-mode", "ip-policy", "log-format", "log-level", "auth-type"):
            assert value in allowed_values(key), (name, value, allowed_values(key))
        if key in ("pool-size", "min-pool-size", "max-client-conn", "max-message-size", "max-prepared-statements"):
            assert int(value) >= 1, (name, value)
        if key in ("shutdown-timeout", "query-wait-timeout", "server-lifetime", "server-idle-timeout"):
            assert seconds(value) >= 0, (name, value)
    assert [e["configMapRef"]["name"] for e in c["envFrom"]] == [one(docs, "ConfigMap")["metadata"]["name"]]


@pytest.mark.parametrize("target", TARGETS)
def test_project_comes_from_the_label_and_secrets_from_secret_refs(target):
    docs = rendered(target)
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["POOL64_PROJECT"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['pool64/project']"
    db = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert db["key"] == "DATABASE_URL" and not db.get("optional", False)
    token = env["POOL64_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["optional"] is True
    if target != "base":
        project = project_of(target)
        assert db["name"] == f"pool64-{project}-database"
        assert token["name"] == f"pool64-{project}-admin"
    assert "DATABASE_URL" not in config(docs)


@pytest.mark.parametrize("target", TARGETS)
def test_no_service_links_no_api_token(target):
    spec = pod_spec(rendered(target))
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("target", TARGETS)
def test_security_context(target):
    docs = rendered(target)
    pod = pod_spec(docs)["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert isinstance(pod["runAsUser"], int) and pod["runAsUser"] != 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container(docs)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    assert sc.get("privileged", False) is False
    # The numeric user is the image's user (docker/Dockerfile), when the Dockerfile names one by number.
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    uid = re.search(r"--uid\s+(\d+)", dockerfile) or re.search(r"(?m)^USER\s+(\d+)", dockerfile)
    if uid:
        assert pod["runAsUser"] == int(uid.group(1))


@pytest.mark.parametrize("target", TARGETS)
def test_termination_leaves_time_for_endpoints_then_the_drain(target):
    docs = rendered(target)
    c = container(docs)
    sleep = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = seconds(config(docs)["POOL64_SHUTDOWN_TIMEOUT"])
    grace = pod_spec(docs)["terminationGracePeriodSeconds"]
    assert 5 <= sleep <= 30, "long enough for endpoint removal to reach kube-proxy and load balancers"
    # pool64 exits within shutdown-timeout of SIGTERM plus a moment; the grace period also covers the preStop.
    assert grace >= sleep + drain + 5, (grace, sleep, drain)
    assert grace <= sleep + drain + 60, "a grace period far past the drain only delays a stuck pod's kill"


@pytest.mark.parametrize("target", TARGETS)
def test_resources_sized_from_the_benchmark(target):
    docs = rendered(target)
    res = container(docs)["resources"]
    requests, limits = res["requests"], res["limits"]
    # docs/PERFORMANCE.md: ~39 MB RSS under load, +0.9 KiB per idle client (max-client-conn of them).
    clients = int(config(docs)["POOL64_MAX_CLIENT_CONN"])
    needed = 40 * 2**20 + clients * 0.9 * 2**10
    assert quantity(requests["memory"]) >= needed, (requests["memory"], needed)
    assert quantity(limits["memory"]) >= quantity(requests["memory"])
    # One message of max-message-size is held whole: it must fit beside the steady state.
    assert int(config(docs)["POOL64_MAX_MESSAGE_SIZE"]) <= quantity(limits["memory"]) / 2
    assert 0.1 <= quantity(requests["cpu"]) <= 2
    assert "cpu" not in limits, "no CPU limit (throttling stalls every client); see deployment.yaml"


@pytest.mark.parametrize("target", TARGETS)
def test_rollout_and_spread(target):
    docs = rendered(target)
    deployment = one(docs, "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["strategy"]["rollingUpdate"]["maxSurge"] >= 1
    labels = pod_labels(docs)
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    constraints = pod_spec(docs)["topologySpreadConstraints"]
    assert {c["topologyKey"] for c in constraints} >= {"kubernetes.io/hostname", "topology.kubernetes.io/zone"}
    for c in constraints:
        assert c["labelSelector"]["matchLabels"].items() <= labels.items()
        assert c["labelSelector"]["matchLabels"]["pool64/project"] == project_of(target)


@pytest.mark.parametrize("target", TARGETS)
def test_pod_disruption_budget_covers_the_pods_and_allows_drains(target):
    docs = rendered(target)
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    selector = one(docs, "Deployment")["spec"]["selector"]["matchLabels"]
    assert pdb["selector"]["matchLabels"] == selector
    assert pdb["selector"]["matchLabels"].items() <= pod_labels(docs).items()
    replicas = one(docs, "Deployment")["spec"]["replicas"]
    assert pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable", replicas) < replicas
    assert pdb["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


# ---- the overlays side by side ------------------------------------------------------------------------------------


def test_overlays_share_nothing():
    names, selectors, secrets = set(), [], set()
    for name in OVERLAYS:
        docs = rendered(f"overlays/{name}")
        for doc in docs:
            key = (doc["kind"], doc["metadata"]["name"])
            assert key not in names, key
            names.add(key)
        selectors.append(one(docs, "Service")["spec"]["selector"])
        env = {e["name"]: e for e in container(docs)["env"]}
        secret = env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"]
        assert secret not in secrets
        secrets.add(secret)
    # No pod can match two projects' selectors: they differ in pool64/project.
    assert len({s["pool64/project"] for s in selectors}) == len(OVERLAYS)


def test_alpha_stamps_out_pool_size_and_ipv6_first():
    settings = config(rendered("overlays/alpha"))
    assert settings["POOL64_POOL_SIZE"] == "40"
    assert settings["POOL64_IP_POLICY"] == "ipv6-first"


def test_beta_shows_the_ipv4_rollback_switch():
    settings = config(rendered("overlays/beta"))
    assert settings["POOL64_IP_POLICY"] == "ipv4"
    assert settings["POOL64_POOL_SIZE"] == config(rendered("base"))["POOL64_POOL_SIZE"]


def test_changing_the_ip_policy_renames_the_config_map(tmp_path):
    """The rollout mechanism docs/DEPLOY.md describes: a changed setting gives a new ConfigMap name, so the pod
    template changes and the Deployment rolls; the old ConfigMap stays for `kubectl rollout undo`."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(K8S, copy)
    kustomization = copy / "overlays" / "alpha" / "kustomization.yaml"
    text = kustomization.read_text()
    assert "POOL64_IP_POLICY=ipv6-first" in text
    kustomization.write_text(text.replace("POOL64_IP_POLICY=ipv6-first", "POOL64_IP_POLICY=ipv4"))
    r = subprocess.run([kubectl(), "kustomize", str(copy / "overlays" / "alpha")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    toggled = [d for d in yaml.safe_load_all(r.stdout) if d]
    before, after = one(rendered("overlays/alpha"), "ConfigMap"), one(toggled, "ConfigMap")
    assert after["data"]["POOL64_IP_POLICY"] == "ipv4"
    assert before["metadata"]["name"] != after["metadata"]["name"]
    assert container(toggled)["envFrom"][0]["configMapRef"]["name"] == after["metadata"]["name"]


def test_stamping_out_a_project_as_the_guide_says(tmp_path):
    """docs/DEPLOY.md, "Stamping out another project": copy overlays/alpha, replace alpha by the new name, render."""
    copy = tmp_path / "kubernetes"
    shutil.copytree(K8S, copy)
    shutil.copytree(copy / "overlays" / "alpha", copy / "overlays" / "gamma")
    for path in (copy / "overlays" / "gamma").glob("*.yaml"):  # sed -i 's/alpha/gamma/g' .../gamma/*.yaml
        path.write_text(path.read_text().replace("alpha", "gamma"))
    r = subprocess.run([kubectl(), "kustomize", str(copy / "overlays" / "gamma")], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    assert {d["metadata"]["name"] for d in docs if d["kind"] != "ConfigMap"} == {"pool64-gamma"}
    assert one(docs, "ConfigMap")["metadata"]["name"].startswith("pool64-config-gamma-")
    assert pod_labels(docs)["pool64/project"] == "gamma"
    assert one(docs, "Service")["spec"]["selector"]["pool64/project"] == "gamma"
    env = {e["name"]: e for e in container(docs)["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == "pool64-gamma-database"
    assert env["POOL64_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "pool64-gamma-admin"
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert "sed -i 's/alpha/gamma/g' deploy/kubernetes/overlays/gamma/*.yaml" in guide


# ---- schemas ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kubernetes_validate(tmp_path_factory):
    target = tmp_path_factory.mktemp("kubernetes-validate")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-input",
         "--target", str(target), "kubernetes-validate>=1.30,<2"],
        capture_output=True, text=True, timeout=300,
    )
    if r.returncode != 0:
        pytest.skip(f"pip install kubernetes-validate failed (needs python3-pip and PyPI); structural checks above "
                    f"still ran: {(r.stderr or r.stdout)[-400:]}")
    return SchemaChecker(target)


class SchemaChecker:
    """kubernetes-validate run in its own interpreter with only its own packages first on the path: imported into
    pytest's process, its jsonschema met the system's older `attr` module that pytest had already loaded
    (ImportError: cannot import name 'Converter')."""

    SCRIPT = """
import json, sys
import kubernetes_validate as kv
request = json.load(sys.stdin)
if request["op"] == "latest":
    print(json.dumps(kv.latest_version()))
else:
    errors = []
    for doc in request["docs"]:
        try:
            kv.validate(doc, request["version"], strict=True)
        except kv.ValidationError as e:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {e.message} at {'.'.join(map(str, e.path))}")
    print(json.dumps(errors))
"""

    def __init__(self, target) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(target), "PYTHONNOUSERSITE": "1"}

    def _run(self, request: dict):
        r = subprocess.run([sys.executable, "-s", "-c", self.SCRIPT], input=json.dumps(request),
                           capture_output=True, text=True, timeout=300, env=self.env)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout)

    def latest_version(self) -> str:
        return self._run({"op": "latest"})

    def errors(self, docs: list, version: str) -> list[str]:
        return self._run({"op": "validate", "docs": docs, "version": version})


@pytest.mark.parametrize("target", TARGETS)
def test_objects_validate_against_kubernetes_schemas_strictly(target, kubernetes_validate):
    checker = kubernetes_validate
    for version in sorted({OLDEST_KUBERNETES, checker.latest_version()}):
        errors = checker.errors(list(rendered(target)), version)
        assert not errors, f"against Kubernetes {version}: {errors}"


def test_schema_check_catches_a_misspelt_field(kubernetes_validate):
    """The strict check is not a no-op: a misspelt field inside the preStop action fails it."""
    deployment = yaml.safe_load(yaml.safe_dump(one(rendered("overlays/alpha"), "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]["sleep"] = {"secondz": 10}
    assert kubernetes_validate.errors([deployment], OLDEST_KUBERNETES)


# ---- the guide ----------------------------------------------------------------------------------------------------


def test_deploy_guide_names_only_paths_that_exist():
    guide = (ROOT / "docs" / "DEPLOY.md").read_text()
    # overlays/gamma is the guide's example of a new project, made by its own commands.
    paths = {p for p in re.findall(r"(deploy/kubernetes/[\w./-]*\w)", guide) if "/overlays/gamma" not in p}
    assert paths, "docs/DEPLOY.md should show the kustomize paths"
    missing = [p for p in sorted(paths) if not (ROOT / p).exists()]
    assert not missing, missing
    # The old single-file manifest is gone, and nothing points at it.
    assert not (ROOT / "docker" / "k8s.yaml").exists()
    for doc in [ROOT / "README.md", ROOT / "docker" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        assert "k8s.yaml" not in doc.read_text(), doc
