"""``playscope stack up [--opensearch] [--secure | --brokers N] | status | down | provision``."""

from __future__ import annotations

import argparse
import sys
import time

from rich.console import Console
from rich.table import Table

from playscope.config import Settings
from playscope.stack.manager import StackManager


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=["up", "status", "down", "provision"],
        help="provision: only create topics and index templates on the configured (possibly remote) servers",
    )
    parser.add_argument("--opensearch", action="store_true", help="also run OpenSearch (on :9201)")
    parser.add_argument("--secure", action="store_true",
                        help="Kafka with a TLS + SASL/SCRAM-SHA-512 listener and a generated CA; "
                             "writes the client config to .playscope/secure/playscope.yaml")
    parser.add_argument("--brokers", type=int, default=None, metavar="N",
                        help="Kafka nodes (KRaft, each broker and controller) on ports 9092, 9094, ... "
                             "(default 1, or what the last `up` used); with 3, topics get replication factor 3 "
                             "and min.insync.replicas 2, and the client config is written to "
                             ".playscope/cluster/playscope.yaml")
    parser.add_argument("--partitions", type=int, default=None, help="partitions per topic (default 6)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    console = Console(stderr=True)
    brokers = getattr(args, "brokers", None)
    if args.action == "provision" and brokers is None:
        brokers = 1  # the configured servers as written, not the local cluster's (its --config file says those)
    manager = StackManager(settings.home, settings, secure=True if getattr(args, "secure", False) else None,
                           brokers=brokers)
    if args.action == "up":
        return _up(manager, args, console)
    if args.action == "provision":
        opensearch = args.opensearch or settings.backend == "opensearch"
        manager.provision(opensearch, args.partitions, lambda m: console.print(f"  {m}"),
                          elasticsearch=settings.backend == "elasticsearch" or not opensearch)
        return 0
    if args.action == "down":
        stopped = manager.down(progress=lambda m: console.print(f"  {m}"))
        console.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing of this stack was running")
        return 0
    return _status(manager)


def _up(manager: StackManager, args: argparse.Namespace, console: Console) -> int:
    started = time.monotonic()
    if console.is_terminal:
        with console.status("starting the stack...") as spinner:
            def say(msg: str) -> None:
                if "waiting for health" in msg:
                    spinner.update(msg)
                else:
                    console.print(f"  {msg}")
            manager.up(opensearch=args.opensearch, progress=say, partitions=args.partitions)
    else:
        last: dict[str, float] = {}

        def say(msg: str) -> None:
            if "waiting for health" in msg:  # one line every 10 s, not every poll
                name = msg.split(":")[0]
                if time.monotonic() - last.get(name, 0) < 10:
                    return
                last[name] = time.monotonic()
            print(f"  {msg}", file=sys.stderr, flush=True)
        manager.up(opensearch=args.opensearch, progress=say, partitions=args.partitions)
    console.print(f"stack up in {time.monotonic() - started:.1f} s")
    return _status(manager)


def _status(manager: StackManager) -> int:
    table = Table(title="playscope stack")
    for col in ("server", "endpoint", "pid", "health"):
        table.add_column(col)
    rows = manager.status()
    for row in rows:
        pid = str(row.pid) if row.pid else ("external" if row.healthy else "-")
        table.add_row(row.name, row.endpoint, pid, "[green]healthy" if row.healthy else "[red]down")
    Console().print(table)
    if manager.cluster.size > 1:
        Console().print(f"kafka bootstrap: {manager.cluster.bootstrap}")
    return 0 if rows and all(r.healthy for r in rows) else 1
