"""User mistakes become one clear paragraph, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad config value, missing data); the message says how."""
