"""Stored bytes per record: measured for playback events by bench, derived for the rest.

Bench measures a playback event's size as JSON, in Kafka's log segments and in the index's
primary store. The other families (logs, sessions, QoE and service windows) are not measured:
their JSON size is computed here from a document that fills every field of the family's real
mapping (``playscope.indices``) with a typical value, then scaled by the ratios measured for
playback events (they are compressed by lz4 and indexed alike: that is an assumption).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from playscope.indices import FAMILIES

# typical value per mapping type; ids are UUID-long, dimension values short names
_BY_TYPE: dict[str, Any] = {"keyword": "x" * 12, "date": 1_767_225_600_000, "long": 123_456, "short": 200,
                            "double": 1234.567, "boolean": False, "text": "x" * 80}
_ID_FIELDS = frozenset({"event_id", "session_id", "trace_id", "group_key"})
# Kafka record v2 framing per record (length, attributes, timestamp and offset deltas, key and
# value lengths, header count: varints), without the batch header, which batching amortises
RECORD_OVERHEAD = 12
KEY_BYTES = 36  # a session id; service names and window keys are shorter


def typical(properties: Mapping[str, Any]) -> dict[str, Any]:
    """A document with every mapped field set to a typical value of its type."""
    doc: dict[str, Any] = {}
    for name, spec in properties.items():
        if "properties" in spec:
            doc[name] = typical(spec["properties"])
        elif spec.get("type") in _BY_TYPE:
            doc[name] = "x" * 36 if name in _ID_FIELDS else _BY_TYPE[spec["type"]]
    return doc


def json_bytes(family: str) -> int:
    return len(orjson.dumps(typical(FAMILIES[family].properties)))


@dataclass(frozen=True)
class RecordSizes:
    """Bytes per record of one family: in Kafka (one replica) and in the index (one copy)."""

    kafka: float
    index: float


def sizes(store_bytes_per_doc: float, source_bytes_per_doc: float,
          kafka_bytes_per_event: float | None) -> tuple[dict[str, RecordSizes], str]:
    """Sizes for each sized family and a note saying where the Kafka figure came from."""
    if kafka_bytes_per_event is None:
        kafka_playback = source_bytes_per_doc + KEY_BYTES + RECORD_OVERHEAD
        note = ("computed: JSON size + key + record framing, no lz4 credit "
                "(bench ran on a broker whose log segments it cannot read)")
    else:
        kafka_playback = kafka_bytes_per_event
        note = "measured: the bench events topic's log segments / events (indexer.kafka_bytes_per_event)"
    kafka_ratio = kafka_playback / source_bytes_per_doc
    index_ratio = store_bytes_per_doc / source_bytes_per_doc
    out = {"playback": RecordSizes(kafka_playback, store_bytes_per_doc)}
    for family in ("logs", "sessions", "qoe", "service"):
        raw = json_bytes(family)
        out[family] = RecordSizes(raw * kafka_ratio, raw * index_ratio)
    return out, note
