"""docker-compose.yml, checked without a Docker engine: services, images, ports, dependencies,
health checks, mounted files, and that the components' commands are real CLI verbs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from playscope.cli import VERBS

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"kafka", "elasticsearch", "kibana", "grafana", "prometheus", "alertmanager"}
COMPONENTS = {"collector", "streams", "indexer", "alerts"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= INFRA | COMPONENTS | {"setup"}


def test_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        image = svc.get("image", "")
        assert ":" in image and not image.endswith(":latest"), f"{name}: image {image!r} not pinned"


def test_infrastructure_has_health_checks_and_components_wait_for_them(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in INFRA:
        assert "healthcheck" in services[name], name
        assert services[name]["healthcheck"]["test"], name
    for name, svc in services.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            condition = cond["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep} health, which has no check"
    setup = services["setup"]["depends_on"]
    assert setup["kafka"]["condition"] == setup["elasticsearch"]["condition"] == "service_healthy"
    for name in COMPONENTS:
        assert services[name]["depends_on"]["setup"]["condition"] == "service_completed_successfully"


def test_ports_match_the_contract(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = {name: [str(p) for p in svc.get("ports", [])] for name, svc in services.items()}
    assert "9092:9092" in published["kafka"]
    assert "9200:9200" in published["elasticsearch"]
    assert "8080:8080" in published["collector"]
    host_ports = [p.split(":")[0] for ports in published.values() for p in ports]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"


def test_components_run_real_verbs_from_the_dockerfile_image(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert (ROOT / "Dockerfile").is_file()
    for name in [*COMPONENTS, "setup"]:
        svc = services[name]
        assert svc["build"] == "."
        assert svc["command"][0] in VERBS, f"{name}: unknown verb {svc['command'][0]}"
        env = svc["environment"]
        assert env["PLAYSCOPE_KAFKA"] == "kafka:9092"
        assert env["PLAYSCOPE_ES"] == "http://elasticsearch:9200"


def test_streams_and_indexer_scale_out(compose: dict[str, Any]) -> None:
    for name in ("streams", "indexer"):
        assert compose["services"][name]["deploy"]["replicas"] >= 2


def test_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_prometheus_scrapes_every_component() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {f"playscope-{c}" for c in COMPONENTS} <= jobs
