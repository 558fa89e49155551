"""deploy/k8s/, checked without a cluster: every manifest against the Kubernetes API schemas
(kubernetes-validate bundles them per version, so this runs offline), and against the project:
commands are real verbs, environment overrides name real settings keys, the ConfigMap's files
load with the components' own loaders, probes, metrics annotations and Services meet the ports
the components listen on, the image is the compose one."""

from __future__ import annotations

import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from pydantic import BaseModel

from alerts.config import AlertsConfig
from alerts.loader import load_rules
from alerts.notifiers.webhook import WebhookOptions
from collectors.agent.config import AgentConfig, load_agent_config
from collectors.http.auth import KeysFile
from collectors.http.config import CollectorConfig
from dashboards.config import DashboardsConfig
from deploy.test_compose import ROOT, compose, option, parse_command, playscope_services
from indexers.config import IndexerConfig
from playscope.cli import METRICS_VERBS
from playscope.config import ENV_OVERRIDES, Settings, load_settings
from playscope.metrics import DEFAULT_METRICS_PORTS
from playscope.secrets import is_secret_key
from streams.config import StreamsConfig

__all__ = ["compose"]  # the compose fixture, used here for the image and the setup command

K8S = ROOT / "deploy/k8s"
# The oldest Kubernetes the manifests are meant for, and the newest the package has schemas of.
KUBERNETES_VERSIONS = ("1.28.0", kubernetes_validate.latest_version())
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}
# component sections of playscope.yaml, each validated by its component's model
SECTIONS: dict[str, type[BaseModel]] = {
    "collector": CollectorConfig,
    "streams": StreamsConfig,
    "indexer": IndexerConfig,
    "alerts": AlertsConfig,
    "dashboards": DashboardsConfig,
}
# variables that are not settings keys: the /metrics address, and what the rules files read
NOT_SETTINGS = {"PLAYSCOPE_METRICS_HOST", "PLAYSCOPE_ALERT_WEBHOOK_URL", "PLAYSCOPE_ALERT_WEBHOOK_SECRET"}
ROOT_EXEMPT = {("playscope-agent", "checkpoint-owner")}  # chowns the agent's hostPath checkpoint dir


@dataclass(frozen=True)
class Manifest:
    file: str
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body["kind"])

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    found = []
    for path in manifest_files():
        for body in yaml.safe_load_all(path.read_text()):
            assert isinstance(body, dict), f"{path.name}: a document that is not a mapping"
            found.append(Manifest(path.name, body))
    return found


def the(manifests: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    matches = [m.body for m in manifests if m.kind == kind and m.name == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} manifests"
    return matches[0]


def workloads(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    return {m.name: m.body for m in manifests if m.kind in WORKLOAD_KINDS}


def pod_of(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"])


def containers(pod: dict[str, Any], init: bool = False) -> list[dict[str, Any]]:
    return [*pod["spec"]["containers"], *(pod["spec"].get("initContainers", []) if init else [])]


def component_image(compose: dict[str, Any]) -> str:
    images = {svc["image"] for svc in playscope_services(compose).values()}
    assert len(images) == 1, images
    return images.pop()


def playscope_containers(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(workload, pod, container) for every container that runs ``playscope VERB``."""
    found = []
    for name, workload in workloads(manifests).items():
        pod = pod_of(workload)
        found += [(name, pod, c) for c in containers(pod) if "command" not in c]  # the image's ENTRYPOINT
    return found


def by_verb(manifests: list[Manifest]) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    found = {c["args"][0]: (name, pod, c) for name, pod, c in playscope_containers(manifests)}
    assert len(found) == len(playscope_containers(manifests)), "two workloads run one verb"
    return found


# --- what a pod sees: its mounted files and its environment, materialised under tmp_path ----------


def data_of(manifests: list[Manifest], kind: str, name: str) -> dict[str, str]:
    body = the(manifests, kind, name)
    return dict(body.get("stringData" if kind == "Secret" else "data") or {})


@dataclass
class PodView:
    """A container's files (ConfigMap and Secret volumes written out under ``root``) and environment."""

    root: Path
    mounts: dict[str, Path]  # mountPath in the container -> where its files are here
    env: dict[str, str]

    def here(self, container_path: str) -> Path:
        for mount, local in self.mounts.items():
            if container_path.startswith(mount.rstrip("/") + "/"):
                return local / container_path[len(mount.rstrip("/")) + 1 :]
        raise AssertionError(f"{container_path} is not in a ConfigMap or Secret volume")

    def rewrite(self, text: str) -> str:
        """Container paths of mounted files in ``text`` turned into the paths here."""
        for mount, local in sorted(self.mounts.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(mount.rstrip("/") + "/", f"{local}/")
        return text


def pod_view(manifests: list[Manifest], workload: str, pod: dict[str, Any], container: dict[str, Any],
             root: Path) -> PodView:  # fmt: skip
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    view = PodView(root, {}, {})
    for mount in container.get("volumeMounts", []):
        assert mount["name"] in volumes, f"{workload}: mounts undefined volume {mount['name']}"
        volume = volumes[mount["name"]]
        if "configMap" in volume or "secret" in volume:
            kind, ref = ("ConfigMap", volume["configMap"]) if "configMap" in volume else ("Secret", volume["secret"])
            data = data_of(manifests, kind, ref.get("name") or ref.get("secretName"))
            local = root / mount["mountPath"].strip("/")
            local.mkdir(parents=True, exist_ok=True)
            items = ref.get("items") or [{"key": k, "path": k} for k in data]
            for item in items:
                assert item["key"] in data, f"{workload}: {kind} has no key {item['key']}"
                (local / item["path"]).write_text(data[item["key"]])
            view.mounts[mount["mountPath"]] = local
    for var in container.get("env", []):
        if "value" in var:
            view.env[var["name"]] = view.rewrite(str(var["value"]))
            continue
        source = var["valueFrom"]
        if "fieldRef" in source:
            field_path = source["fieldRef"]["fieldPath"]
            assert field_path in ("metadata.name", "spec.nodeName"), var
            view.env[var["name"]] = f"{workload}-0" if field_path == "metadata.name" else "node-a"
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            data = data_of(manifests, "Secret", ref["name"])
            assert ref["key"] in data, f"{workload}: Secret {ref['name']} has no key {ref['key']}"
            view.env[var["name"]] = data[ref["key"]]
        else:
            raise AssertionError(f"{workload}: {var['name']}: unexpected source {source}")
    return view


def settings_of(view: PodView, container: dict[str, Any]) -> Settings:
    """The settings the container starts with: its --config file and its environment."""
    config = view.here(option(container["args"], "--config"))
    config.write_text(view.rewrite(config.read_text()))  # secret files referenced by their mount paths
    return load_settings(config, environ=view.env)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        if (model := _model_in(arg)) is not None:
            return model
    return None


def names_a_key(dotted: str) -> bool:
    """Whether ``dotted`` is a key of the settings or of a component section (``x_file`` for a secret ``x``)."""
    parts = dotted.split(".")
    model: type[BaseModel] = Settings
    if parts[0] in SECTIONS:
        model, parts = SECTIONS[parts[0]], parts[1:]
    for i, part in enumerate(parts):
        fields = model.model_fields
        stem = part.removesuffix("_file")
        if part not in fields:
            return i == len(parts) - 1 and stem != part and stem in fields and is_secret_key(stem)
        if i == len(parts) - 1:
            return True
        sub = _model_in(fields[part].annotation)
        if sub is None:
            return False
        model = sub
    return False


# --- 1. the manifests are valid Kubernetes objects, and kustomize applies all of them --------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_is_valid_against_the_kubernetes_schemas(manifests: list[Manifest], version: str) -> None:
    assert {m.kind for m in manifests} >= {"Namespace", "ConfigMap", "Secret", "Deployment", "DaemonSet",
                                           "StatefulSet", "Job", "Service", "PodDisruptionBudget",
                                           "HorizontalPodAutoscaler"}  # fmt: skip
    for m in manifests:
        try:
            kubernetes_validate.validate(m.body, version, strict=True)  # strict: unknown fields are errors
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise AssertionError(f"{m.file}: {m.kind}/{m.name}: {path}: {exc.message} (Kubernetes {version})") from None


def test_kustomization_lists_every_manifest_file(manifests: list[Manifest]) -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    resources = kustomization["resources"]
    assert len(resources) == len(set(resources))
    assert set(resources) == {p.name for p in manifest_files()}
    namespace = the(manifests, "Namespace", kustomization["namespace"])["metadata"]["name"]
    for m in manifests:
        if m.kind != "Namespace":
            assert m.body["metadata"].get("namespace") == namespace, f"{m.file}: {m.kind}/{m.name}"


# --- 2. commands, settings and secrets -------------------------------------------------------------


def test_every_container_runs_a_real_verb_of_the_compose_image(manifests: list[Manifest],
                                                              compose: dict[str, Any]) -> None:  # fmt: skip
    image = component_image(compose)
    verbs = by_verb(manifests)
    assert set(verbs) == {"collector", "agent", "streams", "indexer", "alerts", "stack"}
    for name, workload in workloads(manifests).items():
        for container in containers(pod_of(workload), init=True):
            assert container["image"] == image, f"{name}/{container['name']}: {container['image']} is not {image}"
    for _name, _pod, container in playscope_containers(manifests):
        parse_command(container["args"])  # SystemExit on a verb or flag that does not exist


def test_setup_job_runs_the_compose_setup_command(manifests: list[Manifest], compose: dict[str, Any]) -> None:
    name, _pod, container = by_verb(manifests)["stack"]
    assert workloads(manifests)[name]["kind"] == "Job"
    args = list(container["args"])
    del args[args.index("--config") : args.index("--config") + 2]
    assert args == compose["services"]["setup"]["command"]


def test_every_env_override_names_a_settings_key(manifests: list[Manifest]) -> None:
    checked = 0
    # ${VAR} in a config file of the ConfigMap (agent.yaml's host: ${NODE_NAME})
    expanded = {m.group(1) for text in data_of(manifests, "ConfigMap", "playscope-config").values()
                for m in re.finditer(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", text)}
    for name, _pod, container in playscope_containers(manifests):
        for var in container.get("env", []):
            key = var["name"]
            if key in NOT_SETTINGS or key in ENV_OVERRIDES or key in expanded:
                continue
            assert key.startswith("PLAYSCOPE__"), f"{name}: {key} is read by nothing"
            dotted = ".".join(p.lower() for p in key.removeprefix("PLAYSCOPE__").split("__"))
            assert names_a_key(dotted), f"{name}: {key} names no settings key ({dotted})"
            checked += 1
    assert checked >= 4


def test_each_container_starts_with_valid_settings(manifests: list[Manifest], tmp_path: Path) -> None:
    for name, pod, container in playscope_containers(manifests):
        view = pod_view(manifests, name, pod, container, tmp_path / name)
        settings = settings_of(view, container)  # ConfigError on a bad key, an unreadable *_file
        for section, model in SECTIONS.items():
            settings.section(section, model)
        assert settings.kafka.bootstrap != "localhost:9092", "Kafka is the operator's, not on the pod"
        assert "localhost" not in settings.search.url
        assert settings.home.is_absolute()
        state = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
        assert str(settings.home) in state, f"{name}: home {settings.home} is not a writable volume"


def test_static_members_take_their_pod_name(manifests: list[Manifest], tmp_path: Path) -> None:
    verbs = by_verb(manifests)
    for verb in ("streams", "indexer"):
        name, pod, container = verbs[verb]
        env = {v["name"]: v for v in container["env"]}
        assert env["PLAYSCOPE__KAFKA__INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        settings = settings_of(pod_view(manifests, name, pod, container, tmp_path / name), container)
        assert settings.kafka.static_membership and settings.kafka.instance_id == f"{name}-0"
    assert workloads(manifests)[verbs["streams"][0]]["kind"] == "StatefulSet"  # a name that outlives the pod


def test_secrets_reach_the_components_through_files(manifests: list[Manifest], tmp_path: Path) -> None:
    secret = data_of(manifests, "Secret", "playscope-secrets")
    name, pod, container = by_verb(manifests)["collector"]
    view = pod_view(manifests, name, pod, container, tmp_path / name)
    settings = settings_of(view, container)
    assert settings.privacy.secret == secret["privacy-secret"]
    collector = settings.section("collector", CollectorConfig)
    assert collector.keys_file is not None
    keys = KeysFile.model_validate(yaml.safe_load(collector.keys_file.read_text()))  # the collector's model
    assert collector.keys_file.read_text() == secret["keys.yaml"] and keys.applications
    configmap = data_of(manifests, "ConfigMap", "playscope-config")["playscope.yaml"]
    for value in secret.values():
        assert value.strip() not in configmap
    for _name, _pod, c in playscope_containers(manifests):
        assert not any(value.strip() in " ".join(c["args"]) for value in secret.values())
        assert all("value" not in v or v["value"] not in secret.values() for v in c.get("env", []))


def test_alerts_webhook_channel_gets_its_url_and_secret(manifests: list[Manifest], tmp_path: Path) -> None:
    name, pod, container = by_verb(manifests)["alerts"]
    assert workloads(manifests)[name]["spec"]["replicas"] == 1  # the transactional id fences a second
    assert workloads(manifests)[name]["spec"]["strategy"]["type"] == "Recreate"
    rules = option(container["args"], "-r")
    assert f"COPY alerts/rules {rules}" in (ROOT / "Dockerfile").read_text()
    view = pod_view(manifests, name, pod, container, tmp_path / name)
    options = load_rules(ROOT / "alerts/rules", environ=view.env).channels["oncall"].options
    assert isinstance(options, WebhookOptions)
    assert options.secret == data_of(manifests, "Secret", "playscope-secrets")["webhook-secret"]
    assert options.url.startswith("https://") and "127.0.0.1" not in options.url


# --- 3. ports: probes, metrics annotations, Services ----------------------------------------------


def agent_config(manifests: list[Manifest], tmp_path: Path) -> AgentConfig:
    name, pod, container = by_verb(manifests)["agent"]
    view = pod_view(manifests, name, pod, container, tmp_path / name)
    # the agent's own validator, with the container's environment (host: ${NODE_NAME})
    return load_agent_config(view.here(option(container["args"], "-c")), environ=view.env)


def metrics_port(verb: str, settings: Settings, manifests: list[Manifest], tmp_path: Path) -> int:
    """The port the component serves /metrics on, as it decides it from its configuration."""
    if verb == "collector":
        return settings.section("collector", CollectorConfig).port
    if verb == "agent":
        return agent_config(manifests, tmp_path).metrics_port or DEFAULT_METRICS_PORTS["agent"]
    section = settings.section(verb, SECTIONS[verb])  # the section of a verb is named after it
    return getattr(section, "metrics_port", None) or DEFAULT_METRICS_PORTS[verb]


def test_probes_and_ports_are_the_collectors(manifests: list[Manifest], tmp_path: Path) -> None:
    name, pod, container = by_verb(manifests)["collector"]
    settings = settings_of(pod_view(manifests, name, pod, container, tmp_path / name), container)
    port = settings.section("collector", CollectorConfig).port
    args = parse_command(container["args"])
    assert args.port is None or args.port == port
    assert [p["containerPort"] for p in container["ports"]] == [port]
    # ready while Kafka is up (or a spool takes the beacons); alive while the process answers
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
    # one worker per core the container may use (collectors/README.md)
    assert args.workers == int(container["resources"]["limits"]["cpu"])
    assert_spool_on_a_volume(pod, container, settings.section("collector", CollectorConfig))


def assert_spool_on_a_volume(pod: dict[str, Any], container: dict[str, Any], collector: CollectorConfig) -> None:
    """A spool, when configured, is on a writable volume with room for spool_max_bytes; the root
    filesystem is read-only, so anywhere else the collector cannot start."""
    if collector.spool_dir is None:
        return
    mounts = [m for m in container["volumeMounts"]
              if not m.get("readOnly") and collector.spool_dir.is_relative_to(m["mountPath"])]  # fmt: skip
    assert mounts, f"spool {collector.spool_dir} is on no writable volume"
    volume = {v["name"]: v for v in pod["spec"]["volumes"]}[max(mounts, key=lambda m: len(m["mountPath"]))["name"]]
    if "emptyDir" in volume:
        limit = volume["emptyDir"].get("sizeLimit")
        assert limit is not None, "the spool's emptyDir has no sizeLimit: a full spool would fill the node's disk"
        assert quantity(limit) > collector.spool_max_bytes, f"sizeLimit {limit} leaves no room for the spool"


def quantity(text: str) -> int:
    """A Kubernetes memory/storage quantity (``2Gi``, ``500M``, ``1024``) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    match = re.fullmatch(r"(\d+)([KMGT]i?|k)?", str(text))
    assert match, f"not a quantity: {text}"
    return int(match[1]) * units.get(match[2] or "", 1)


def test_every_component_is_scraped_on_its_metrics_port(manifests: list[Manifest], tmp_path: Path) -> None:
    for verb, (name, pod, container) in by_verb(manifests).items():
        annotations = pod["metadata"].get("annotations", {})
        if verb == "stack":
            assert "prometheus.io/scrape" not in annotations
            continue
        settings = settings_of(pod_view(manifests, name, pod, container, tmp_path / name), container)
        port = metrics_port(verb, settings, manifests, tmp_path)
        assert annotations["prometheus.io/scrape"] == "true", name
        assert annotations["prometheus.io/path"] == "/metrics", name
        assert int(annotations["prometheus.io/port"]) == port, f"{name}: scraped on another port than {port}"
        assert port in {p["containerPort"] for p in container["ports"]}, name
        if verb in METRICS_VERBS:  # served on 127.0.0.1 unless told otherwise
            assert {v["name"]: v.get("value") for v in container["env"]}["PLAYSCOPE_METRICS_HOST"] == "0.0.0.0"


def test_services_pdbs_and_hpa_select_real_pods(manifests: list[Manifest]) -> None:
    pods = {name: pod_of(w) for name, w in workloads(manifests).items()}

    def selected(selector: dict[str, str]) -> list[str]:
        return [n for n, p in pods.items() if selector.items() <= p["metadata"]["labels"].items()]

    for name, workload in workloads(manifests).items():
        if workload["kind"] != "Job":
            assert workload["spec"]["selector"]["matchLabels"].items() <= pods[name]["metadata"]["labels"].items()
    services = [m.body for m in manifests if m.kind == "Service"]
    assert {s["metadata"]["name"] for s in services} >= {"playscope-collector"}
    for service in services:
        chosen = selected(service["spec"]["selector"])
        assert len(chosen) == 1, f"Service {service['metadata']['name']} selects {chosen}"
        ports = {p.get("name"): p["containerPort"] for c in containers(pods[chosen[0]]) for p in c.get("ports", [])}
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert target in ports or target in ports.values(), f"{service['metadata']['name']}: no port {target}"
    for pdb in (m.body for m in manifests if m.kind == "PodDisruptionBudget"):
        assert len(selected(pdb["spec"]["selector"]["matchLabels"])) == 1, pdb["metadata"]["name"]
    hpa = the(manifests, "HorizontalPodAutoscaler", "playscope-collector")["spec"]
    target = workloads(manifests)[hpa["scaleTargetRef"]["name"]]
    assert target["kind"] == hpa["scaleTargetRef"]["kind"] == "Deployment"
    assert hpa["minReplicas"] >= 2 and target["spec"]["replicas"] >= 2
    assert [m["resource"]["name"] for m in hpa["metrics"]] == ["cpu"]
    the(manifests, "PodDisruptionBudget", "playscope-collector")
    the(manifests, "Service", "playscope-collector")
    assert target["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"], "HPA needs a request"


# --- 4. security and resources --------------------------------------------------------------------


def test_pods_run_unprivileged_on_read_only_root_filesystems(manifests: list[Manifest]) -> None:
    for name, workload in workloads(manifests).items():
        spec = pod_of(workload)["spec"]
        assert spec["automountServiceAccountToken"] is False, name
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        for container in containers(pod_of(workload), init=True):
            where = (name, container["name"])
            ctx = container["securityContext"]
            assert ctx["allowPrivilegeEscalation"] is False, where
            assert ctx["readOnlyRootFilesystem"] is True, where
            assert ctx["capabilities"]["drop"] == ["ALL"], where
            if where in ROOT_EXEMPT:
                assert ctx["capabilities"].get("add") == ["CHOWN"] and "args" not in container, where
                continue
            assert ctx.get("runAsNonRoot", True) is True and ctx.get("runAsUser", 10001) != 0, where
            assert not ctx["capabilities"].get("add"), where
            assert container["resources"]["requests"] and container["resources"]["limits"], where


def test_agent_tails_node_logs_read_only_and_keeps_checkpoints_on_the_node(manifests: list[Manifest],
                                                                          tmp_path: Path) -> None:  # fmt: skip
    name, pod, container = by_verb(manifests)["agent"]
    assert workloads(manifests)[name]["kind"] == "DaemonSet"
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    host_mounts = {m["mountPath"]: (m, volumes[m["name"]]["hostPath"])
                   for m in container["volumeMounts"] if "hostPath" in volumes[m["name"]]}  # fmt: skip
    config = agent_config(manifests, tmp_path)
    assert config.host == "node-a", "records would carry the pod's name, not the node's"
    logs = [path for path, (mount, _) in host_mounts.items() if mount.get("readOnly")]
    for source in config.inputs:
        for pattern in source.paths:
            assert any(pattern.startswith(f"{p}/") for p in logs), f"{pattern} is not on a read-only host mount"
    checkpoints = [p for p, (m, _) in host_mounts.items() if not m.get("readOnly")]
    assert any(config.checkpoint_file.is_relative_to(p) for p in checkpoints), "checkpoints die with the pod"
    assert all(host["path"].startswith("/var/log") for m, host in host_mounts.values() if m.get("readOnly"))
    for init in pod["spec"]["initContainers"]:  # the chown is of the checkpoint directory, nothing else
        assert init["command"][-1] in checkpoints
