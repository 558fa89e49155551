"""The ``playscope`` command: one verb per component (SPEC 2).

Verbs are registered in :data:`VERBS`, each pointing at a module that provides
``add_arguments(parser)`` and ``run(args, settings) -> int``. A verb's module is imported only
when that verb runs, so ``playscope stack status`` does not pay for faust or Elasticsearch
clients, and components stay independent of each other.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from dataclasses import dataclass

from playscope.config import ENV_OVERRIDES, load_settings
from playscope.errors import PlayscopeError
from playscope.logs import redact_in_logs, setup_logging
from playscope.secrets import redacted, secret_values


@dataclass(frozen=True)
class Verb:
    module: str
    help: str


VERBS: dict[str, Verb] = {
    "stack": Verb("playscope.stack.cli", "start, inspect or stop the local Kafka, Elasticsearch, OpenSearch"),
    "demo": Verb("playscope.demo", "the whole pipeline with simulated players, an incident and its alert"),
    "collector": Verb("collectors.http.cli", "the HTTP beacon collector"),
    "agent": Verb("collectors.agent.cli", "the log agent that tails files into Kafka"),
    "streams": Verb("streams.cli", "the stream processors: sessions, QoE windows, service windows"),
    "indexer": Verb("indexers.cli", "Kafka topics into Elasticsearch / OpenSearch"),
    "alerts": Verb("alerts.cli", "the alert evaluator and notifier"),
    "dashboards": Verb("dashboards.cli", "provision Grafana and Kibana dashboards"),
    "loadgen": Verb("playscope.loadgen.cli", "simulated players and services"),
    "bench": Verb("bench.cli", "stage benchmarks as one JSON report"),
    "capacity": Verb("playscope.capacity.cli", "size a deployment for N viewers from a bench report"),
    "chaos": Verb("playscope.chaos", "the fault matrix: kill each part under load, count what was lost"),
    "report": Verb("dashboards.report", "a QoE report (PNG charts and HTML) from Elasticsearch"),
}


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# verbs that serve their own /metrics on a port of their own (the collector serves it on its HTTP port)
METRICS_VERBS = frozenset({"agent", "streams", "indexer", "alerts"})


def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as package_version

    try:
        return package_version("playscope")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def environment_help(name: str) -> str:
    """The environment variables a verb reads, for the end of its --help."""
    lines = ["environment:"]
    lines += [f"  {env:<26} {key}" for env, key in ENV_OVERRIDES.items()]
    lines.append(f"  {'PLAYSCOPE__SECTION__KEY':<26} any config key, nested with __ "
                 "(PLAYSCOPE__KAFKA__PARTITIONS=12)")
    if name in METRICS_VERBS:
        lines.append(f"  {'PLAYSCOPE_METRICS_HOST':<26} address of /metrics "
                     "(default 127.0.0.1; 0.0.0.0 lets a remote Prometheus scrape)")
    return "\n".join(lines)


# Verbs whose components talk to Kafka: their TLS/SASL settings are checked once before they start.
KAFKA_VERBS = frozenset({"demo", "collector", "agent", "streams", "indexer", "alerts", "loadgen", "bench", "chaos"})


def _top_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="playscope",
        description="Telemetry for video streaming: beacons and logs through Kafka to QoE metrics.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="verbs:\n" + "\n".join(f"  {name:<11} {verb.help}" for name, verb in VERBS.items()),
    )
    parser.add_argument("verb", nargs="?", help="what to run (see below)")
    parser.add_argument("-V", "--version", action="version", version=f"playscope {version()}")
    return parser


def _verb_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"playscope {name}", description=VERBS[name].help,
                                     epilog=environment_help(name),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-V", "--version", action="version", version=f"playscope {version()}")
    parser.add_argument("--config", help="config file (default: ./playscope.yaml if present)")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the effective configuration (secrets masked) and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        _top_parser().print_help()
        return 0
    if args[0] in ("-V", "--version"):
        print(f"playscope {version()}")
        return 0
    name, rest = args[0], args[1:]
    verb = VERBS.get(name)
    if verb is None:
        print(f"playscope: unknown verb {name!r}; run 'playscope --help'", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(verb.module)
    except ModuleNotFoundError as exc:
        if exc.name and verb.module.startswith(exc.name):
            print(f"playscope {name}: not available in this version yet", file=sys.stderr)
            return 3
        raise
    parser = _verb_parser(name)
    module.add_arguments(parser)
    parsed = parser.parse_args(rest)
    setup_logging(parsed.log_level)
    try:
        settings = load_settings(parsed.config)
        tree = settings.model_dump(mode="json")
        redact_in_logs(secret_values(tree))
        if parsed.print_config:
            import yaml

            print(yaml.safe_dump(redacted(tree), sort_keys=False), end="")
            return 0
        if name in KAFKA_VERBS and settings.kafka.security.protocol != "PLAINTEXT":
            from playscope.kafka import check_credentials

            check_credentials(settings.kafka)  # a wrong password fails here, not in an endless retry
        return int(module.run(parsed, settings) or 0)
    except PlayscopeError as exc:
        print(f"playscope {name}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
