"""Shared set-up of the indexer benchmarks: a private namespace on the local stack."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from indexers.backends import SearchBackend, backend_for
from indexers.config import IndexerConfig
from indexers.indexer import Indexer
from indexers.metrics import IndexerMetrics
from playscope.config import Settings
from playscope.provision import ensure_topics


@contextmanager
def bench_namespace(settings: Settings, name: str, partitions: int = 3) -> Iterator[Settings]:
    """Settings with a topic/index prefix of their own; the indices are deleted afterwards."""
    tag = f"bench-{name}-{uuid.uuid4().hex[:6]}"
    ns = settings.model_copy(update={"topic_prefix": f"{tag}.", "index_prefix": f"{tag}-"})
    ensure_topics(ns, partitions=partitions)
    backend = backend_for(ns)
    try:
        backend.install_templates(ns.index_prefix)
        yield ns
    finally:
        _cleanup(backend, ns)
        backend.close()


def _cleanup(backend: SearchBackend, ns: Settings) -> None:
    client: Any = getattr(backend, "client", None)
    if client is None:
        return
    for name in backend.index_names(f"{ns.index_prefix}*"):
        backend.delete_index(name)
    for template in client.indices.get_index_template(name=f"{ns.index_prefix}*").get("index_templates", []):
        client.indices.delete_index_template(name=template["name"])


@contextmanager
def running(ns: Settings, **config: Any) -> Iterator[Indexer]:
    indexer = Indexer(ns, IndexerConfig(**config), metrics=IndexerMetrics())
    thread = threading.Thread(target=indexer.run, daemon=True)
    thread.start()
    try:
        yield indexer
    finally:
        indexer.stop()
        thread.join(60)
