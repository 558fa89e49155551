"""What the Slack and webhook channels put on the wire, read back by a real local HTTP receiver."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
from alerts_helpers import QOE, Receiver, produce, qoe_window, running_service, wait_for, write_rules

from alerts.notifiers.base import Notification
from alerts.notifiers.slack import SlackNotifier, SlackOptions
from playscope.config import Settings

HOSTILE = "<!channel> <https://evil|x> & co"
ESCAPED = "&lt;!channel&gt; &lt;https://evil|x&gt; &amp; co"


def _doc(**extra: Any) -> dict[str, Any]:
    return {"status": "firing", "rule": "cdn-rebuffering", "severity": "critical", "source": "qoe",
            "group": {"cdn": HOSTILE}, "group_key": f"cdn={HOSTILE}", "value": 0.4, "threshold": 0.05,
            "summary": f"cdn-rebuffering: rebuffer_ratio is 0.4 (> 0.05) for cdn={HOSTILE}",
            "since_ms": 1, "ts": 1, **extra}  # fmt: skip


def _send(notifier_cls: Any, options: Any, notification: Notification) -> None:
    async def go() -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            await notifier_cls("chan", options, http).send(notification)

    asyncio.run(go())


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def test_slack_escapes_values_from_data_and_keeps_its_own_markup(receiver: Receiver) -> None:
    dashboard = "http://grafana:3000/d/qoe?var-cdn=a|b&from=1&to=2"
    note = Notification(_doc(dashboard_url=dashboard), dedup_key=f"cdn-rebuffering|cdn={HOSTILE}")
    _send(SlackNotifier, SlackOptions(type="slack", url=f"{receiver.url}/slack"), note)
    (body,) = receiver.bodies("/slack")
    (attachment,) = body["attachments"]
    assert body["text"] == f"[FIRING] cdn-rebuffering: rebuffer_ratio is 0.4 (&gt; 0.05) for cdn={ESCAPED}"
    assert attachment["fields"][0] == {"title": "group", "value": f"*cdn*={ESCAPED}", "short": True}
    assert attachment["footer"] == f"dedup cdn-rebuffering|cdn={ESCAPED}"
    # the link this notifier builds works: the URL's "|" cannot end it early, "&" is escaped
    assert attachment["text"].endswith(
        "\n<http://grafana:3000/d/qoe?var-cdn=a%7Cb&amp;from=1&amp;to=2|dashboard>")
    assert attachment["title_link"] == dashboard and attachment["mrkdwn_in"] == ["text", "fields"]
    # nowhere in the payload does a raw "<" from the data survive (only the notifier's own link)
    for text in _strings(body):
        assert "<!channel>" not in text and "<https://evil" not in text
        assert " & co" not in text


def test_slack_through_the_evaluator_escapes_a_hostile_cdn(
    kafka_settings: Settings, receiver: Receiver, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, f"""
channels:
  team: {{type: slack, url: "{receiver.url}/slack"}}
rules:
  - {{name: cdn-rebuffering, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
      severity: critical, notify: [team]}}
""")  # fmt: skip
    with running_service(kafka_settings, rules):
        produce(kafka_settings, QOE, [qoe_window(0, HOSTILE, 0.4)])
        (body,) = wait_for(lambda: receiver.bodies("/slack"), 20, "the Slack message")
    assert ESCAPED in body["text"] and "<!channel>" not in body["text"]
    assert body["attachments"][0]["fields"][0]["value"] == f"*cdn*={ESCAPED}"
    assert all(b"<!channel>" not in r["raw"] and b"<https://evil" not in r["raw"] for r in receiver.requests)
