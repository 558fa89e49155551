"""Dry run: replay the windows already in Elasticsearch / OpenSearch through the rules.

Nothing is written and nobody is notified; the state changes that would have happened are
returned in window order, so thresholds can be tuned on history.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alerts.evaluator import Evaluator
from alerts.loader import RuleSet
from playscope.config import Settings
from playscope.indices import FAMILIES, WINDOW_KEY_FIELDS

SOURCE_FAMILY = {"qoe": "qoe", "service": "service"}


def search_client(settings: Settings) -> Any:
    from playscope.search import make_client

    return make_client(settings.search, settings.backend)

def windows(
    client: Any, settings: Settings, since_ms: int | None, page: int = 2000
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(source, record) for every stored window, ordered by window_end then window_start."""
    indices = ",".join(f"{settings.index_prefix}{FAMILIES[f].pattern}" for f in SOURCE_FAMILY.values())
    query: dict[str, Any] = {"match_all": {}}
    if since_ms is not None:
        query = {"range": {"window_end": {"gt": since_ms}}}
    # window, group and the group's values identify a window record: a total order for paging
    sort = [{f: {"order": "asc", "unmapped_type": "keyword" if f not in ("window_end", "window_start")
                 else "date", "missing": "_first"}} for f in ("window_end", "window_start", "group",
                                                               *WINDOW_KEY_FIELDS)]  # fmt: skip
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"query": query, "sort": sort, "size": page}
        if after is not None:
            body["search_after"] = after
        result = client.search(index=indices, body=body, ignore_unavailable=True, allow_no_indices=True)
        hits = result["hits"]["hits"]
        for hit in hits:
            family = hit["_index"].removeprefix(settings.index_prefix).split("-")[1]
            yield family, hit["_source"]
        if len(hits) < page:
            return
        after = hits[-1]["sort"]


def dry_run(settings: Settings, ruleset: RuleSet, since_ms: int | None = None,
            client: Any = None) -> list[dict[str, Any]]:  # fmt: skip
    """The alert documents the rules would have produced over the stored windows."""
    client = client or search_client(settings)
    evaluator = Evaluator(ruleset, wall_fallback=False)
    out: list[dict[str, Any]] = []
    for source, record in windows(client, settings, since_ms):
        out += [change.doc for change in evaluator.observe(source, record)]
    return out
