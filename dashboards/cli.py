"""``playscope dashboards provision|check``: push the dashboards, or check the files offline.

    playscope dashboards provision                  # Grafana and Kibana
    playscope dashboards provision --only grafana   # one of them
    playscope dashboards check                      # validate the committed files, no server
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from dashboards.config import DashboardsConfig, load
from dashboards.errors import DashboardsError
from playscope.config import Settings


def _grafana(settings: Settings, cfg: DashboardsConfig) -> str:
    from dashboards.grafana_push import provision_grafana

    return provision_grafana(settings, cfg).describe(cfg.grafana_url, cfg.grafana_folder)


def _kibana(settings: Settings, cfg: DashboardsConfig) -> str:
    from dashboards.kibana_push import provision_kibana

    return provision_kibana(settings, cfg).describe(cfg.kibana_url)


# Target name -> provisioner; each returns a one-line summary or raises DashboardsError.
TARGETS: dict[str, Callable[[Settings, DashboardsConfig], str]] = {"grafana": _grafana, "kibana": _kibana}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    prov = sub.add_parser("provision", help="push data sources and dashboards to Grafana, saved objects to Kibana")
    prov.add_argument("--only", choices=sorted(TARGETS), help="provision only this target")
    prov.add_argument("--grafana-url", help="overrides dashboards.grafana_url")
    prov.add_argument("--kibana-url", help="overrides dashboards.kibana_url")
    sub.add_parser("check", help="validate the committed dashboard files (no server needed)")


def _config(args: Any, settings: Settings) -> DashboardsConfig:
    cfg = load(settings)
    overrides = {k: v for k in ("grafana_url", "kibana_url") if (v := getattr(args, k, None))}
    return cfg.model_copy(update=overrides) if overrides else cfg


def run(args: Any, settings: Settings) -> int:
    cfg = _config(args, settings)  # validated first, whatever the action
    if args.action == "check":
        from dashboards.validate import all_problems

        problems = all_problems()
        for problem in problems:
            print(problem, file=sys.stderr)
        print(f"dashboards: {'ok' if not problems else f'{len(problems)} problems'}")
        return 1 if problems else 0
    from dashboards.validate import all_problems

    problems = all_problems()
    if problems:
        raise DashboardsError("the dashboard files are invalid, nothing was pushed:\n" + "\n".join(problems))
    failed = 0
    for name in [args.only] if args.only else list(TARGETS):
        try:
            print(TARGETS[name](settings, cfg))
        except DashboardsError as exc:
            print(f"playscope dashboards: {name}: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
