"""User mistakes become one clear paragraph, not a traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix (bad config value, missing data); the message says how."""


class UnavailableError(UserError):
    """The run asks for hardware this machine lacks; a sweep records the job as skipped."""


class DivergedError(UserError):
    """Training produced a non-finite loss (usually a too-high learning rate)."""
