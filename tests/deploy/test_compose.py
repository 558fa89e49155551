"""docker-compose.yml, checked without a Docker engine: services, images, ports, dependencies,
health checks, mounted files, and that the components' commands are real CLI verbs."""

from __future__ import annotations

import argparse
import asyncio
import fnmatch
import glob
import importlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml

from alerts.loader import expand_env, load_rules
from alerts.notifiers.base import DeliveryError, Notification
from alerts.notifiers.webhook import WebhookNotifier, WebhookOptions
from collectors.agent.config import AgentConfig, load_agent_config
from collectors.agent.parsers import PARSERS
from dashboards.config import load as load_dashboards_config
from playscope.cli import VERBS, _verb_parser
from playscope.config import load_settings
from playscope.events import check_clock, validate_log_record
from playscope.metrics import DEFAULT_METRICS_PORTS
from playscope.stack.fetch import versions

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


# --- helpers: what a stock `docker compose up` (no .env, no overrides) hands each service ---------


def stock_env(svc: dict[str, Any]) -> dict[str, str]:
    """A service's environment with compose's ``${VAR:-default}`` taken at its default."""
    return {k: str(expand_env(str(v), {})) for k, v in (svc.get("environment") or {}).items()}


def mounted(svc: dict[str, Any], container_path: str) -> Path:
    """The checkout path a service mounts at ``container_path`` (or one of its parents)."""
    for volume in svc.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./") and (container_path + "/").startswith(target.rstrip("/") + "/"):
            return ROOT / source / container_path[len(target.rstrip("/")) :].lstrip("/")
    raise AssertionError(f"{container_path} is not mounted from the checkout")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


# --- 1. the default `oncall` channel reaches a receiver that takes POST ---------------------------


def oncall_url(compose: dict[str, Any]) -> str:
    """The `oncall` channel's URL as the alerts service loads it, through the project's loader."""
    alerts = compose["services"]["alerts"]
    rules_dir = option(alerts["command"], "-r")
    assert f"COPY alerts/rules {rules_dir}" in (ROOT / "Dockerfile").read_text()
    ruleset = load_rules(ROOT / "alerts/rules", environ=stock_env(alerts))
    options = ruleset.channels["oncall"].options
    assert isinstance(options, WebhookOptions)
    return options.url


def test_oncall_channel_points_at_the_compose_receiver(compose: dict[str, Any]) -> None:
    services = compose["services"]
    url = urlsplit(oncall_url(compose))
    assert url.hostname in services, f"oncall posts to {url.hostname}, not a compose service"
    receiver = services[url.hostname]
    assert receiver["entrypoint"][:1] == ["python"], "the receiver is the deploy/ script"
    assert int(option(receiver["command"], "--port")) == url.port
    script = mounted(receiver, receiver["entrypoint"][1])
    assert script == ROOT / "deploy/webhook/receiver.py" and script.is_file()
    assert services["alerts"]["depends_on"]["webhook"]["condition"] == "service_healthy"
    assert services["alerts"]["depends_on"]["setup"]["condition"] == "service_completed_successfully"
    assert f":{url.port}/healthz" in " ".join(receiver["healthcheck"]["test"])


@dataclass
class Receiver:
    base: str
    stdout: str = ""  # what it logged, once stopped


@contextmanager
def running_receiver(compose: dict[str, Any], secret: str) -> Iterator[Receiver]:
    """The compose's receiver script, started here with its compose command on a free port."""
    command = list(compose["services"]["webhook"]["command"])
    command[command.index("--port") + 1] = str(port := free_port())
    command[command.index("--host") + 1] = "127.0.0.1"
    env = {k: v for k, v in os.environ.items() if k != "PLAYSCOPE_ALERT_WEBHOOK_SECRET"}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy/webhook/receiver.py"), *command],
        env={**env, "PLAYSCOPE_ALERT_WEBHOOK_SECRET": secret} if secret else env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    receiver = Receiver(f"http://127.0.0.1:{port}")
    deadline = time.monotonic() + 10
    try:
        while True:
            try:
                httpx.get(f"{receiver.base}/healthz", timeout=1).raise_for_status()  # its compose health check
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, "the receiver did not start"
                time.sleep(0.05)
        yield receiver
    finally:
        proc.terminate()
        receiver.stdout = proc.communicate(timeout=10)[0]


def _notification() -> Notification:
    doc = {"status": "firing", "rule": "cdn_rebuffer", "severity": "warning", "group": {"cdn": "a"},
           "group_key": "cdn=a", "value": 0.2, "threshold": 0.05, "since_ms": 1700000000000}  # fmt: skip
    return Notification(doc=doc, dedup_key="cdn_rebuffer|cdn=a")


async def _send(url: str, secret: str | None) -> None:
    async with httpx.AsyncClient(timeout=5) as http:
        options = WebhookOptions(type="webhook", url=url, secret=secret)
        await WebhookNotifier("oncall", options, http).send(_notification())


def test_receiver_takes_the_webhook_notifiers_post(compose: dict[str, Any]) -> None:
    path = urlsplit(oncall_url(compose)).path
    with running_receiver(compose, secret="s3cret") as receiver:
        asyncio.run(_send(receiver.base + path, "s3cret"))  # the real notifier: DeliveryError unless 2xx
        for wrong in ("other", None):
            with pytest.raises(DeliveryError, match="HTTP 401"):
                asyncio.run(_send(receiver.base + path, wrong))


def test_receiver_logs_each_alert(compose: dict[str, Any]) -> None:
    path = urlsplit(oncall_url(compose)).path
    with running_receiver(compose, secret="") as receiver:  # the stock compose sets no secret
        asyncio.run(_send(receiver.base + path, None))
        asyncio.run(_send(receiver.base + path, None))
        assert httpx.get(receiver.base + path, timeout=2).status_code == 404
    lines = [json.loads(line) for line in receiver.stdout.splitlines()]
    assert [line["alert"]["dedup_key"] for line in lines] == ["cdn_rebuffer|cdn=a"] * 2
    assert {line["received"] for line in lines} == {path}


# --- 2. the log agent, its sample logs and its scrape job -----------------------------------------


def scrape_targets() -> dict[str, list[str]]:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        static = [t for sc in job.get("static_configs", []) for t in sc["targets"]]
        dns = [f"{name}:{sd['port']}" for sd in job.get("dns_sd_configs", []) for name in sd["names"]]
        targets[job["job_name"]] = static + dns
    return targets


def agent_config(compose: dict[str, Any]) -> AgentConfig:
    agent = compose["services"]["agent"]
    return load_agent_config(mounted(agent, option(agent["command"], "-c")))  # the agent's own validator


def test_agent_config_is_valid_and_scraped(compose: dict[str, Any]) -> None:
    config = agent_config(compose)
    assert config.sink.type == "kafka"
    assert scrape_targets()["playscope-agent"] == [f"agent:{config.metrics_port}"]
    assert compose["services"]["agent"]["environment"]["PLAYSCOPE_METRICS_HOST"] == "0.0.0.0"
    home = "/home/playscope"
    assert config.checkpoint_file.is_relative_to(home)
    assert any(v.endswith(f":{home}") and not v.startswith(".") for v in compose["services"]["agent"]["volumes"])


def written_sample_logs(compose: dict[str, Any], tmp_path: Path, rounds: int = 1, max_bytes: int = 1 << 20) -> Path:
    """Run the compose's sample-logs command here, its output under ``tmp_path`` as the shared home."""
    svc = compose["services"]["sample-logs"]
    out = PurePosixPath(option(svc["command"], "--out"))
    home = "/home/playscope"
    assert out.is_relative_to(home), "sample logs land outside the volume the agent shares"
    assert (
        "agent-home:/home/playscope" in svc["volumes"]
        and "agent-home:/home/playscope" in (compose["services"]["agent"]["volumes"])
    )
    script = mounted(svc, svc["entrypoint"][1])
    assert script == ROOT / "deploy/sample-logs/replay.py"
    target = tmp_path / out.relative_to(home)
    for _ in range(rounds):
        subprocess.run([sys.executable, str(script), "--out", str(target), "--once", "--max-bytes", str(max_bytes)],
                       check=True, timeout=30)  # fmt: skip
    return tmp_path


def test_sample_logs_are_read_by_the_agent_config_as_valid_records(compose: dict[str, Any], tmp_path: Path) -> None:
    home = written_sample_logs(compose, tmp_path)
    config = agent_config(compose)
    settings = load_settings(environ=stock_env(compose["services"]["agent"]))
    ahead_ms, behind_ms = settings.clock_bounds_ms()
    now_ms = int(time.time() * 1000)
    services = set()
    for source in config.inputs:
        parse = PARSERS[source.parser](source.pattern, source.time_format)
        files = [f for pattern in source.paths
                 for f in glob.glob(str(home / PurePosixPath(pattern).relative_to("/home/playscope")))]  # fmt: skip
        assert files, f"no sample log matches {source.paths}"
        for file in files:
            for line in Path(file).read_text().splitlines():
                record = parse(line)
                for key, value in source.fields.items():
                    record.setdefault(key, value)
                if source.service:
                    record.setdefault("service", source.service)
                record.setdefault("host", config.host)
                record = validate_log_record(record)  # what the agent does with each line
                check_clock(record, now_ms, ahead_ms, behind_ms)
                services.add(record["service"])
    assert services == {"edge", "api"}


def test_sample_logs_rotate_into_names_the_agent_still_reads(compose: dict[str, Any], tmp_path: Path) -> None:
    home = written_sample_logs(compose, tmp_path, rounds=3, max_bytes=1024)
    rotated = sorted(p.name for p in home.rglob("*.1"))
    assert rotated == ["access.log.1", "api.ndjson.1"]
    patterns = [p for source in agent_config(compose).inputs for p in source.paths]
    for path in home.rglob("*.1"):
        in_container = f"/home/playscope/{path.relative_to(home).as_posix()}"
        assert any(fnmatch.fnmatch(in_container, pattern) for pattern in patterns), in_container


# --- 3. OpenSearch as a profile, the one-shot dashboards job ---------------------------------------


def test_opensearch_is_a_profile_with_a_health_check(compose: dict[str, Any]) -> None:
    services = compose["services"]
    opensearch = services["opensearch"]
    assert opensearch["profiles"] == ["opensearch"]
    assert opensearch["healthcheck"]["test"]
    without_profile = {name for name, svc in services.items() if not svc.get("profiles")}
    for name in without_profile:
        assert "opensearch" not in (services[name].get("depends_on") or {}), f"{name} needs the profile"
    settings = load_settings(environ={**stock_env(services["setup"]), "PLAYSCOPE_BACKEND": "opensearch"})
    assert settings.search.url == "http://opensearch:9200"


def test_dashboards_job_provisions_grafana_and_kibana_once_they_are_healthy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    job = services["dashboards"]
    assert job["command"] == ["dashboards", "provision"] and job["restart"] == "no"
    assert {dep: c["condition"] for dep, c in job["depends_on"].items()} == {
        "grafana": "service_healthy",
        "kibana": "service_healthy",
    }
    cfg = load_dashboards_config(load_settings(environ=stock_env(job)))
    assert cfg.grafana_password == stock_env(services["grafana"])["GF_SECURITY_ADMIN_PASSWORD"]
    # the data sources are file-provisioned read-only, which the API may not overwrite
    provisioned = yaml.safe_load((ROOT / "dashboards/grafana/provisioning/datasources/playscope.yaml").read_text())
    assert all(ds.get("editable") is False for ds in provisioned["datasources"])
    assert cfg.grafana_datasources is False


# --- every service: commands, configs, URLs, versions ---------------------------------------------


def container_ports(svc: dict[str, Any]) -> set[int]:
    """Ports a service listens on inside the network: published ones and its health check's."""
    ports = {int(str(p).split(":")[-1]) for p in svc.get("ports", [])}
    check = " ".join(svc.get("healthcheck", {}).get("test", []))
    return ports | {int(port) for port in re.findall(r"localhost:(\d+)", check)}


def playscope_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if s.get("build") == "." and "entrypoint" not in s}


def parse_command(command: list[str]) -> argparse.Namespace:
    """``playscope VERB ARGS...`` parsed by the verb's own parser (SystemExit on a flag it does not take)."""
    verb, *rest = command
    parser = _verb_parser(verb)
    importlib.import_module(VERBS[verb].module).add_arguments(parser)
    return parser.parse_args(rest)


def test_every_playscope_command_parses_and_its_settings_load(compose: dict[str, Any]) -> None:
    names = playscope_services(compose)
    assert set(names) >= COMPONENTS | {"setup", "agent", "dashboards"}
    for svc in names.values():
        parse_command([str(expand_env(arg, {})) for arg in svc["command"]])
        load_settings(environ=stock_env(svc))  # ConfigError on a bad override


def test_every_url_names_a_service_and_a_port_it_listens_on(compose: dict[str, Any]) -> None:
    services = compose["services"]
    listening = {name: container_ports(svc) for name, svc in services.items()}
    listening["webhook"] |= {int(option(services["webhook"]["command"], "--port"))}
    listening["agent"] |= {agent_config(compose).metrics_port or 9181}
    listening["kafka"] |= {9092}
    for name, svc in playscope_services(compose).items():
        verb = svc["command"][0]
        if verb in DEFAULT_METRICS_PORTS:  # /metrics on the component's default port
            listening[name] |= {DEFAULT_METRICS_PORTS[verb]}
    urls: list[tuple[str, str]] = []
    for name, svc in services.items():
        for key, value in stock_env(svc).items():
            if key == "PLAYSCOPE_KAFKA":
                value = f"kafka://{value}"
            if re.match(r"^[a-z]+://", value) and key != "PLAYSCOPE__ALERTS__DASHBOARD_URL":  # a browser link
                urls.append((f"{name}.{key}", value))
    for job, targets in scrape_targets().items():
        urls += [(f"prometheus job {job}", f"http://{target}") for target in targets]
    datasources = yaml.safe_load((ROOT / "dashboards/grafana/provisioning/datasources/playscope.yaml").read_text())
    urls += [(f"grafana datasource {ds['uid']}", ds["url"]) for ds in datasources["datasources"]]
    am = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())["alerting"]["alertmanagers"]
    urls += [("prometheus alerting", f"http://{t}") for a in am for sc in a["static_configs"] for t in sc["targets"]]
    assert len(urls) > 20
    for where, url in urls:
        parts = urlsplit(url)
        assert parts.hostname in services, f"{where}: {url} names no service"
        assert parts.port in listening[parts.hostname], f"{where}: {parts.hostname} does not listen on {parts.port}"


def test_image_versions_are_the_poms(compose: dict[str, Any]) -> None:
    pinned = versions()  # the pom's properties, as `playscope stack` reads them
    images = {name: svc["image"] for name, svc in compose["services"].items()}
    assert images["kafka"] == f"apache/kafka:{pinned['kafka']}"
    assert images["elasticsearch"] == f"docker.elastic.co/elasticsearch/elasticsearch:{pinned['elasticsearch']}"
    assert images["kibana"] == f"docker.elastic.co/kibana/kibana:{pinned['elasticsearch']}"
    assert images["opensearch"] == f"opensearchproject/opensearch:{pinned['opensearch']}"
    for name, image in images.items():
        tag = image.rpartition(":")[2]
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a release"
