"""deploy/overlays/production, checked without a cluster: the kustomization names files that exist
and a base it may build on, every patch is a partial object of a base resource (merged onto it, the
result is strict-valid Kubernetes), the overlay as applied still meets the project (settings load,
the spool is on a sized volume, workers follow the CPU limit, consumers stay within the partitions),
and the PodMonitor scrapes each component's pods on the port their annotations name."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from collectors.http.config import CollectorConfig
from deploy.test_compose import ROOT, parse_command
from deploy.test_k8s import (
    K8S,
    KUBERNETES_VERSIONS,
    Manifest,
    assert_spool_on_a_volume,
    by_verb,
    containers,
    manifests,
    pod_of,
    pod_view,
    settings_of,
    workloads,
)

__all__ = ["manifests"]  # the base's manifests fixture

OVERLAY = ROOT / "deploy/overlays/production"
PODMONITOR_FIELDS = {"selector", "namespaceSelector", "podMetricsEndpoints", "jobLabel", "podTargetLabels"}
ENDPOINT_FIELDS = {"port", "path", "interval", "scrapeTimeout", "scheme", "relabelings", "metricRelabelings"}
RESOURCE_NAMES = {"cpu", "memory", "ephemeral-storage"}
PARTITIONED_VERBS = ("streams", "indexer")  # consumer groups: a member beyond the partition count idles


def kustomization() -> dict[str, Any]:
    body = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert body["apiVersion"] == "kustomize.config.k8s.io/v1beta1" and body["kind"] == "Kustomization"
    return dict(body)


def load(path: Path) -> list[dict[str, Any]]:
    return [b for b in yaml.safe_load_all(path.read_text()) if b is not None]


def patch_files() -> list[Path]:
    return [OVERLAY / p["path"] for p in kustomization().get("patches", [])]


def extra_resources() -> list[Manifest]:
    """The overlay's own objects (files among its resources, beside the base directory)."""
    files = [OVERLAY / r for r in kustomization()["resources"] if (OVERLAY / r).is_file()]
    return [Manifest(f.name, body) for f in files for body in load(f)]


def merge(base: Any, patch: Any) -> Any:
    """Strategic merge as the patches here use it: mappings merge, lists of named items merge by
    name, any other value (a list of args, a string such as playscope.yaml) replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merge(base[k], v) if k in base else v for k, v in patch.items()}}
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(i, dict) and "name" in i
                                                                  for i in [*base, *patch]):  # fmt: skip
        names = {i["name"]: i for i in patch}
        merged = [merge(i, names.pop(i["name"])) if i["name"] in names else i for i in base]
        return merged + list(names.values())
    return patch


def with_image(body: dict[str, Any], images: list[dict[str, str]]) -> dict[str, Any]:
    if body["kind"] not in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return body
    for container in containers(pod_of(body), init=True):
        name, _, tag = container["image"].partition(":")
        for image in images:
            if image["name"] == name:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return body


@pytest.fixture(scope="module")
def rendered(manifests: list[Manifest]) -> list[Manifest]:
    """The overlay as kustomize builds it: the base, the patches merged in, the images renamed, its own files."""
    patches = {(b["kind"], b["metadata"]["name"]): b for f in patch_files() for b in load(f)}
    images = kustomization().get("images", [])
    out = [
        Manifest(m.file, with_image(merge(copy.deepcopy(m.body), patches.get((m.kind, m.name), {})), images))
        for m in manifests
    ]
    return out + extra_resources()


# --- 1. the kustomization and its patches -----------------------------------------------------------


def test_kustomization_references_only_files_that_exist() -> None:
    body = kustomization()
    bases = [OVERLAY / r for r in body["resources"] if (OVERLAY / r).is_dir()]
    assert [b.resolve() for b in bases] == [K8S.resolve()], "the overlay builds on deploy/k8s"
    for base in bases:  # kustomize refuses an overlay inside the base it builds on (a cycle)
        assert not OVERLAY.resolve().is_relative_to(base.resolve()), f"{OVERLAY} is under its base {base}"
        assert (base / "kustomization.yaml").is_file()
    files = [OVERLAY / r for r in body["resources"] if not (OVERLAY / r).is_dir()] + patch_files()
    for path in files:
        assert path.is_file(), f"{path.relative_to(ROOT)} does not exist"
    unused = {p.name for p in OVERLAY.glob("*.yaml")} - {p.name for p in files} - {"kustomization.yaml"}
    assert not unused, f"files the kustomization does not use: {sorted(unused)}"


def test_every_patch_targets_a_base_resource(manifests: list[Manifest]) -> None:
    base = {(m.kind, m.name): m.body for m in manifests}
    assert patch_files(), "no patches"
    for path in patch_files():
        for patch in load(path):
            key = (patch["kind"], patch["metadata"]["name"])
            assert key in base, f"{path.name}: {key} is not in the base"
            assert patch["apiVersion"] == base[key]["apiVersion"], f"{path.name}: {key}"
            assert patch["metadata"].get("namespace", "playscope") == base[key]["metadata"]["namespace"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_patched_resources_are_valid_against_the_kubernetes_schemas(rendered: list[Manifest], version: str) -> None:
    patched = {(b["kind"], b["metadata"]["name"]) for f in patch_files() for b in load(f)}
    checked = [m for m in rendered if (m.kind, m.name) in patched]
    assert len(checked) == len(patched)
    for m in checked:  # a misspelt or misplaced field in a patch fails strict validation of the result
        if m.kind in {"Deployment", "StatefulSet", "DaemonSet"}:  # the schema takes any resource name
            for c in containers(pod_of(m.body), init=True):
                for bound in c["resources"].values():
                    assert set(bound) <= RESOURCE_NAMES, f"{m.kind}/{m.name}: {set(bound) - RESOURCE_NAMES}"
        try:
            kubernetes_validate.validate(m.body, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            raise AssertionError(f"patched {m.kind}/{m.name}: {path}: {exc.message} (Kubernetes {version})") from None


def test_the_image_entry_renames_the_base_image(manifests: list[Manifest], rendered: list[Manifest]) -> None:
    base_images = {c["image"].partition(":")[0] for m in manifests if m.kind in {"Deployment", "StatefulSet",
                   "DaemonSet", "Job"} for c in containers(pod_of(m.body), init=True)}  # fmt: skip
    images = kustomization()["images"]
    for image in images:
        assert image["name"] in base_images, f"images: {image['name']} names no image of the base"
    after = {c["image"] for _n, w in workloads(rendered).items() for c in containers(pod_of(w), init=True)}
    assert after == {f"{i['newName']}:{i['newTag']}" for i in images}, after


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (its kustomize) is not installed")
def test_kubectl_kustomize_builds_what_is_checked_here(rendered: list[Manifest]) -> None:
    out = subprocess.run(["kubectl", "kustomize", str(OVERLAY)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    built = {(b["kind"], b["metadata"]["name"]): unordered(b) for b in yaml.safe_load_all(out.stdout)}
    assert built == {(m.kind, m.name): unordered(m.body) for m in rendered}


def unordered(value: Any) -> Any:
    """``value`` with lists of named items sorted by name: kustomize puts the patched ones first."""
    if isinstance(value, dict):
        return {k: unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [unordered(i) for i in value]
        named = all(isinstance(i, dict) and "name" in i for i in items)
        return sorted(items, key=lambda i: str(i["name"])) if named and items else items
    return value


# --- 2. the overlay as applied ----------------------------------------------------------------------


def test_production_collector_spools_on_a_sized_volume(rendered: list[Manifest], tmp_path: Path) -> None:
    name, pod, container = by_verb(rendered)["collector"]
    settings = settings_of(pod_view(rendered, name, pod, container, tmp_path / name), container)
    collector = settings.section("collector", CollectorConfig)
    assert collector.spool_dir is not None, "production stays ready through a Kafka outage only with a spool"
    assert_spool_on_a_volume(pod, container, collector)
    assert str(settings.home) in {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert parse_command(container["args"]).workers == int(container["resources"]["limits"]["cpu"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_consumers_stay_within_the_partitions(rendered: list[Manifest], tmp_path: Path) -> None:
    verbs = by_verb(rendered)
    for verb in PARTITIONED_VERBS:
        name, pod, container = verbs[verb]
        settings = settings_of(pod_view(rendered, name, pod, container, tmp_path / name), container)
        replicas = workloads(rendered)[name]["spec"]["replicas"]
        partitions = settings.kafka.partitions
        assert 1 <= replicas <= partitions, f"{name}: {replicas} pods for {partitions} partitions"
    hpa = next(m.body["spec"] for m in rendered if m.kind == "HorizontalPodAutoscaler")
    assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"]


# --- 3. the PodMonitor ------------------------------------------------------------------------------


def test_podmonitor_scrapes_every_component_on_its_annotated_port(rendered: list[Manifest]) -> None:
    monitors = [m.body for m in extra_resources() if m.kind == "PodMonitor"]
    assert len(monitors) == 1
    monitor = monitors[0]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["namespace"] == "playscope"
    spec = monitor["spec"]
    assert set(spec) <= PODMONITOR_FIELDS, f"unknown PodMonitor fields {set(spec) - PODMONITOR_FIELDS}"
    assert set(spec["selector"]) == {"matchLabels"}
    endpoints = spec["podMetricsEndpoints"]
    for endpoint in endpoints:
        assert set(endpoint) <= ENDPOINT_FIELDS, f"unknown endpoint fields {set(endpoint) - ENDPOINT_FIELDS}"
    scraped = 0
    for name, workload in workloads(rendered).items():
        pod = pod_of(workload)
        annotations = pod["metadata"].get("annotations", {})
        selected = spec["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        ports = {p["name"]: p["containerPort"] for c in containers(pod) for p in c.get("ports", [])}
        hits = [e for e in endpoints if selected and e["port"] in ports]
        if annotations.get("prometheus.io/scrape") != "true":
            assert not hits, f"{name} is scraped but serves no metrics"
            continue
        assert len(hits) == 1, f"{name}: scraped by {len(hits)} endpoints (ports {sorted(ports)})"
        assert ports[hits[0]["port"]] == int(annotations["prometheus.io/port"]), f"{name}: another port"
        assert hits[0].get("path", "/metrics") == annotations["prometheus.io/path"], name
        relabel = {r["targetLabel"]: r for r in hits[0]["relabelings"]}["job"]
        component = pod["metadata"]["labels"]["app.kubernetes.io/component"]
        assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
        job = relabel["replacement"].replace("$1", component)
        assert f"job_name: {job}\n" in (ROOT / "deploy/prometheus/prometheus.yml").read_text(), job
        scraped += 1
    assert scraped == 5  # collector, agent, streams, indexer, alerts
