"""The Quix Streams application of ``bench --peers`` (runs in the peer's own venv, so it
imports nothing from playscope): a per-session state function, then one tumbling window per CDN,
over the streams benchmark's events. Prints one JSON line: events, seconds, events/s, measured
from the first event in to the last event reaching the windows."""

from __future__ import annotations

import argparse
import json
import time
from datetime import timedelta
from typing import Any

from quixstreams import Application, State  # type: ignore[import-not-found, unused-ignore]
from quixstreams.dataframe.windows import Count, Sum  # type: ignore[import-not-found, unused-ignore]


def main() -> None:
    parser = argparse.ArgumentParser()
    for name in ("--broker", "--topic", "--group", "--state-dir"):
        parser.add_argument(name, required=True)
    parser.add_argument("--expected", type=int, required=True)
    parser.add_argument("--window-s", type=int, default=10)
    args = parser.parse_args()

    app = Application(broker_address=args.broker, consumer_group=args.group, auto_offset_reset="earliest",
                      state_dir=args.state_dir, loglevel="WARNING")
    topic = app.topic(args.topic, value_deserializer="json",
                      timestamp_extractor=lambda value, _headers, _ts, _type: int(value["ts"]))
    clock: dict[str, Any] = {"first": None, "last": None, "seen": 0, "windows": 0}

    def session(value: dict[str, Any], state: State) -> dict[str, Any]:
        if clock["first"] is None:
            clock["first"] = time.perf_counter()
        s = state.get("session") or {"cdn": None, "events": 0, "rebuffers": 0, "playing": False}
        s["cdn"] = value.get("cdn") or s["cdn"]
        s["events"] += 1
        rebuffer = value["type"] == "rebuffer_start"
        s["rebuffers"] += rebuffer
        s["playing"] = value["type"] in ("playing", "heartbeat", "rebuffer_end")
        state.set("session", s)
        return {"cdn": s["cdn"] or "unknown", "rebuffer": int(rebuffer), "ts": value["ts"]}

    def seen(_value: dict[str, Any]) -> None:
        clock["seen"] += 1
        if clock["seen"] >= args.expected:
            clock["last"] = time.perf_counter()
            app.stop()

    def emitted(_value: dict[str, Any]) -> None:
        clock["windows"] += 1

    sdf = app.dataframe(topic)
    sdf = sdf.apply(session, stateful=True)
    sdf = sdf.group_by("cdn")
    sdf = sdf.update(seen)
    sdf = sdf.tumbling_window(timedelta(seconds=args.window_s)).agg(events=Count(), rebuffers=Sum("rebuffer"))
    sdf = sdf.final().update(emitted)
    app.run()
    elapsed = (clock["last"] or time.perf_counter()) - (clock["first"] or time.perf_counter())
    print(json.dumps({"events": clock["seen"], "seconds": elapsed, "windows": clock["windows"],
                      "events_per_s": clock["seen"] / elapsed if elapsed > 0 else 0}))


if __name__ == "__main__":
    main()
