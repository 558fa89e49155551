"""The Faust internals streams/bulk.py relies on are still there.

``BulkConsumer`` overrides ``_drain_messages`` of Faust's aiokafka consumer and uses private
attributes of the consumer and of its fetcher's loop. pyproject.toml pins faust-streaming below
the next minor release; this test says exactly what moved when someone raises that pin.
"""

from __future__ import annotations

import inspect

from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from streams.bulk import BulkConsumer

CONSUMER_METHODS = ("_drain_messages", "_wait_next_records", "_to_message", "_add_gap", "perform_seek",
                    "wait_first", "commit", "sleep")
CONSUMER_ATTRIBUTES = ("_read_offset", "_acked", "_acked_index", "_n_acked", "_committed_offset",
                       "_buffered_partitions", "_commit_every", "suspend_flow")


def test_the_consumer_methods_bulk_delivery_overrides_or_calls_exist() -> None:
    base = faust_aiokafka.Consumer
    missing = [name for name in CONSUMER_METHODS if not callable(getattr(base, name, None))]
    assert not missing, f"faust's aiokafka Consumer lost {missing}: streams/bulk.py must be revisited"


def test_drain_messages_still_takes_a_fetcher() -> None:
    params = list(inspect.signature(faust_consumer.Consumer._drain_messages).parameters)
    assert params == ["self", "fetcher"], f"Consumer._drain_messages is now {params}: streams/bulk.py overrides it"
    assert BulkConsumer._drain_messages is not faust_aiokafka.Consumer._drain_messages


def test_the_private_state_bulk_delivery_reads_is_set_by_faust() -> None:
    source = inspect.getsource(faust_consumer.Consumer)
    missing = [name for name in CONSUMER_ATTRIBUTES if f"self.{name}" not in source]
    assert not missing, f"faust's Consumer no longer sets {missing}: streams/bulk.py reads them"


def test_consumer_fetching_flag_is_still_exported() -> None:
    assert isinstance(faust_consumer.CONSUMER_FETCHING, str)
