"""Retention (SPEC 10): delete whole daily indices whose date is older than N days.

The date is read from the index name (``<prefix>playscope-<family>-YYYY.MM.DD``), never from the
documents, so the sweep is one cheap listing and a few deletes. Only names that match the
pattern exactly are touched: an index someone else created next to ours is left alone.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, date, datetime, timedelta

from indexers.backends import SearchBackend
from playscope.indices import FAMILIES
from playscope.logs import log_event

log = logging.getLogger("playscope.indexer.retention")

_DATE = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})$")


def index_day(name: str, prefix: str) -> date | None:
    """The UTC day in a daily index name of ours, or None if ``name`` is not one."""
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    for family in FAMILIES.values():
        if rest.startswith(family.prefix):
            match = _DATE.match(rest[len(family.prefix):])
            if not match:
                return None
            try:
                return date(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                return None
    return None


def expired(names: list[str], prefix: str, days: int, today: date | None = None) -> list[str]:
    """Indices whose day is more than ``days`` days before ``today`` (UTC).

    With ``days=N`` the last N days and today are kept: today - N is the oldest day kept."""
    current = today or datetime.now(tz=UTC).date()
    oldest_kept = current - timedelta(days=days)
    out = []
    for name in names:
        day = index_day(name, prefix)
        if day is not None and day < oldest_kept:
            out.append(name)
    return sorted(out)


def sweep(backend: SearchBackend, prefix: str, days: int, today: date | None = None) -> list[str]:
    """Delete expired daily indices of every family; return the names deleted."""
    if days < 1:
        raise ValueError("retention needs at least 1 day")
    names: list[str] = []
    for family in FAMILIES.values():
        names += backend.index_names(f"{prefix}{family.pattern}")
    deleted = []
    for name in expired(names, prefix, days, today):
        backend.delete_index(name)
        deleted.append(name)
    log_event(log, "retention.swept", days=days, deleted=deleted, checked=len(names))
    return deleted
