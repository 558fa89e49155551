"""Exceptions shared by every playscope component.

    PlayscopeError
    ├── ConfigError          bad configuration; raised once at start-up, names file and key
    ├── ValidationError      one record broke the data contract; names field and reason
    └── StackError           the local stack could not be fetched, started or reached
        ├── JdkNotFound      no JDK on this machine satisfies a server's minimum
        └── PortInUse        a port the stack needs is taken by another process
"""

from __future__ import annotations


class PlayscopeError(Exception):
    """Base of every error playscope raises on purpose."""


class ConfigError(PlayscopeError):
    """The configuration is invalid; the message names the file and the dotted key."""


class ValidationError(PlayscopeError):
    """A record does not follow SPEC 4/5. ``field`` is the offending key ('' for the record)."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class StackError(PlayscopeError):
    """The local stack failed; the message says which server and why."""


class JdkNotFound(StackError):
    pass


class PortInUse(StackError):
    pass
