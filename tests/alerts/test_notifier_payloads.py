"""What the Slack and webhook channels put on the wire, read back by a real local HTTP receiver."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from alerts_helpers import QOE, Receiver, free_port, produce, qoe_window, running_service, wait_for, write_rules

from alerts.notifiers.base import Notification
from alerts.notifiers.slack import SlackNotifier, SlackOptions
from alerts.notifiers.webhook import WebhookNotifier, WebhookOptions, sign_timestamped, verify_signature
from playscope.config import Settings

README = Path(__file__).resolve().parents[2] / "alerts" / "README.md"

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


# --- webhook signatures ---------------------------------------------------------------------

Verifier = Callable[..., bool]


def _readme_verifier() -> Verifier:
    """The verification snippet of alerts/README.md, run as a receiver would copy it."""
    text = README.read_text()
    (code,) = re.findall(r"<!-- verify-snippet -->\n```python\n(.*?)```", text, re.S)
    namespace: dict[str, Any] = {}
    exec(compile(code, str(README), "exec"), namespace)
    return namespace["verify_signature"]  # type: ignore[no-any-return]


@pytest.fixture(params=["module", "readme"])
def verify(request: pytest.FixtureRequest) -> Verifier:
    return verify_signature if request.param == "module" else _readme_verifier()


def test_webhook_request_verifies_at_the_receiver(receiver: Receiver, verify: Verifier) -> None:
    opts = WebhookOptions(type="webhook", url=f"{receiver.url}/hook", secret="s3cret", headers={"x-team": "video"})
    _send(WebhookNotifier, opts, Notification(_doc(), dedup_key="cdn-rebuffering|cdn=a"))
    (request,) = receiver.requests
    body, headers = request["raw"], request["headers"]
    header = headers["X-Playscope-Signature-256"]
    t = int(re.fullmatch(r"t=(\d+),v1=[0-9a-f]{64}", header)[1])  # type: ignore[index]
    assert abs(time.time() - t) < 5
    assert verify(header, body, "s3cret")
    # the older header is still sent, unchanged
    assert headers["X-Playscope-Signature"] == "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["x-team"] == "video"
    # what a receiver must refuse
    assert not verify(header, body.replace(b"critical", b"warning"), "s3cret")  # tampered body
    assert not verify(header, body + b" ", "s3cret")
    assert not verify(header, body, "other-secret")
    assert not verify(header, body, "s3cret", now=t + 301)  # replayed after the tolerance
    assert verify(header, body, "s3cret", now=t + 299)
    assert not verify(header, body, "s3cret", now=t + 61, tolerance_s=60)
    assert not verify(header, body, "s3cret", now=t - 301)  # from the future
    # a signature made over another t does not verify with this t
    forged = f"t={t + 100},{header.split(',')[1]}"
    assert not verify(forged, body, "s3cret", now=t + 100)


def test_webhook_signature_rotation_and_spacing(verify: Verifier) -> None:
    body = b'{"a":1}'
    good = sign_timestamped("k", body, 1_700_000_000)
    t_part, v1_part = good.split(",")
    assert verify(f" {t_part} , {v1_part} ", body, "k", now=1_700_000_000)
    assert verify(f"{t_part},v1={'0' * 64},{v1_part}", body, "k", now=1_700_000_000)  # any v1 may match
    assert not verify(f"{t_part},v1={'0' * 64}", body, "k", now=1_700_000_000)


SIG = "v1=" + "a" * 64
MALFORMED: list[Any] = [
    None, b"t=1700000000," + SIG.encode(), 1700000000, "", ",", ",,,,", "garbage", "t=", "v1=", "t=1700000000",
    SIG, f"t=,{SIG}", f"t=abc,{SIG}", f"t=-1700000000,{SIG}", f"t=1.7e9,{SIG}", f"t=\u00b2,{SIG}",
    f"t=\u0661\u0667,{SIG}", f"t={'9' * 5000},{SIG}", f"t=1700000000,t=1700000000,{SIG}",
    "t=1700000000,v1=\u00e9\u00e9", "t=1700000000,v1=\ud800", "t=1700000000,v2=" + "a" * 64,
    "t=1700000000,v1", "=,=,=", "t=1700000000;" + SIG, "t=1700000000," + SIG * 2000,
]


@pytest.mark.parametrize("header", MALFORMED)
def test_webhook_malformed_signature_headers_are_false_never_an_exception(verify: Verifier, header: Any) -> None:
    assert verify(header, b"{}", "k", now=1_700_000_000) is False


def test_webhook_non_bytes_body_is_false(verify: Verifier) -> None:
    header = sign_timestamped("k", b"{}", 1_700_000_000)
    assert verify(header, b"{}", "k", now=1_700_000_000) is True
    assert verify(header, "{}", "k", now=1_700_000_000) is False


class FlakyReceiver:
    """Answers 503 to the first ``failures`` POSTs, then 200; records each one."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[float, dict[str, str], bytes, int]] = []
        self.port = free_port()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                code = 503 if len(outer.requests) < outer.failures else 200
                outer.requests.append((time.time(), dict(self.headers), body, code))
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky() -> Iterator[FlakyReceiver]:
    server = FlakyReceiver(failures=1)
    yield server
    server.close()


def test_webhook_retry_is_signed_again_with_a_fresh_t(
    kafka_settings: Settings, flaky: FlakyReceiver, tmp_path: Path
) -> None:
    rules = write_rules(tmp_path, f"""
channels:
  oncall: {{type: webhook, url: "http://127.0.0.1:{flaky.port}/hook", secret: s3cret}}
rules:
  - {{name: cdn-rebuffering, source: qoe, metric: rebuffer_ratio, group_by: [cdn], op: ">", threshold: 0.05,
      notify: [oncall]}}
""")  # fmt: skip
    # the first retry waits 1.3 s +- 20 %, so the two attempts fall in different seconds
    with running_service(kafka_settings, rules, retry_initial_s=1.3, retry_max_s=2.0):
        produce(kafka_settings, QOE, [qoe_window(0, "edge-1", 0.4)])
        wait_for(lambda: any(r[3] == 200 for r in flaky.requests), 30, "the retried webhook")
    (_, h1, b1, c1), (at2, h2, b2, c2) = flaky.requests[:2]
    assert (c1, c2) == (503, 200) and b1 == b2  # the same notification
    t1, t2 = (int(h["X-Playscope-Signature-256"].split(",")[0][2:]) for h in (h1, h2))
    assert t2 > t1
    assert verify_signature(h2["X-Playscope-Signature-256"], b2, "s3cret", now=at2)
    assert not verify_signature(h1["X-Playscope-Signature-256"], b2, "s3cret", now=t1 + 301)
    assert h1["X-Playscope-Signature"] == h2["X-Playscope-Signature"]  # the older header has no t
