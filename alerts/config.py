"""The ``alerts:`` section of playscope.yaml (every key has a default; see README.md)."""

from __future__ import annotations

from pydantic import Field

from playscope.config import Settings, Strict


class AlertsConfig(Strict):
    metrics_port: int | None = Field(default=None, ge=0, le=65535)  # None: 9184; 0: any free port
    # Link put in every notification; placeholders as in rule summaries, e.g. {cdn}, {window_start}.
    dashboard_url: str = ""
    http_timeout_s: float = Field(default=10.0, gt=0)
    retry_initial_s: float = Field(default=1.0, gt=0)
    retry_max_s: float = Field(default=300.0, gt=0)
    # Wall-clock fallback for `absent`: when no window at all arrives, a source's stream clock runs
    # on by the wall time passed since its newest window, minus this grace (default: one window
    # plus the allowed lateness plus 10 s). Off: absence is judged on stream time only.
    absent_wall_fallback: bool = True
    absent_grace_s: float | None = Field(default=None, ge=0)
    # How far back (from the newest window of a group) a revised window is judged again: windows
    # are remembered that long (and at least `for + 4` of them). Default: one window plus the
    # allowed lateness plus 180 s, which covers the streams' idle_timeout_s of 120 s (the longest
    # interval a revision can bring back); raise it with that.
    revision_horizon_s: float | None = Field(default=None, ge=0)
    tick_interval_s: float = Field(default=1.0, gt=0)
    batch_size: int = Field(default=500, ge=1, le=100_000)
    shutdown_timeout_s: float = Field(default=10.0, ge=0)
    # How long start-up waits for the broker, the topics and the coordinators before it fails.
    startup_timeout_s: float = Field(default=120.0, gt=0)
    # transaction.timeout.ms: a transaction left open longer (a stall, an outage) is aborted by the
    # coordinator, which fences the producer; the evaluator then replaces it and carries on.
    transaction_timeout_s: float = Field(default=120.0, ge=1, le=900)

    def grace_ms(self, settings: Settings) -> int:
        if self.absent_grace_s is not None:
            return int(self.absent_grace_s * 1000)
        return (settings.window_s + settings.allowed_lateness_s + 10) * 1000

    def horizon_ms(self, settings: Settings) -> int:
        if self.revision_horizon_s is not None:
            return int(self.revision_horizon_s * 1000)
        return (settings.window_s + settings.allowed_lateness_s + 180) * 1000


def load_config(settings: Settings) -> AlertsConfig:
    return settings.section("alerts", AlertsConfig)
