"""Per rule and group alert state: what the evaluator must remember across a restart.

One :class:`GroupState` per rule and group is written (as JSON, keyed ``rule|group_key``) to the
compacted state topic after every change, and read back at start-up. It holds the recent
window verdicts with their revision (so a window delivered twice counts once, a revised window
replaces its earlier verdict, and windows are judged in window order), what the forgotten
windows before them came to (``base_*``: the status and the breaching run they left), the alert
status, and what each channel was last told (so a restart finishes a delivery that was cut
short instead of losing it or repeating it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OK = "ok"
FIRING = "firing"


@dataclass
class GroupState:
    rule: str
    group_key: str
    group: dict[str, str]
    status: str = OK
    # window_start -> [window_end, value or None, verdict, revision]; verdict 1 breach, 0 clear,
    # None skipped; revision as in SPEC 7 (0 first emission)
    windows: dict[int, list[Any]] = field(default_factory=dict)
    # What the windows forgotten so far came to: the status after the last of them, the run of
    # consecutive breaching windows ending with it, and its window_end (0: none forgotten yet).
    base_status: str = OK
    base_run: int = 0
    base_end: int = 0
    last_end: int = 0  # newest window_end seen for this group
    width_ms: int = 0
    value: float | None = None
    window_start: int | None = None
    window_end: int | None = None
    changed_ms: int = 0
    # channel -> [status last delivered ("firing" / "ok"), wall ms of that delivery]
    delivered: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return state_key(self.rule, self.group_key)

    def delivered_status(self, channel: str) -> str:
        entry = self.delivered.get(channel)
        return str(entry[0]) if entry else OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "group_key": self.group_key,
            "group": self.group,
            "status": self.status,
            "windows": {str(k): v for k, v in self.windows.items()},
            "base_status": self.base_status,
            "base_run": self.base_run,
            "base_end": self.base_end,
            "last_end": self.last_end,
            "width_ms": self.width_ms,
            "value": self.value,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "changed_ms": self.changed_ms,
            "delivered": self.delivered,
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GroupState:
        status = str(doc.get("status", OK))
        return cls(
            rule=str(doc["rule"]),
            group_key=str(doc["group_key"]),
            group={str(k): str(v) for k, v in dict(doc.get("group") or {}).items()},
            status=status,
            # entries saved before revisions existed have three fields: revision 0
            windows={int(k): [*list(v)[:4], *[0] * (4 - len(v))] for k, v in dict(doc.get("windows") or {}).items()},
            # a state saved before the base was kept: its status stands for what came before
            base_status=str(doc.get("base_status", status)),
            base_run=int(doc.get("base_run") or 0),
            base_end=int(doc.get("base_end") or 0),
            last_end=int(doc.get("last_end") or 0),
            width_ms=int(doc.get("width_ms") or 0),
            value=doc.get("value"),
            window_start=doc.get("window_start"),
            window_end=doc.get("window_end"),
            changed_ms=int(doc.get("changed_ms") or 0),
            delivered={str(k): list(v) for k, v in dict(doc.get("delivered") or {}).items()},
        )


def state_key(rule: str, group_key: str) -> str:
    """The Kafka key of a rule and group, in the state topic and in playscope.alerts."""
    return f"{rule}|{group_key}"


CLOCK_PREFIX = "__clock__|"


def clock_key(source: str) -> str:
    """State-topic key of a source's stream clock (newest window_end seen)."""
    return f"{CLOCK_PREFIX}{source}"
