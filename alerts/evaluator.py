"""The evaluator: window records in, alert state changes out. Pure logic, no I/O.

It keeps one :class:`GroupState` per rule and group and a stream clock per source (the newest
``window_end`` seen across all groups). ``absent`` rules are judged on that clock, so they fire
the same way when history is replayed. When a whole source goes silent no window arrives to move
its clock; :meth:`Evaluator.tick` then lets the clock run on by the wall time that has passed
since the newest window arrived, minus a grace of one window plus the allowed lateness (the
wall-clock fallback). Every key it changed is left in ``dirty`` for the caller to persist.

A window can arrive again with corrected numbers and ``revision`` one higher (SPEC 7). It is
judged again: a revision can start or clear a condition, and a change is reported only when the
status changes, so a revision that leaves the condition as it was sends nothing. Each group
remembers its windows for ``horizon_ms`` (how far back a revision can reach; at least
``for + 4`` windows); a revision of a window older than that is ignored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from alerts.loader import RuleSet
from alerts.rule_types import DEFAULT_SUMMARY, Judging, Rule
from alerts.state import CLOCK_PREFIX, FIRING, OK, GroupState, clock_key, state_key
from playscope.timeparse import ms_to_rfc3339


@dataclass
class SourceClock:
    stream_end_ms: int = 0  # newest window_end seen
    advanced_wall_ms: int = 0  # wall time at which it last advanced


@dataclass(frozen=True)
class Change:
    """One alert state change: the rule, the group's state after it, and the SPEC 9 document."""

    rule: Rule
    state: GroupState
    doc: dict[str, Any]


class Evaluator:
    def __init__(
        self,
        ruleset: RuleSet,
        *,
        grace_ms: int = 70_000,
        horizon_ms: int = 250_000,
        wall_fallback: bool = True,
        dashboard_url: str = "",
        wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.rules = ruleset.rules
        self.rules_by_name = {r.name: r for r in ruleset.rules}
        self.states: dict[str, GroupState] = {}
        self.clocks: dict[str, SourceClock] = {"qoe": SourceClock(), "service": SourceClock()}
        self.grace_ms = grace_ms
        self.horizon_ms = horizon_ms
        self.wall_fallback = wall_fallback
        self.dashboard_url = dashboard_url
        self.wall_ms = wall_ms
        self.dirty: set[str] = set()

    # -- persistence ----------------------------------------------------------------------------

    def restore(self, records: Iterable[tuple[str, dict[str, Any] | None]]) -> int:
        """Load (key, document) pairs read back from the state topic; the last one per key wins."""
        count = 0
        now = self.wall_ms()
        for key, doc in records:
            if key.startswith(CLOCK_PREFIX):
                source = key[len(CLOCK_PREFIX):]
                if doc and source in self.clocks:
                    self.clocks[source] = SourceClock(int(doc["stream_end_ms"]), now)
                continue
            if doc is None:
                self.states.pop(key, None)
                continue
            state = GroupState.from_dict(doc)
            if state.rule in self.rules_by_name:  # state of a rule since removed is dropped
                self.states[key] = state
                count += 1
        return count

    def snapshot(self, key: str) -> dict[str, Any] | None:
        if key.startswith(CLOCK_PREFIX):
            clock = self.clocks[key[len(CLOCK_PREFIX):]]
            return {"stream_end_ms": clock.stream_end_ms}
        state = self.states.get(key)
        return state.to_dict() if state else None

    def take_dirty(self) -> list[str]:
        keys, self.dirty = sorted(self.dirty), set()
        return keys

    # -- evaluation -----------------------------------------------------------------------------

    def observe(self, source: str, record: dict[str, Any]) -> list[Change]:
        """Judge one closed window record of ``source`` ("qoe" or "service"), a first emission
        or a revision."""
        changes: list[Change] = []
        end = int(record["window_end"])
        clock = self.clocks[source]
        if end > clock.stream_end_ms:
            clock.stream_end_ms = end
            clock.advanced_wall_ms = self.wall_ms()
            self.dirty.add(clock_key(source))
        judging = Judging(clock.stream_end_ms, self.horizon_ms)
        for rule in self.rules:
            if rule.source != source:
                continue
            matched = rule.group_of(record)
            if matched is None:
                continue
            group_key, group = matched
            key = state_key(rule.name, group_key)
            state = self.states.get(key)
            if state is None:
                state = self.states[key] = GroupState(rule.name, group_key, group)
            before = state.to_dict()
            new_status = rule.on_window(state, record, judging)
            if state.to_dict() != before:
                self.dirty.add(key)
            if new_status is not None:
                changes.append(self._change(rule, state, new_status))
        changes += self._judge_clock(source, clock.stream_end_ms)
        return changes

    def tick(self) -> list[Change]:
        """Judge absence on each source's clock, moved on by wall time while the source is silent."""
        changes: list[Change] = []
        now = self.wall_ms()
        for source, clock in self.clocks.items():
            if not clock.stream_end_ms:
                continue
            end = clock.stream_end_ms
            if self.wall_fallback and clock.advanced_wall_ms:
                end += max(0, now - clock.advanced_wall_ms - self.grace_ms)
            changes += self._judge_clock(source, end)
        return changes

    def hold(self, ms: int) -> None:
        """Let ``ms`` of wall time not count toward the wall-clock fallback: the caller was cut
        off from Kafka or behind, so silence then says nothing about the sources."""
        for clock in self.clocks.values():
            if clock.advanced_wall_ms and ms > 0:
                clock.advanced_wall_ms += ms

    def _judge_clock(self, source: str, stream_end_ms: int) -> list[Change]:
        changes = []
        for state in self.states.values():
            rule = self.rules_by_name.get(state.rule)
            if rule is None or rule.source != source:
                continue
            new_status = rule.on_clock(state, stream_end_ms)
            if new_status is not None:
                self.dirty.add(state.key)
                changes.append(self._change(rule, state, new_status))
        return changes

    def _change(self, rule: Rule, state: GroupState, new_status: str) -> Change:
        state.status = new_status
        state.changed_ms = self.wall_ms()
        self.dirty.add(state.key)
        return Change(rule, state, alert_document(rule, state, self.dashboard_url, state.changed_ms))

    def firing(self) -> list[GroupState]:
        return [s for s in self.states.values() if s.status == FIRING]


def alert_document(rule: Rule, state: GroupState, dashboard_url: str, ts_ms: int) -> dict[str, Any]:
    """The SPEC 9 alert document (plus ``ts`` and ``group_key``) for ``state``'s current status."""
    described = rule.describe()
    status = "firing" if state.status == FIRING else "resolved"
    value = state.value
    fields: dict[str, Any] = {
        "rule": rule.name,
        "status": status,
        "severity": rule.severity,
        "source": rule.source,
        "metric": described["metric"],
        "op": described["op"],
        "threshold": described["threshold"],
        "value": value,
        "group_key": state.group_key,
        "group_text": ", ".join(f"{k}={v}" for k, v in state.group.items()) or "total",
        "window_start": state.window_start,
        "window_end": state.window_end,
        "window_start_iso": ms_to_rfc3339(state.window_start) if state.window_start else "",
        "window_end_iso": ms_to_rfc3339(state.window_end) if state.window_end else "",
        **{d: "" for d in ("cdn", "isp", "device", "country", "service", "route")},
        **state.group,
    }
    # values are percent-encoded in the link: a cdn of "a&from=0" must not change its query
    url_fields = {k: quote(v, safe="") if isinstance(v, str) else v for k, v in fields.items()}
    fields["dashboard_url"] = _safe_format(dashboard_url, url_fields) if dashboard_url else ""
    if value is not None:
        fields["value"] = round(value, 6)
    template = rule.summary or (
        "{rule}: {group_text} has sent no window for {value} windows (since {window_start_iso})"
        if rule.kind == "absent"
        else DEFAULT_SUMMARY
    )
    summary = _safe_format(template, fields)
    if status == "resolved":
        summary = f"RESOLVED {summary}"
    return {
        "ts": ts_ms,
        "status": status,
        "rule": rule.name,
        "severity": rule.severity,
        "source": rule.source,
        "metric": described["metric"],
        "group": dict(state.group),
        "group_key": state.group_key,
        "value": fields["value"],
        "threshold": described["threshold"],
        "window_start": state.window_start,
        "window_end": state.window_end,
        "summary": summary,
        "since_ms": state.changed_ms,
        "dashboard_url": fields["dashboard_url"],
        "labels": dict(rule.labels),
    }


def _safe_format(template: str, fields: dict[str, Any]) -> str:
    try:
        return template.format(**fields)
    except (KeyError, ValueError, IndexError, AttributeError) as exc:
        return f"{template} (template error: {exc})"


__all__ = ["OK", "Change", "Evaluator", "alert_document"]
