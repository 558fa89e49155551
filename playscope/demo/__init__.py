"""``playscope demo``: the whole pipeline on the local stack, with an incident and its alerts.

It brings the stack up, starts collector, agent, streams worker, indexer and alert evaluator as
separate processes (each on the run's own topics, so state from an earlier run cannot mask this
run's alerts; indices are the usual ``playscope-*`` ones), drives ``playscope loadgen`` with a
scripted incident, shows the live state, and ends with a summary. Ctrl-C stops everything
cleanly; the stack stays up.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live

from playscope.config import Settings, load_settings
from playscope.demo.processes import Component, Supervisor
from playscope.demo.receiver import WebhookReceiver
from playscope.demo.summary import print_summary
from playscope.demo.view import STAGE_COUNTERS, StageRates, WindowWatcher, render
from playscope.stack.ports import free_port, port_taken

INCIDENT_CDN = "oca-edge-3"
INCIDENT_SERVICE = "license"
FILE_SERVICES = ("license", "manifest")  # their access logs go through files and the agent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=100.0, help="seconds of traffic (default 100)")
    parser.add_argument("--rate", type=float, default=6.0, help="new sessions per second (default 6)")
    parser.add_argument("--window", type=int, default=10, help="window length in s for the demo (default 10)")
    parser.add_argument("--incident-start", type=float, default=25.0)
    parser.add_argument("--incident-end", type=float, default=60.0)
    parser.add_argument("--opensearch", action="store_true", help="also start OpenSearch")
    parser.add_argument("--keep-topics", action="store_true", help="keep this run's Kafka topics afterwards")
    parser.add_argument("--no-stack", action="store_true",
                        help="use the configured Kafka and Elasticsearch as they are (remote or secure) "
                             "instead of starting the local stack")


def _demo_rules(webhook_url: str) -> dict[str, Any]:
    common = {"for": 2, "severity": "critical", "repeat_interval": "1h", "notify": ["demo-webhook"]}
    return {
        "channels": {"demo-webhook": {"type": "webhook", "url": webhook_url, "secret": "demo-secret"}},
        "rules": [
            {"name": "cdn-rebuffering", "source": "qoe", "metric": "rebuffer_ratio", "group_by": ["cdn"],
             "op": ">", "threshold": 0.05, "min_volume": 5, **common,
             "summary": "CDN {cdn}: rebuffering {value} of watch time (> {threshold})"},
            {"name": "service-error-rate", "source": "service", "metric": "error_rate", "group_by": ["service"],
             "op": ">", "threshold": 0.05, "min_volume": 20, **common,
             "summary": "{service}: {value} of requests failed (> {threshold})"},
        ],
    }


def _write_files(run_dir: Path, settings: Settings, args: argparse.Namespace, ports: dict[str, int],
                 webhook_url: str) -> tuple[Path, Path, Path]:
    logs_dir = run_dir / "service-logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "kafka": {**settings.kafka.model_dump(exclude_none=True, exclude={"security": {"password"}}),
                  "partitions": 3},
        "elasticsearch": settings.elasticsearch.model_dump(exclude_none=True,
                                                           exclude={"password", "api_key"}),
        "topic_prefix": settings.topic_prefix,
        "window_s": args.window,
        "allowed_lateness_s": 2,
        "collector": {"port": ports["collector"], "host": "127.0.0.1"},
        "streams": {"idle_timeout_s": 30, "tick_interval_s": 0.5, "metrics_port": ports["streams"]},
        "indexer": {"metrics_port": ports["indexer"]},
        "alerts": {"metrics_port": ports["alerts"], "dashboard_url": "http://localhost:3000/d/playscope-qoe"},
    }
    config_path = run_dir / "playscope.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    agent = {
        "inputs": [{"paths": [str(logs_dir / svc / "access.log")], "parser": "combined", "service": svc}
                   for svc in FILE_SERVICES],
        "checkpoint_file": str(run_dir / "agent-checkpoints.json"),
        "metrics_port": ports["agent"],
        "poll_interval_ms": 100,
    }
    agent_path = run_dir / "agent.yaml"
    agent_path.write_text(yaml.safe_dump(agent, sort_keys=False))
    rules_path = run_dir / "rules.yaml"
    rules_path.write_text(yaml.safe_dump(_demo_rules(webhook_url), sort_keys=False))
    return config_path, agent_path, rules_path


def run(args: argparse.Namespace, settings: Settings) -> int:
    from playscope.provision import ensure_topics
    from playscope.stack.manager import StackManager

    # The demo's own screen reports progress; keep the stack's structured lines for its log file.
    logging.getLogger("playscope.stack").setLevel(logging.WARNING)
    console = Console()
    live_tty = console.is_terminal
    if not live_tty:  # plain lines for logs and CI: no wrapping at 80 columns, no colour codes
        console = Console(width=200, soft_wrap=True, no_color=True)
    say = (lambda m: console.print(f"  {m}")) if live_tty else (lambda m: print(f"  {m}", flush=True))
    started = time.monotonic()
    if args.no_stack:
        say(f"using Kafka at {settings.kafka.bootstrap} and Elasticsearch at {settings.elasticsearch.url}")
        StackManager(settings.home, settings).provision(args.opensearch, None, say)
    else:
        say("bringing the stack up")
        StackManager(settings.home, settings).up(opensearch=args.opensearch, progress=say)

    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
    run_dir = Path(settings.home).resolve() / "demo" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    ports = {"collector": int(settings.raw("collector").get("port", 8080))}
    if port_taken(ports["collector"]):
        ports["collector"] = free_port()
    for name in ("agent", "streams", "indexer", "alerts"):
        ports[name] = free_port()
    receiver = WebhookReceiver().start()
    demo_settings = settings.model_copy(update={"topic_prefix": f"demo-{run_id}.", "window_s": args.window})
    ensure_topics(demo_settings, partitions=3)
    config_path, agent_path, rules_path = _write_files(run_dir, demo_settings, args, ports, receiver.url)
    run_settings = load_settings(config_path, environ={**_secret_env(settings)})
    say(f"run {run_id}: topics {demo_settings.topic_prefix}*, logs in {run_dir}")

    sup = Supervisor(run_dir, config_path, _secret_env(settings))
    components = [
        Component("collector", ["collector"], f"http://127.0.0.1:{ports['collector']}/metrics"),
        Component("agent", ["agent", "-c", str(agent_path)], f"http://127.0.0.1:{ports['agent']}/metrics"),
        Component("streams", ["streams"], f"http://127.0.0.1:{ports['streams']}/metrics"),
        Component("indexer", ["indexer"], f"http://127.0.0.1:{ports['indexer']}/metrics"),
        Component("alerts", ["alerts", "-r", str(rules_path)], f"http://127.0.0.1:{ports['alerts']}/metrics"),
    ]
    for comp in components:
        sup.start(comp)
        say(f"started {comp.name} (pid {comp.proc.pid if comp.proc else '?'})")
    loadgen = Component("loadgen", [
        "loadgen", "--collector", f"http://127.0.0.1:{ports['collector']}", "--duration", str(args.duration),
        "--rate", str(args.rate), "--session-length", "15", "--incident-start", str(args.incident_start),
        "--incident-end", str(args.incident_end), "--incident-cdn", INCIDENT_CDN,
        "--incident-service", INCIDENT_SERVICE, "--logs-dir", str(run_dir / "service-logs"), "--drain", "40"])

    interrupted = False

    def on_sigterm(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    watcher = WindowWatcher(run_settings).start()
    rates = StageRates()
    try:
        _wait_ready(sup, ports["collector"], say)
        sup.start(loadgen)
        say(f"loadgen: {args.rate:g} sessions/s for {args.duration:g} s; incident on CDN {INCIDENT_CDN} and "
            f"service {INCIDENT_SERVICE} from {args.incident_start:g} s to {args.incident_end:g} s")
        _watch(sup, loadgen, watcher, rates, receiver, console, live_tty, started, args)
    except KeyboardInterrupt:
        interrupted = True
        say("interrupted: stopping the components")
    finally:
        sup.stop(["loadgen", "collector", "agent", "streams", "indexer", "alerts"])
        watcher.stop()
        receiver.stop()
    dead = [c for c in sup.dead() if c.proc and c.proc.returncode not in (0, -15, 143)]
    print_summary(console, run_settings, run_dir, sup, watcher, rates, receiver.notifications(),
                  time.monotonic() - started, dead)
    if not args.keep_topics:
        _delete_topics(run_settings)
    return 130 if interrupted else (1 if dead else 0)


def _secret_env(settings: Settings) -> dict[str, str]:
    """Secrets reach the components through their environment, never a file or a command line."""
    env = {}
    if settings.kafka.security.password:
        env["PLAYSCOPE__KAFKA__SECURITY__PASSWORD"] = settings.kafka.security.password
    for key in ("password", "api_key"):
        value = getattr(settings.elasticsearch, key)
        if value:
            env[f"PLAYSCOPE__ELASTICSEARCH__{key.upper()}"] = value
    return env


def _wait_ready(sup: Supervisor, collector_port: int, say: Any, timeout_s: float = 90) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = sup.dead()
        if dead:
            raise SystemExit(f"{dead[0].name} exited during start-up:\n{dead[0].tail()}")
        try:
            if httpx.get(f"http://127.0.0.1:{collector_port}/readyz", timeout=1).status_code == 200:
                say("collector ready")
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the collector did not become ready in time; see its log in the run folder")


def _watch(sup: Supervisor, loadgen: Component, watcher: WindowWatcher, rates: StageRates,
           receiver: WebhookReceiver, console: Console, live_tty: bool, started: float,
           args: argparse.Namespace) -> None:
    """Refresh the view until the load is over and the last windows have closed."""
    settle_s = args.window * 2 + 8  # the last windows close, the alerts resolve
    finished_at: float | None = None
    last_plain = 0.0

    def frame() -> Any:
        if finished_at is None:
            phase = "incident" if args.incident_start <= time.monotonic() - load_started < args.incident_end \
                else "traffic"
        else:
            phase = "settling: closing the last windows"
        return render(time.monotonic() - started, phase, watcher, rates, receiver.notifications(),
                      INCIDENT_CDN, INCIDENT_SERVICE)

    load_started = time.monotonic()
    live = Live(console=console, refresh_per_second=2, transient=False) if live_tty else None
    if live:
        live.start()
    try:
        while True:
            rates.update({stage: sup.components[comp].metric(counter)
                          for stage, (comp, counter) in STAGE_COUNTERS.items()})
            dead = [c for c in sup.dead() if c.name != "loadgen"]
            if dead:
                raise SystemExit(f"{dead[0].name} stopped unexpectedly:\n{dead[0].tail()}")
            if finished_at is None and not loadgen.alive():
                finished_at = time.monotonic()
            if finished_at is not None and time.monotonic() - finished_at > settle_s:
                return
            if live:
                live.update(frame())
            elif time.monotonic() - last_plain >= 5:
                last_plain = time.monotonic()
                _plain_line(time.monotonic() - started, watcher, rates, receiver.notifications())
            time.sleep(0.5)
    finally:
        if live:
            live.update(frame())
            live.stop()


def _plain_line(elapsed: float, watcher: WindowWatcher, rates: StageRates, alerts: list[dict[str, Any]]) -> None:
    worst = max(watcher.cdn.items(), key=lambda kv: float(kv[1].get("rebuffer_ratio", 0)), default=None)
    worst_txt = f"{worst[0]} {float(worst[1].get('rebuffer_ratio', 0)) * 100:.1f}%" if worst else "-"
    stage_txt = " ".join(f"{s}={rates.rates.get(s, 0):.0f}/s" for s in STAGE_COUNTERS)
    firing = [a for a in alerts if a.get("status") == "firing"]
    print(f"[{elapsed:4.0f}s] {stage_txt} | windows={watcher.windows} worst rebuffer: {worst_txt} | "
          f"alerts: {len(firing)} fired, {len(alerts) - len(firing)} resolved", flush=True)


def _delete_topics(settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient

    from playscope.kafka import admin_config

    admin = AdminClient(admin_config(settings.kafka))
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(settings.topic_prefix)]
    if names:
        for future in admin.delete_topics(names, operation_timeout=30).values():
            try:
                future.result(30)
            except Exception as exc:
                print(f"  could not delete a demo topic: {exc}", file=sys.stderr)

