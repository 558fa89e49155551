"""``playscope agent -c agent.yaml``: tail log files into Kafka (or the HTTP collector)."""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from collectors.agent.agent import Agent
from collectors.agent.config import load_agent_config
from playscope.config import Settings
from playscope.metrics import serve_metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--agent-config", required=True, help="the agent's YAML file (inputs, sink)")


def run(args: argparse.Namespace, settings: Settings) -> int:
    config = load_agent_config(args.agent_config)
    serve_metrics("agent", config.metrics_port)
    agent = Agent(settings, config)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        agent.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    agent.run()
    return 0
