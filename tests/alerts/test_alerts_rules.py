"""Rules files: the SPEC 9 example loads as written; mistakes are named by file, rule and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.loader import RulesError, load_rules
from alerts.notifiers.webhook import WebhookOptions
from alerts.rule_types import AbsentRule, ThresholdRule

HERE = Path(__file__).parent
DEFAULT_RULES = HERE.parents[1] / "alerts" / "rules"


def test_spec9_example_loads_as_written() -> None:
    ruleset = load_rules(HERE / "spec9_rules.yaml")
    assert set(ruleset.channels) == {"oncall", "team-slack"}
    hook = ruleset.channels["oncall"].options
    assert isinstance(hook, WebhookOptions) and hook.secret == "s3cret"
    rebuffer, silent = ruleset.rules
    assert isinstance(rebuffer, ThresholdRule)
    assert (rebuffer.metric, rebuffer.op, rebuffer.threshold) == ("rebuffer_ratio", ">", 0.05)
    assert (rebuffer.for_windows, rebuffer.min_volume, rebuffer.repeat_interval) == (2, 20, 3600)
    assert rebuffer.notify == ["oncall", "team-slack"] and rebuffer.group_name == "cdn"
    assert isinstance(silent, AbsentRule) and silent.for_windows == 3


def test_default_rules_load() -> None:
    ruleset = load_rules(DEFAULT_RULES, environ={})
    names = {r.name for r in ruleset.rules}
    assert {"cdn-rebuffer-ratio", "cdn-failure-rate", "device-failure-rate", "startup-time-p95",
            "service-error-rate", "service-latency-p99", "cdn-silent"} <= names  # fmt: skip


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


CHANNELS = 'channels:\n  hook: {type: webhook, url: "http://127.0.0.1:1/x"}\n'


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ("{name: r1, source: qoe, metric: rebufer_ratio, op: '>', threshold: 1}",
         "rule 'r1': metric: 'rebufer_ratio' is not a qoe metric"),
        ("{name: r2, source: qoe, metric: rebuffer_ratio, op: '=>', threshold: 1}", "rule 'r2': op:"),
        ("{name: r3, source: qoe, metric: rebuffer_ratio, op: '>', threshold: 1, notfy: [hook]}",
         "rule 'r3': notfy: unknown key"),
        ("{name: r4, source: qoe, metric: rebuffer_ratio, op: '>', threshold: 1, notify: [pager]}",
         "rule 'r4': notify: unknown channel 'pager'"),
        ("{name: r5, source: service, metric: error_rate, op: '>', threshold: 1, group_by: [cdn]}",
         "rule 'r5': group_by: 'cdn' is not a service dimension"),
        ("{name: r6, type: absent, source: qoe, group_by: [cdn], for: 0}", "rule 'r6': for:"),
        ("{name: r7, type: trend, source: qoe}", "rule 'r7': type: 'trend' is not a rule type"),
        ("{name: r8, source: qoe, metric: failure_rate, op: '>', threshold: 1, repeat_interval: soon}",
         "rule 'r8': repeat_interval:"),
        ("{name: r9, source: qoe, metric: failure_rate, op: '>', threshold: 1, summary: '{valeu}'}",
         "rule 'r9': summary: unknown placeholder {valeu}"),
        ("{source: qoe, metric: failure_rate, op: '>', threshold: 1}", "rules[0]: name:"),
    ],
)  # fmt: skip
def test_rule_errors_name_file_rule_and_key(tmp_path: Path, rule: str, expected: str) -> None:
    path = _write(tmp_path, CHANNELS + f"rules:\n  - {rule}\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_channel_errors_name_channel_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "channels:\n  mail: {type: email, host: x}\n  bad: {type: pager}\n")
    with pytest.raises(RulesError) as caught:
        load_rules(path)
    text = str(caught.value)
    assert "channel 'mail': to: Field required" in text
    assert "channel 'bad': type: 'pager' is not a channel type" in text


def test_channel_reads_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, 'channels:\n  hook: {type: webhook, url: "${HOOK_URL:-http://d/x}"}\n')
    assert load_rules(path, environ={}).channels["hook"].options.url == "http://d/x"  # type: ignore[attr-defined]
    env = {"HOOK_URL": "http://e/y"}
    assert load_rules(path, environ=env).channels["hook"].options.url == "http://e/y"  # type: ignore[attr-defined]
    missing = _write(tmp_path, 'channels:\n  hook: {type: webhook, url: "${NOPE}"}\n')
    with pytest.raises(RulesError, match="NOPE is not set"):
        load_rules(missing, environ={})


def test_duplicate_rule_names_rejected(tmp_path: Path) -> None:
    rule = "{name: same, type: absent, source: qoe, group_by: [cdn]}"
    path = _write(tmp_path, f"rules:\n  - {rule}\n  - {rule}\n")
    with pytest.raises(RulesError, match="rule 'same': name: another rule has this name"):
        load_rules(path)
