"""Invariants of the Kubernetes deployment in deploy/k8s (DESIGN.md §4).

Each check runs on two renderings of every overlay:

- ``source``: the resource files the kustomizations list, read as written
  (no patches, no generators). Needs only PyYAML, so it always runs.
- ``kustomize``: the real ``kustomize build`` output, which is what gets
  applied. It also proves the overlays build, that every Secret/ConfigMap
  reference resolves, and that patches did not undo the hardening. It needs
  ``kustomize`` or ``kubectl`` (which embeds it; the machine image ships
  kubectl): without either these tests fail, they are never skipped.

Every rendered object is also validated offline against the Kubernetes
OpenAPI schemas of ``kubernetes-validate`` (dev extra); the last tests feed a
deliberately broken copy of the tree and check that the same checks fail.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Typed as Any through importorskip: PyYAML ships no type stubs.
yaml: Any = pytest.importorskip("yaml", reason="PyYAML is needed to read deploy/k8s")

Doc = dict[str, Any]

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
OVERLAYS = {"dev": "depot-dev", "prod": "depot"}  # overlay -> namespace
# The fixed contract of the three services: Deployment/Service name -> gRPC port.
SERVICES = {"metadata": 50051, "manifest": 50052, "gc": 50053}
# Secrets prod expects to exist already, with the keys the pods read.
EXTERNAL_SECRETS = {
    "depot-database": {"url"},
    "depot-manifest-database": {"url"},
    "depot-internal": {"secret"},
    "depot-s3": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},
    "depot-tls": {"tls.crt", "tls.key", "ca.crt"},
}
# Variables pointing at the PEM files each prod service reads (tls.py).
TLS_FILES = {"DEPOT_TLS_CERT": "tls.crt", "DEPOT_TLS_KEY": "tls.key", "DEPOT_TLS_CA": "ca.crt"}
# Kinds kustomize must not put in a namespace.
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------


def load_docs(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def kustomization(directory: Path) -> Doc:
    docs = load_docs(directory / "kustomization.yaml")
    assert len(docs) == 1, directory
    return docs[0]


def referenced_files(directory: Path) -> Iterator[Path]:
    """Every local path a kustomization names (resources, patches, ...)."""
    kust = kustomization(directory)
    for entry in kust.get("resources", []) + kust.get("components", []):
        yield directory / entry
    for entry in kust.get("patchesStrategicMerge", []) + kust.get("configurations", []):
        yield directory / entry
    for patch in kust.get("patches", []):
        if "path" in patch:
            yield directory / patch["path"]
    for generator in kust.get("configMapGenerator", []) + kust.get("secretGenerator", []):
        for entry in generator.get("files", []) + generator.get("envs", []):
            # "key=path" renames the key; the file is the part after "=".
            yield directory / entry.rpartition("=")[2]


def source_docs(directory: Path) -> list[Doc]:
    """The resources of a kustomization, followed recursively, unpatched."""
    docs: list[Doc] = []
    for entry in kustomization(directory).get("resources", []):
        path = (directory / entry).resolve()
        docs += source_docs(path) if path.is_dir() else load_docs(path)
    return docs


def kustomize_command() -> list[str] | None:
    if binary := shutil.which("kustomize"):
        return [binary, "build"]
    if binary := shutil.which("kubectl"):
        return [binary, "kustomize"]  # kubectl embeds kustomize
    return None


def kustomize_build(directory: Path) -> list[Doc]:
    """``kustomize build`` of ``directory``; fails (never skips) without the binary."""
    command = kustomize_command()
    assert command is not None, "neither `kustomize` nor `kubectl` is on PATH; cannot build the overlays"
    result = subprocess.run(
        [*command, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


@functools.cache
def built_docs(overlay: str) -> list[Doc]:
    return kustomize_build(K8S / "overlays" / overlay)


@pytest.fixture(
    params=[(overlay, mode) for overlay in OVERLAYS for mode in ("source", "kustomize")],
    ids=lambda p: f"{p[0]}-{p[1]}",
)
def rendered(request: pytest.FixtureRequest) -> tuple[str, str, list[Doc]]:
    overlay, mode = request.param
    if mode == "source":
        return overlay, mode, source_docs(K8S / "overlays" / overlay)
    return overlay, mode, built_docs(overlay)


@pytest.fixture(params=list(OVERLAYS))
def kustomized(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    """For checks that only make sense once generators and patches ran."""
    overlay: str = request.param
    return overlay, built_docs(overlay)


# Deployments that read DEPOT_DATABASE_URL; manifest for the reference fan-out (docs/fanout.md).
DATABASE_CLIENTS = ("metadata", "manifest", "gc")
# The dev overlay's CloudNativePG Cluster; its pods carry this label.
DEV_POSTGRES_POD = {"cnpg.io/cluster": "depot-pg"}


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels + matchExpressions)."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


# --------------------------------------------------------------------------
# Files and kustomizations
# --------------------------------------------------------------------------

KUSTOMIZATION_DIRS = sorted(p.parent for p in K8S.rglob("kustomization.yaml"))


def test_layout_has_base_and_both_overlays() -> None:
    rel = {p.relative_to(K8S).as_posix() for p in KUSTOMIZATION_DIRS}
    assert rel == {"base", "overlays/dev", "overlays/prod"}


@pytest.mark.parametrize("directory", KUSTOMIZATION_DIRS, ids=lambda p: p.name)
def test_kustomization_references_exist(directory: Path) -> None:
    for path in referenced_files(directory):
        assert path.exists(), f"{directory}/kustomization.yaml names missing {path}"
        if path.is_dir():
            assert (path / "kustomization.yaml").exists(), path


def test_every_yaml_file_parses_and_is_used() -> None:
    # An unreferenced file is silently not deployed, which is always a bug.
    used = {p.resolve() for d in KUSTOMIZATION_DIRS for p in referenced_files(d)}
    configurations = {(d / c).resolve() for d in KUSTOMIZATION_DIRS for c in kustomization(d).get("configurations", [])}
    for path in sorted(K8S.rglob("*.y*ml")):
        docs = load_docs(path)
        assert docs, f"{path} is empty"
        if path.name == "kustomization.yaml":
            continue
        assert path.resolve() in used, f"{path} is not referenced by any kustomization"
        if path.resolve() in configurations:
            continue  # kustomize transformer config, not a Kubernetes object
        for doc in docs:
            assert {"apiVersion", "kind", "metadata"} <= doc.keys(), path


# --------------------------------------------------------------------------
# Workloads
# --------------------------------------------------------------------------


def assert_hardened(workload: Doc) -> None:
    """STYLE.md "Deployment": non-root, read-only, no capabilities, limits."""
    name = f"{workload['kind']}/{workload['metadata']['name']}"
    spec = pod_spec(workload)
    assert spec.get("automountServiceAccountToken") is False, name
    for container in spec.get("initContainers", []) + spec["containers"]:
        where = f"{name} container {container['name']}"
        sc = container.get("securityContext", {})
        assert sc.get("runAsNonRoot") is True, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
        resources = container.get("resources", {})
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= resources.get(section, {}).keys(), f"{where} {section}"
        # A read-only root needs somewhere to write; it must be an emptyDir.
        mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, where
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        assert "emptyDir" in volumes[mounts["/tmp"]], where


def test_every_workload_is_hardened(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet")]
    assert workloads
    for workload in workloads:
        assert_hardened(workload)


def test_each_service_has_a_grpc_deployment(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    deployments = of_kind(docs, "Deployment")
    for name, port in SERVICES.items():
        spec = pod_spec(deployments[name])
        assert spec["serviceAccountName"] == "depot", name
        (container,) = spec["containers"]
        assert container["args"] == [f"depot.services.{name}", "serve"], name
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports.get("grpc") == port, name
        # grpc.health.v1 probes. The probe's port must be the number: the
        # Kubernetes API does not accept a port name for gRPC probes. The
        # kubelet's grpc probes speak plaintext only, so a service serving
        # TLS is probed on its plaintext health-only port.
        values = {e["name"]: e.get("value") for e in container["env"]}
        health = values.get("DEPOT_HEALTH_LISTEN")
        assert health or "DEPOT_TLS_CERT" not in values, f"{name}: TLS port with no health port to probe"
        probe_port = int(health.rsplit(":", 1)[1]) if health else port
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert container[probe]["grpc"]["port"] == probe_port, f"{name} {probe}"
        env = {e["name"] for e in container["env"]}
        assert {"DEPOT_LISTEN", "DEPOT_LOG_FORMAT"} <= env, name
        listen = next(e["value"] for e in container["env"] if e["name"] == "DEPOT_LISTEN")
        assert listen.endswith(f":{port}"), name


def test_services_target_the_grpc_port(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    services, deployments = of_kind(docs, "Service"), of_kind(docs, "Deployment")
    for name, port in SERVICES.items():
        service = services[name]
        (service_port,) = service["spec"]["ports"]
        assert service_port["name"] == "grpc", name
        assert service_port["port"] == port, name
        assert service_port["targetPort"] in ("grpc", port), name
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert selects({"matchLabels": service["spec"]["selector"]}, pod_labels), name


def test_manifest_is_autoscaled_on_cpu(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "manifest",
    }
    metrics = hpa["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    # A fixed replica count would fight the HPA on every apply.
    assert "replicas" not in of_kind(docs, "Deployment")["manifest"]["spec"]


def test_each_service_has_a_disruption_budget(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    budgets = of_kind(docs, "PodDisruptionBudget").values()
    deployments = of_kind(docs, "Deployment")
    for name in SERVICES:
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert any(selects(b["spec"]["selector"], labels) for b in budgets), name


def test_migration_job(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    job = of_kind(docs, "Job")["depot-migrate"]
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["depot.services.metadata", "migrate"]
    assert "argocd.argoproj.io/hook" in job["metadata"]["annotations"]
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")


def test_service_account_has_no_token(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    assert of_kind(docs, "ServiceAccount")["depot"]["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------
# NetworkPolicies
# --------------------------------------------------------------------------


def ingress_allowed(docs: list[Doc], dst: str, src: dict[str, str] | None, port: int) -> bool:
    """Does some policy let ``src`` pod labels (None = outside the namespace)
    reach Depot service ``dst`` on ``port``? Deliberately small: enough to
    state the intended paths, not a full policy engine."""
    template = of_kind(docs, "Deployment")[dst]["spec"]["template"]
    # A policy may name a port; it means that container port of the target pod.
    named = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c["ports"]}
    return pod_ingress_allowed(docs, template["metadata"]["labels"], src, port, named)


def pod_ingress_allowed(
    docs: list[Doc], dst_labels: dict[str, str], src: dict[str, str] | None, port: int, named: dict[str, int]
) -> bool:
    """``ingress_allowed`` for any pod, by its labels (``named``: its named ports)."""
    for policy in of_kind(docs, "NetworkPolicy").values():
        spec = policy["spec"]
        if "Ingress" not in spec.get("policyTypes", []):
            continue
        if not selects(spec["podSelector"], dst_labels):
            continue
        for rule in spec.get("ingress", []):
            ports = rule.get("ports")
            if ports and not any(named.get(p["port"], p["port"]) == port for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                return True  # no `from`: any source
            for peer in peers:
                if src is not None and "podSelector" in peer and "namespaceSelector" not in peer:
                    if selects(peer["podSelector"], src):
                        return True
    return False


def test_default_deny_ingress(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    assert any(
        p["spec"]["podSelector"] == {} and p["spec"].get("policyTypes") == ["Ingress"] and not p["spec"].get("ingress")
        for p in of_kind(docs, "NetworkPolicy").values()
    )


def test_network_paths(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    manifest_pod = of_kind(docs, "Deployment")["manifest"]["spec"]["template"]["metadata"]["labels"]
    # Clients from outside reach the two public APIs...
    assert ingress_allowed(docs, "metadata", None, SERVICES["metadata"])
    assert ingress_allowed(docs, "manifest", None, SERVICES["manifest"])
    # ...manifest reaches metadata to authenticate callers...
    assert ingress_allowed(docs, "metadata", manifest_pod, SERVICES["metadata"])
    # ...but the admin-only gc API is not open to arbitrary clients,
    assert not ingress_allowed(docs, "gc", None, SERVICES["gc"])
    # and nothing is open on other ports (the plaintext health port included:
    # the kubelet reaches it from the node, which policies always allow).
    assert not ingress_allowed(docs, "metadata", None, 8080)
    for name in SERVICES:
        assert not ingress_allowed(docs, name, None, PROD_HEALTH_PORT), name


def test_database_pods_can_resolve_and_reach_postgres(
    rendered: tuple[str, str, list[Doc]],
) -> None:
    _, _, docs = rendered
    policies = of_kind(docs, "NetworkPolicy").values()
    egress = [p for p in policies if "Egress" in p["spec"]["policyTypes"]]
    for name in DATABASE_CLIENTS:
        labels = of_kind(docs, "Deployment")[name]["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in egress if selects(p["spec"]["podSelector"], labels)]
        if not mine:
            assert name == "manifest", f"{name}: no egress policy"  # on purpose: references anywhere
            continue
        ports = {
            (port["port"], port.get("protocol", "TCP"))
            for policy in mine
            for rule in policy["spec"]["egress"]
            for port in rule.get("ports", [])
        }
        assert {(53, "UDP"), (53, "TCP"), (5432, "TCP")} <= ports, name


# --------------------------------------------------------------------------
# TLS in prod
# --------------------------------------------------------------------------

PROD_HEALTH_PORT = 8081
# Strategic-merge keys of the lists the prod patches touch; other lists are replaced.
MERGE_KEYS = {
    "containers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}


def strategic_merge(base: Any, patch: Any, field: str = "") -> Any:
    """The subset of kustomize's strategic merge the prod patches use."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: strategic_merge(base[k], v, k) if k in base else v for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        patched = {item[key]: item for item in patch}
        merged = [
            strategic_merge(item, patched.pop(item[key]), field) if item[key] in patched else item for item in base
        ]
        return list(patched.values()) + merged
    return patch


def prod_deployments_from_source() -> dict[str, Doc]:
    """prod's Deployments with its patches applied in plain Python, so the TLS
    invariants are checked even where kustomize is not installed."""
    overlay = K8S / "overlays" / "prod"
    deployments = of_kind(source_docs(overlay), "Deployment")
    for patch in kustomization(overlay).get("patches", []):
        if "path" not in patch:
            continue
        for doc in load_docs(overlay / patch["path"]):
            if doc["kind"] == "Deployment":
                name = doc["metadata"]["name"]
                deployments[name] = strategic_merge(deployments[name], doc)
    return deployments


def prod_config_literals() -> dict[str, str]:
    values: dict[str, str] = {}
    for directory in (K8S / "base", K8S / "overlays" / "prod"):
        for generator in kustomization(directory).get("configMapGenerator", []):
            if generator["name"] == "depot-config":
                values.update(literal.split("=", 1) for literal in generator.get("literals", []))
    return values


def assert_serves_tls(deployment: Doc) -> None:
    name = deployment["metadata"]["name"]
    spec = pod_spec(deployment)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    (container,) = spec["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    for variable, key in TLS_FILES.items():
        assert variable in env, f"{name}: {variable} not set"
        directory, _, file = env[variable].rpartition("/")
        assert file == key, f"{name}: {variable}={env[variable]}"
        mount = mounts.get(directory)
        assert mount is not None, f"{name}: nothing mounted at {directory}"
        assert mount.get("readOnly") is True, name
        secret = volumes[mount["name"]].get("secret")
        assert secret is not None, f"{name}: {directory} is not a Secret"
        assert key in EXTERNAL_SECRETS[secret["secretName"]], f"{name}: {secret['secretName']} has no {key}"
        # Readable by the pod's group (fsGroup), never by others.
        assert secret.get("defaultMode", 0o644) & 0o007 == 0, name
    health = env.get("DEPOT_HEALTH_LISTEN")
    assert health is not None and health.endswith(f":{PROD_HEALTH_PORT}"), name
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["health"] == PROD_HEALTH_PORT and ports["grpc"] == SERVICES[name], name
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == PROD_HEALTH_PORT, f"{name} {probe}"


def test_prod_runs_every_service_on_tls_from_source() -> None:
    deployments = prod_deployments_from_source()
    for name in SERVICES:
        assert_serves_tls(deployments[name])
    # The manifest service's calls to metadata are TLS too.
    assert prod_config_literals()["DEPOT_METADATA_ADDRESS"].startswith("grpcs://")


def test_prod_runs_every_service_on_tls(kustomized: tuple[str, list[Doc]]) -> None:
    overlay, docs = kustomized
    deployments = of_kind(docs, "Deployment")
    if overlay != "prod":
        # dev stays plaintext inside its namespace, and says so by not configuring TLS.
        assert all("DEPOT_TLS_CERT" not in str(pod_spec(deployments[n])) for n in SERVICES)
        return
    for name in SERVICES:
        assert_serves_tls(deployments[name])
    (config,) = (d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("depot-config"))
    assert config["data"]["DEPOT_METADATA_ADDRESS"].startswith("grpcs://")


# --------------------------------------------------------------------------
# Built output only
# --------------------------------------------------------------------------


def test_everything_lands_in_the_overlay_namespace(kustomized: tuple[str, list[Doc]]) -> None:
    overlay, docs = kustomized
    namespace = OVERLAYS[overlay]
    assert namespace in of_kind(docs, "Namespace")
    for doc in docs:
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"].get("namespace") == namespace, doc["metadata"]["name"]


def test_config_and_secret_references_resolve(kustomized: tuple[str, list[Doc]]) -> None:
    overlay, docs = kustomized
    config_maps, secrets = of_kind(docs, "ConfigMap"), of_kind(docs, "Secret")
    if overlay == "prod":
        # Prod generates no credentials; they must come from the cluster.
        assert not secrets
    for workload in (d for d in docs if d["kind"] in ("Deployment", "Job")):
        for container in pod_spec(workload)["containers"]:
            for env in container.get("env", []):
                source = env.get("valueFrom", {})
                where = f"{workload['metadata']['name']} env {env['name']}"
                if ref := source.get("configMapKeyRef"):
                    if not ref.get("optional"):
                        assert ref["key"] in config_maps[ref["name"]]["data"], where
                if ref := source.get("secretKeyRef"):
                    if ref["name"] in secrets:
                        assert ref["key"] in secrets[ref["name"]]["data"], where
                    else:
                        assert overlay == "prod", f"{where}: Secret {ref['name']} not generated"
                        assert ref["key"] in EXTERNAL_SECRETS[ref["name"]], where


def test_images_are_pinned(kustomized: tuple[str, list[Doc]]) -> None:
    _, docs = kustomized
    for workload in (d for d in docs if d["kind"] in ("Deployment", "Job")):
        for container in pod_spec(workload)["containers"]:
            image = container["image"]
            assert ":" in image.rpartition("/")[2] and not image.endswith(":latest"), image


def test_replica_counts(kustomized: tuple[str, list[Doc]]) -> None:
    overlay, docs = kustomized
    deployments = of_kind(docs, "Deployment")
    (hpa,) = of_kind(docs, "HorizontalPodAutoscaler").values()
    if overlay == "dev":
        assert deployments["metadata"]["spec"]["replicas"] == 1
        assert deployments["gc"]["spec"]["replicas"] == 1
        assert hpa["spec"]["minReplicas"] == 1
    else:
        assert deployments["metadata"]["spec"]["replicas"] >= 2
        assert deployments["gc"]["spec"]["replicas"] >= 2
        assert hpa["spec"]["minReplicas"] >= 2
        for name in SERVICES:
            spread = pod_spec(deployments[name]).get("topologySpreadConstraints", [])
            keys = {c["topologyKey"] for c in spread}
            assert {"topology.kubernetes.io/zone", "kubernetes.io/hostname"} <= keys, name


# Oldest Kubernetes minor the manifests promise to work on.
MIN_KUBERNETES = "1.30.0"


def validate_schema(docs: list[Doc]) -> None:
    """Raises kubernetes_validate.ValidationError on the first object the API server would reject."""
    # Catches misspelt or misplaced fields, which the API server would reject
    # (or, with client-side apply, silently drop). The schemas come with the
    # kubernetes-validate package (a dev dependency), so this runs offline.
    import kubernetes_validate

    for doc in docs:
        if doc["apiVersion"].endswith("cnpg.io/v1"):
            continue  # a CRD: its schema ships with the operator, not here
        kubernetes_validate.validate(doc, MIN_KUBERNETES, strict=True)


def test_objects_match_the_kubernetes_schema(kustomized: tuple[str, list[Doc]]) -> None:
    _, docs = kustomized
    validate_schema(docs)


# --------------------------------------------------------------------------
# The checks catch a broken tree (so a green run means something)
# --------------------------------------------------------------------------


@pytest.fixture
def broken_tree(tmp_path: Path) -> Path:
    """A private copy of deploy/k8s to break one thing in."""
    copy = tmp_path / "k8s"
    shutil.copytree(K8S, copy)
    return copy


def test_a_misspelt_field_fails_the_schema_check(broken_tree: Path) -> None:
    import kubernetes_validate

    path = broken_tree / "base" / "metadata.yaml"
    text = path.read_text()
    assert "containerPort:" in text
    path.write_text(text.replace("containerPort:", "containerPrt:", 1))
    docs = kustomize_build(broken_tree / "overlays" / "prod")  # kustomize itself does not mind
    with pytest.raises(kubernetes_validate.ValidationError, match="containerPrt"):
        validate_schema(docs)


def test_a_wrongly_typed_value_fails_the_schema_check(broken_tree: Path) -> None:
    import kubernetes_validate

    path = broken_tree / "base" / "gc.yaml"
    text = path.read_text()
    assert "readOnlyRootFilesystem: true" in text
    path.write_text(text.replace("readOnlyRootFilesystem: true", 'readOnlyRootFilesystem: "yes"', 1))
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_schema(kustomize_build(broken_tree / "overlays" / "dev"))


def test_a_kustomization_naming_a_missing_file_fails_the_build(broken_tree: Path) -> None:
    (broken_tree / "base" / "pdb.yaml").unlink()
    with pytest.raises(AssertionError, match="pdb.yaml"):
        kustomize_build(broken_tree / "overlays" / "dev")


def test_one_grace_period_for_every_service(rendered: tuple[str, str, list[Doc]]) -> None:
    # metadata, manifest and gc must agree on DEPOT_GRACE_PERIOD_S: a GC
    # sweeping with a shorter grace than the manifest service's refresh rule
    # assumes can delete a blob a commit relies on (docs/gc.md). So every
    # service reads the one ConfigMap key, and the GC is also told the
    # manifest service's value (its guard refuses to sweep below it).
    _, _, docs = rendered
    deployments = of_kind(docs, "Deployment")
    wanted = {"metadata": {"DEPOT_GRACE_PERIOD_S"}, "manifest": {"DEPOT_GRACE_PERIOD_S"}}
    wanted["gc"] = {"DEPOT_GRACE_PERIOD_S", "DEPOT_MANIFEST_GRACE_PERIOD_S"}
    sources = set()
    for name, variables in wanted.items():
        (container,) = pod_spec(deployments[name])["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        for variable in variables:
            assert "value" not in env[variable], f"{name}: {variable} set in the Deployment, not the ConfigMap"
            ref = env[variable]["valueFrom"]["configMapKeyRef"]
            assert not ref.get("optional"), f"{name}: {variable}"
            sources.add((ref["name"], ref["key"]))
    assert len(sources) == 1, sources
    ((config_map, key),) = sources
    assert key == "DEPOT_GRACE_PERIOD_S"
    if not config_map.startswith("depot-config-"):  # the source rendering: the generator's literal
        literals = kustomization(K8S / "base")["configMapGenerator"][0]["literals"]
        assert "DEPOT_GRACE_PERIOD_S=604800" in literals


# --------------------------------------------------------------------------
# The manifest replicas share reference listings through PostgreSQL
# --------------------------------------------------------------------------


def database_problems(docs: list[Doc]) -> list[str]:
    """Why some database-using Deployment of a rendering could not use the
    database: DEPOT_DATABASE_URL missing or not a Secret's key, or (where
    the overlay runs PostgreSQL in the namespace) no ingress to it."""
    deployments, problems = of_kind(docs, "Deployment"), []
    refs = {}
    for name in DATABASE_CLIENTS:
        (container,) = pod_spec(deployments[name])["containers"]
        env = {e["name"]: e for e in container.get("env", [])}
        if "DEPOT_DATABASE_URL" not in env:
            problems.append(f"{name}: no DEPOT_DATABASE_URL")
            continue
        refs[name] = env["DEPOT_DATABASE_URL"].get("valueFrom", {}).get("secretKeyRef") or {}
        if not (refs[name].get("name") and refs[name].get("key")):
            problems.append(f"{name}: DEPOT_DATABASE_URL is not a Secret's key")
    if any(d["kind"] == "Cluster" and d["metadata"]["name"] == "depot-pg" for d in docs):
        for name in DATABASE_CLIENTS:
            labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
            if not pod_ingress_allowed(docs, DEV_POSTGRES_POD, labels, 5432, {}):
                problems.append(f"{name}: no NetworkPolicy lets it reach PostgreSQL on 5432")
    return problems


def test_every_database_client_has_the_database(rendered: tuple[str, str, list[Doc]]) -> None:
    _, _, docs = rendered
    assert database_problems(docs) == []


def test_a_manifest_deployment_without_the_database_fails(broken_tree: Path) -> None:
    path = broken_tree / "base" / "manifest.yaml"
    docs = load_docs(path)
    (container,) = pod_spec(docs[0])["containers"]
    container["env"] = [e for e in container["env"] if e["name"] != "DEPOT_DATABASE_URL"]
    path.write_text(yaml.safe_dump_all(docs))
    # ...and from prod's patch, which points it at the manifest role's Secret.
    patch = broken_tree / "overlays" / "prod" / "patches" / "manifest.yaml"
    (deployment,) = load_docs(patch)
    (container,) = pod_spec(deployment)["containers"]
    del container["env"]
    patch.write_text(yaml.safe_dump(deployment))
    for overlay in OVERLAYS:
        rendered = kustomize_build(broken_tree / "overlays" / overlay)
        assert database_problems(rendered) == ["manifest: no DEPOT_DATABASE_URL"], overlay


def test_a_manifest_pod_shut_out_of_dev_postgres_fails(broken_tree: Path) -> None:
    path = broken_tree / "overlays" / "dev" / "networkpolicy.yaml"
    text = path.read_text()
    assert '"metadata", "manifest", "gc"' in text
    path.write_text(text.replace('"metadata", "manifest", "gc"', '"metadata", "gc"', 1))
    rendered = kustomize_build(broken_tree / "overlays" / "dev")
    assert database_problems(rendered) == ["manifest: no NetworkPolicy lets it reach PostgreSQL on 5432"]


def test_prod_manifest_pods_do_not_get_the_metadata_owners_database_credentials() -> None:
    """They fetch and parse what callers reference: prod gives them the
    fan-out-only role's Secret (docs/fanout.md), not metadata's."""
    deployments = of_kind(kustomize_build(K8S / "overlays" / "prod"), "Deployment")

    def secret(name: str) -> str:
        (container,) = pod_spec(deployments[name])["containers"]
        env = {e["name"]: e for e in container["env"]}
        return str(env["DEPOT_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"])

    assert secret("manifest") == "depot-manifest-database"
    assert secret("metadata") == secret("gc") == "depot-database"
