"""The checker's reads from a real Elasticsearch: every id, across scroll pages, counted once."""

from __future__ import annotations

import uuid
from typing import Any

from playscope.chaos.check import scan_ids, session_docs, window_attempts


def test_scan_ids_and_session_docs_read_every_document(es: Any) -> None:
    index = f"t{uuid.uuid4().hex[:8]}-chaos-check"
    try:
        ops: list[dict[str, Any]] = []
        for n in range(5200):  # more than one scroll page
            ops += [{"index": {"_index": index, "_id": f"e{n}"}},
                    {"trace_id": f"l{n % 5100}", "session_id": f"s{n % 5100}", "play_ms": n,
                     "group": "total", "attempts": 1}]
        resp = es.bulk(operations=ops, refresh=True)
        assert not resp["errors"]
        ids = scan_ids(es, index)
        assert len(ids) == 5200 and set(ids.values()) == {1}
        traces = scan_ids(es, index, "trace_id")
        assert len(traces) == 5100 and sum(traces.values()) == 5200  # 100 trace ids held twice
        docs = session_docs(es, index)
        assert len(docs) == 5100 and sum(len(v) for v in docs.values()) == 5200
        assert window_attempts(es, index) == 5200
        assert scan_ids(es, f"{index}-missing-*") == {}
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
