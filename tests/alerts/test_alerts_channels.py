"""Email (aiosmtpd), a real Alertmanager, and `absent`, through the running evaluator."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from alerts_helpers import (
    QOE,
    Receiver,
    free_port,
    produce,
    qoe_window,
    running_service,
    wait_for,
    write_rules,
)

from playscope.config import Settings


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def test_email_firing_and_resolved(kafka_settings: Settings, smtp: tuple[Inbox, int], tmp_path: Path) -> None:
    inbox, port = smtp
    rules = write_rules(tmp_path, f"""
channels:
  mail: {{type: email, host: 127.0.0.1, port: {port}, from: alerts@example.org, to: [oncall@example.org]}}
rules:
  - {{name: cdn-rebuffering, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
      for: 1, severity: critical, notify: [mail]}}
""")  # fmt: skip
    with running_service(kafka_settings, rules):
        produce(kafka_settings, QOE, [qoe_window(0, "edge-1", 0.4)])
        wait_for(lambda: inbox.messages, 20, "the firing email")
        produce(kafka_settings, QOE, [qoe_window(1, "edge-1", 0.0)])
        wait_for(lambda: len(inbox.messages) >= 2, 20, "the resolved email")
    firing, resolved = inbox.messages
    assert firing["Subject"] == "[FIRING] cdn-rebuffering (critical)"
    assert resolved["Subject"].startswith("[RESOLVED]")
    assert firing["To"] == "oncall@example.org" and "edge-1" in firing.get_payload()
    assert firing["X-Playscope-Dedup-Key"] == "cdn-rebuffering|cdn=edge-1"


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        pytest.fail("Alertmanager is not installed (Debian package prometheus-alertmanager)")
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: blackhole}\nreceivers: [{name: blackhole}]\n")
    port = free_port()
    proc = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, 30, "alertmanager")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _am_alerts(url: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/api/v2/alerts", params={"filter": 'alertname="cdn-rebuffering"'}).json())


def test_alertmanager_receives_firing_then_resolved(
    kafka_settings: Settings, alertmanager: str, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, f"""
channels:
  am: {{type: alertmanager, url: "{alertmanager}", labels: {{team: video}}}}
rules:
  - {{name: cdn-rebuffering, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
      severity: critical, notify: [am]}}
""")  # fmt: skip
    with running_service(kafka_settings, rules):
        produce(kafka_settings, QOE, [qoe_window(0, "edge-1", 0.4), qoe_window(0, "edge-2", 0.01)])
        (alert,) = wait_for(lambda: _am_alerts(alertmanager), 20, "the alert in Alertmanager")
        assert alert["status"]["state"] == "active"
        assert alert["labels"] == {"alertname": "cdn-rebuffering", "severity": "critical", "source": "qoe",
                                   "group_key": "cdn=edge-1", "cdn": "edge-1", "team": "video"}  # fmt: skip
        assert "edge-1" in alert["annotations"]["summary"]
        produce(kafka_settings, QOE, [qoe_window(1, "edge-1", 0.0)])
        wait_for(lambda: not _am_alerts(alertmanager), 20, "the alert to be resolved in Alertmanager")
    # resolved alerts are kept (not active) until Alertmanager garbage-collects them
    everything = httpx.get(f"{alertmanager}/api/v2/alerts", params={"active": "false"}).json()
    assert all(a["labels"]["cdn"] == "edge-1" for a in everything)


def test_absent_fires_when_a_group_stops_and_resolves_when_it_returns(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, f"""
channels:
  oncall: {{type: webhook, url: "{receiver.url}/hook"}}
rules:
  - {{name: cdn-silent, type: absent, source: qoe, group_by: [cdn], for: 3, notify: [oncall]}}
""")  # fmt: skip
    with running_service(kafka_settings, rules):
        produce(kafka_settings, QOE, [qoe_window(i, "a", 0.0) for i in range(2)]
                + [qoe_window(i, "b", 0.0) for i in range(4)])  # fmt: skip
        time.sleep(1.5)
        assert receiver.bodies() == []  # a missed windows 2 and 3: two, not three
        produce(kafka_settings, QOE, [qoe_window(4, "b", 0.0)])
        (hook,) = wait_for(lambda: receiver.bodies("/hook"), 20, "the absent alert")
        assert hook["status"] == "firing" and hook["group"] == {"cdn": "a"} and hook["value"] == 3
        produce(kafka_settings, QOE, [qoe_window(5, "a", 0.0)])
        wait_for(lambda: len(receiver.bodies("/hook")) >= 2, 20, "the absent resolve")
    assert [h["status"] for h in receiver.bodies("/hook")] == ["firing", "resolved"]
