"""Which modules the local search servers' distributions hold, checked before a start.

Both servers come from their ``integ-test-zip``, the one distribution each project publishes on
Maven Central. OpenSearch's bundles the modules that clients and the dashboards rely on
(``lang-painless`` for scripts, ``analysis-common`` for the common analyzers) and answers
``GET /``. Maven Central carries OpenSearch's modules only as jars to compile against, not as
plugin zips ``opensearch-plugin install`` takes, so a distribution without one cannot be
completed from there: it is reported and the server starts anyway.

Elasticsearch's integ-test-zip holds four modules (``ELASTICSEARCH_INTEG_TEST_MODULES``): no
``rest-root``, so ``GET /`` answers 405 and elasticsearch-py's ``info()``, Kibana and ElastAlert2
cannot attach; no Painless, no ILM. Maven Central publishes none of Elasticsearch's modules or
plugins (checked for 9.2.0), so nothing can be added to it; ``stack up --opensearch`` is the
complete local option.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from playscope.logs import log_event

log = logging.getLogger("playscope.stack")

# What the local OpenSearch must hold: Painless runs the dashboards' bucket scripts.
OPENSEARCH_REQUIRED = ("lang-painless", "analysis-common")

# Everything Elasticsearch's integ-test-zip holds (its modules/ folder; plugins/ is empty).
ELASTICSEARCH_INTEG_TEST_MODULES = frozenset({"apm", "transport-netty4", "x-pack-core", "x-pack-security"})

# Modules of the full Elasticsearch distribution that users of the local one miss, and what for.
ELASTICSEARCH_LACKS = {
    "rest-root": "GET / (elasticsearch-py info(), Kibana, ElastAlert2)",
    "lang-painless": "Painless scripts (script queries, bucket_script)",
    "x-pack-ilm": "index lifecycle policies (_ilm)",
    "analysis-common": "the common analyzers, tokenizers and token filters",
}


def bundled(home: Path) -> set[str]:
    """Names of the modules and plugins a distribution home holds (folders with a descriptor)."""
    names: set[str] = set()
    for folder in (home / "modules", home / "plugins"):
        if folder.is_dir():
            names |= {p.name for p in folder.iterdir() if (p / "plugin-descriptor.properties").is_file()}
    return names


def missing(home: Path, required: Iterable[str]) -> list[str]:
    """The ``required`` modules the distribution at ``home`` lacks, in the order given."""
    have = bundled(home)
    return [name for name in required if name not in have]


def check(home: Path, server: str, required: Iterable[str]) -> list[str]:
    """Log a warning naming each required module the distribution lacks; return them.

    A warning, not an error: the server is still useful for indexing and searching."""
    absent = missing(home, required)
    if absent:
        log_event(log, "stack.modules_missing", level=logging.WARNING, server=server,
                  missing=",".join(absent), home=str(home),
                  hint="Maven Central has no installable plugin zips for these; scripts or analyzers "
                       "that need them are refused by this server")
    return absent
