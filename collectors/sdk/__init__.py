"""Producer SDK for services: ship logs and playback events to playscope from inside a process.

    from collectors.sdk import PlayscopeProducer, KafkaLogHandler, PlaybackClient

Never blocks the caller, bounds its memory, counts what it drops, and flushes at exit.
"""

from collectors.sdk.logging_handler import KafkaLogHandler
from collectors.sdk.playback import PlaybackClient
from collectors.sdk.producer import PlayscopeProducer

__all__ = ["KafkaLogHandler", "PlaybackClient", "PlayscopeProducer"]
