"""Sample log files for docker-compose's log agent: the templates here, replayed with today's time.

A log line older than ``max_ts_age_s`` (7 days) is a dead letter at the agent, so committed log
files would stop feeding the Grafana panels a week after they were written. This script appends
the template lines again and again, each stamped with the moment it is written, to files of the
same relative path under ``--out`` (``edge/access.log`` in combined format, ``app/api.ndjson``
as JSON lines), and rotates a file past ``--max-bytes`` by renaming it to ``<name>.1`` as
logrotate does, so the agent's rotation handling is exercised too.

Standard library only: it runs with the playscope image's Python, or any Python 3.11.

    python replay.py --out /home/playscope/sample-logs [--interval 1] [--once]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent
_CLF_TIME = re.compile(r"\[[^\]]+\]")


def stamp(template: Path, line: str, now_ms: int) -> str:
    """``line`` of ``template`` with its time replaced by ``now_ms``."""
    if template.suffix == ".ndjson":
        return json.dumps({**json.loads(line), "ts": now_ms})
    when = datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
    return _CLF_TIME.sub(f"[{when}]", line, count=1)


def templates() -> list[Path]:
    return sorted(p for p in TEMPLATES.rglob("*") if p.suffix in (".log", ".ndjson") and p.is_file())


def write_round(out: Path, max_bytes: int) -> int:
    """Append every template's lines once, stamped now; returns the lines written."""
    written = 0
    for template in templates():
        target = out / template.relative_to(TEMPLATES)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.stat().st_size > max_bytes:
            os.replace(target, target.with_name(target.name + ".1"))
        now_ms = int(time.time() * 1000)
        lines = [stamp(template, line, now_ms) for line in template.read_text().splitlines() if line.strip()]
        with target.open("a") as file:
            file.write("".join(line + "\n" for line in lines))
        written += len(lines)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="replay the sample log templates with the current time")
    parser.add_argument("--out", type=Path, required=True, help="directory the agent tails")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between rounds")
    parser.add_argument("--max-bytes", type=int, default=8 * 1024 * 1024, help="rotate a file past this size")
    parser.add_argument("--once", action="store_true", help="write one round and exit")
    args = parser.parse_args(argv)
    while True:
        write_round(args.out, args.max_bytes)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
