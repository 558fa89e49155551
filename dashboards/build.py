"""Regenerate the committed dashboard files from their builders.

    python -m dashboards.build           # write grafana/*.json, grafana-import/*.json, kibana/*.ndjson
    python -m dashboards.build --check   # exit 1 if a committed file differs from its builder

The files are the product (Grafana and Kibana read them as they are); the builders keep the
repeated query shapes consistent. Edit a builder, run this, commit both.
"""

from __future__ import annotations

import argparse
import json
import sys

from dashboards.assets import GRAFANA_DIR, KIBANA_FILE, to_ndjson
from dashboards.grafana_boards import DASHBOARDS
from dashboards.grafana_export import for_import
from dashboards.kibana_objects import saved_objects


def rendered() -> dict[str, str]:
    """Every generated file's path (relative to dashboards/) and text."""
    boards = {name: build() for name, build in DASHBOARDS.items()}
    files = {f"grafana/{name}": json.dumps(board, indent=2) + "\n" for name, board in boards.items()}
    files.update({f"grafana-import/{name}": json.dumps(for_import(board), indent=2) + "\n"
                  for name, board in boards.items()})
    files[f"kibana/{KIBANA_FILE.name}"] = to_ndjson(saved_objects())
    return files


def stale() -> list[str]:
    base = GRAFANA_DIR.parent
    return [rel for rel, text in rendered().items()
            if not (base / rel).is_file() or (base / rel).read_text() != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    args = parser.parse_args(argv)
    if args.check:
        out = stale()
        for rel in out:
            print(f"stale: dashboards/{rel} (run python -m dashboards.build)", file=sys.stderr)
        return 1 if out else 0
    base = GRAFANA_DIR.parent
    for rel, text in rendered().items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text)
        print(f"wrote dashboards/{rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
