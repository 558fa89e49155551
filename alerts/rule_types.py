"""Rule types: small classes that say when a group breaches, mapped by name in RULE_TYPES.

A rule is validated once, at load, by pydantic (unknown keys are errors). Each type answers
two questions about one group's :class:`~alerts.state.GroupState`: what a window record means
(:meth:`on_window`; a first emission or a revision of one, SPEC 7) and what the passing of
stream time means (:meth:`on_clock`). Both return the new status when the alert changes state,
else ``None``; the evaluator does the rest.
"""

from __future__ import annotations

import operator
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from alerts.durations import parse_duration_s
from alerts.state import FIRING, OK, GroupState
from playscope import indices

Source = Literal["qoe", "service"]
Duration = Annotated[float, BeforeValidator(parse_duration_s)]

# Dimensions that may form a group, in the order SPEC 7-8 joins them into `group`.
GROUP_DIMENSIONS: dict[str, tuple[str, ...]] = {
    "qoe": ("cdn", "isp", "device", "country"),
    "service": ("service", "route"),
}
VOLUME_METRIC: dict[str, str] = {"qoe": "attempts", "service": "requests"}
_NUMERIC = ({"type": "long"}, {"type": "double"})
_NOT_METRICS = frozenset({"window_start", "window_end", "revision"})  # identity, not measures
METRICS: dict[str, tuple[str, ...]] = {
    "qoe": tuple(k for k, v in indices.QOE_PROPS.items() if v in _NUMERIC and k not in _NOT_METRICS),
    "service": tuple(k for k, v in indices.SERVICE_PROPS.items() if v in _NUMERIC and k not in _NOT_METRICS),
}
OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
DEFAULT_SUMMARY = (
    "{rule}: {metric} is {value} ({op} {threshold}) for {group_text}, window {window_start_iso}"
)
SUMMARY_FIELDS = {
    "rule", "status", "severity", "source", "metric", "op", "threshold", "value", "group_text",
    "group_key", "window_start", "window_end", "window_start_iso", "window_end_iso", "dashboard_url",
    *GROUP_DIMENSIONS["qoe"], *GROUP_DIMENSIONS["service"],
}  # fmt: skip


class Rule(BaseModel):
    """Keys every rule type shares (see alerts/README.md for each key)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    kind: ClassVar[str] = ""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")
    source: Source
    group_by: list[str] = Field(default_factory=list)
    where: dict[str, str | list[str]] = Field(default_factory=dict)
    for_windows: int = Field(default=1, ge=1, le=10_000, alias="for")
    severity: str = "warning"
    notify: list[str] = Field(default_factory=list)
    summary: str | None = None
    repeat_interval: Duration = 4 * 3600.0
    labels: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @model_validator(mode="after")
    def _check_dimensions(self) -> Rule:
        dims = GROUP_DIMENSIONS[self.source]
        for dim in self.group_by:
            if dim not in dims:
                raise ValueError(f"group_by: {dim!r} is not a {self.source} dimension (one of {list(dims)})")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("group_by: a dimension is listed twice")
        if self.summary is not None:
            _check_template(self.summary)
        return self

    @field_validator("where")
    @classmethod
    def _where_values(cls, value: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        for key, wanted in value.items():
            if isinstance(wanted, list) and not wanted:
                raise ValueError(f"{key}: an empty list matches nothing")
        return value

    # -- matching -----------------------------------------------------------------------------

    @property
    def group_name(self) -> str:
        """The `group` field of the window records this rule reads (SPEC 7-8)."""
        ordered = [d for d in GROUP_DIMENSIONS[self.source] if d in self.group_by]
        return "+".join(ordered) if ordered else "total"

    def group_of(self, record: dict[str, Any]) -> tuple[str, dict[str, str]] | None:
        """The group key and fields of ``record`` if this rule reads it, else None."""
        if record.get("group") != self.group_name:
            return None
        for key, wanted in self.where.items():
            have = record.get(key)
            allowed = wanted if isinstance(wanted, list) else [wanted]
            if str(have) not in allowed:
                return None
        group = {d: str(record.get(d, "unknown")) for d in self.group_by}
        group_key = ",".join(f"{d}={v}" for d, v in group.items()) or "total"
        return group_key, group

    # -- evaluation (per type) ----------------------------------------------------------------

    def on_window(self, state: GroupState, record: dict[str, Any], judging: Judging) -> str | None:
        raise NotImplementedError

    def on_clock(self, state: GroupState, stream_end_ms: int) -> str | None:
        return None

    def describe(self) -> dict[str, Any]:
        """Fields of this rule carried by every alert it raises."""
        return {"metric": "", "op": "", "threshold": None}


class ThresholdRule(Rule):
    """Fires when ``metric op threshold`` holds for ``for`` consecutive closed windows."""

    kind: ClassVar[str] = "threshold"

    type: Literal["threshold"] = "threshold"
    metric: str
    op: Literal[">", ">=", "<", "<="]
    threshold: float
    min_volume: float = Field(default=0, ge=0)
    volume_metric: str | None = None

    @model_validator(mode="after")
    def _check_metric(self) -> ThresholdRule:
        known = METRICS[self.source]
        if self.metric not in known:
            raise ValueError(f"metric: {self.metric!r} is not a {self.source} metric (one of {list(known)})")
        if self.volume_metric is not None and self.volume_metric not in known:
            raise ValueError(f"volume_metric: {self.volume_metric!r} is not a {self.source} metric")
        return self

    def describe(self) -> dict[str, Any]:
        return {"metric": self.metric, "op": self.op, "threshold": self.threshold}

    def verdict(self, record: dict[str, Any]) -> tuple[float | None, int | None]:
        """(value, 1 breach / 0 clear / None skipped for low volume or no value)."""
        volume = _number(record.get(self.volume_metric or VOLUME_METRIC[self.source]))
        value = _number(record.get(self.metric))
        if value is None or (self.min_volume and (volume is None or volume < self.min_volume)):
            return value, None
        return value, int(OPS[self.op](value, self.threshold))

    def on_window(self, state: GroupState, record: dict[str, Any], judging: Judging) -> str | None:
        """Record the window's verdict (a revision replaces the earlier one), then judge the
        remembered windows again in window order: the status is what they say, so a late window
        or a revision counts where it belongs, and ``for`` counts windows, not revisions."""
        start, end = int(record["window_start"]), int(record["window_end"])
        revision = revision_of(record)
        known = state.windows.get(start)
        if known is not None and revision <= int(known[3]):
            return None  # delivered twice, or an older revision: nothing new
        if known is None and start < state.base_end:
            return None  # no later than a window already forgotten: too late to change anything
        value, verdict = self.verdict(record)
        state.windows[start] = [end, value, verdict, revision]
        state.width_ms = end - start
        state.last_end = max(state.last_end, end)
        self._forget(state, judging.horizon_ms)
        status, basis = self._replay(state)
        if status == state.status:
            return None  # the condition stands as it was: nothing new to say
        _set_context(state, *(basis or (value, start, end)))
        return status

    def _step(self, status: str, run: int, prev_end: int, start: int, entry: list[Any]) -> tuple[str, int]:
        """One window of the replay: (status, breaching run) after it."""
        verdict = entry[2]
        run = ((run if start == prev_end else 0) + 1) if verdict == 1 else 0
        if status == OK and run >= self.for_windows:
            return FIRING, run
        if status == FIRING and verdict == 0:  # a skipped window (low volume) resolves nothing
            return OK, run
        return status, run

    def _replay(self, state: GroupState) -> tuple[str, tuple[float | None, int, int] | None]:
        """The status the remembered windows lead to from the base, and the window (value,
        start, end) of the last change on the way (None when there was none)."""
        status, run, prev_end = state.base_status, state.base_run, state.base_end
        basis = None
        for start in sorted(state.windows):
            entry = state.windows[start]
            new, run = self._step(status, run, prev_end, start, entry)
            if new != status:
                basis = (entry[1], start, int(entry[0]))
            status, prev_end = new, int(entry[0])
        return status, basis

    def _forget(self, state: GroupState, horizon_ms: int) -> None:
        """Keep the newest ``for + 4`` windows and every window within ``horizon_ms`` of the
        newest (how far back a revision can reach); fold older ones into the base."""
        ordered = sorted(state.windows)
        newest = ordered[-1]
        for start in ordered[: max(0, len(ordered) - (self.for_windows + 4))]:
            if start >= newest - horizon_ms:
                break
            entry = state.windows.pop(start)
            state.base_status, state.base_run = self._step(state.base_status, state.base_run,
                                                           state.base_end, start, entry)  # fmt: skip
            state.base_end = int(entry[0])


class AbsentRule(Rule):
    """Fires when a group that reported has sent no window for ``for`` windows of stream time."""

    kind: ClassVar[str] = "absent"

    type: Literal["absent"]

    def describe(self) -> dict[str, Any]:
        return {"metric": "absent", "op": ">=", "threshold": float(self.for_windows)}

    def on_window(self, state: GroupState, record: dict[str, Any], judging: Judging) -> str | None:
        """A window newer than any seen for the group moves its last report on; an old, repeated
        or revised window says nothing new (a revision is not a new window). A firing alert
        resolves once the group's last report is fewer than ``for`` windows behind the stream."""
        start, end = int(record["window_start"]), int(record["window_end"])
        state.width_ms = end - start
        if end <= state.last_end:
            return None
        state.last_end = end
        if state.status == FIRING and self._missing(state, judging.stream_end_ms) < self.for_windows:
            _set_context(state, 0.0, start, end)
            return OK
        return None

    @staticmethod
    def _missing(state: GroupState, stream_end_ms: int) -> int:
        return max(0, stream_end_ms - state.last_end) // state.width_ms

    def on_clock(self, state: GroupState, stream_end_ms: int) -> str | None:
        if state.status == FIRING or not state.width_ms or not state.last_end:
            return None
        missing = self._missing(state, stream_end_ms)
        if missing >= self.for_windows:
            _set_context(state, float(missing), state.last_end, stream_end_ms)
            return FIRING
        return None


RULE_TYPES: dict[str, type[Rule]] = {"threshold": ThresholdRule, "absent": AbsentRule}


@dataclass(frozen=True)
class Judging:
    """What a rule needs besides the group's state: the source's stream clock (newest
    window_end seen, this record included) and how far back revisions can reach."""

    stream_end_ms: int
    horizon_ms: int


def revision_of(record: dict[str, Any]) -> int:
    """A window record's revision (SPEC 7): 0 when absent (the service rejects invalid ones)."""
    value = record.get("revision", 0)
    return value if type(value) is int and value >= 0 else 0


def _set_context(state: GroupState, value: float | None, start: int, end: int) -> None:
    state.value = value
    state.window_start = start
    state.window_end = end


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _check_template(template: str) -> None:
    for _text, field_name, _spec, _conv in string.Formatter().parse(template):
        if field_name is not None and field_name.split(".")[0].split("[")[0] not in SUMMARY_FIELDS:
            raise ValueError(
                f"summary: unknown placeholder {{{field_name}}} (known: {', '.join(sorted(SUMMARY_FIELDS))})"
            )
