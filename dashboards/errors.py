"""Errors of dashboard provisioning and reports (part of the playscope exception tree).

    PlayscopeError
    └── DashboardsError       a target refused or could not be reached; names it and why
        └── Unreachable       no answer at the configured URL (connection refused, timeout)
"""

from __future__ import annotations

from playscope.errors import PlayscopeError


class DashboardsError(PlayscopeError):
    """Provisioning or a report failed; the message names the server and the reason."""


class Unreachable(DashboardsError):
    """The server did not answer at the configured URL."""
