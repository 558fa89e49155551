"""The environment the project installs: nothing replaces ``urllib3`` under the Elasticsearch and
OpenSearch clients (grafana-client's urllib3-future did, for the whole environment), and the
declared floors hold for the APIs the code uses."""

from __future__ import annotations

import importlib.metadata as metadata

import urllib3
from confluent_kafka import Producer


def test_urllib3_is_the_urllib3_distribution_alone() -> None:
    owners = metadata.packages_distributions().get("urllib3", [])
    assert owners == ["urllib3"], f"the urllib3 package is provided by {owners}"
    assert urllib3.__version__ == metadata.version("urllib3")


def test_confluent_kafka_has_produce_batch() -> None:
    assert hasattr(Producer, "produce_batch"), "confluent-kafka>=2.12 is required (Producer.produce_batch)"


def test_no_declared_dependency_is_unused_or_a_urllib3_replacement() -> None:
    requires = " ".join(metadata.requires("playscope") or [])
    for name in ("grafana-client", "ddsketch", "urllib3-future", "niquests"):
        assert name not in requires, name
