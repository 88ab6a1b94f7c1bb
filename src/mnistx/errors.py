"""User mistakes become one clear paragraph, not a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem the user can fix (bad config value, missing data); the message says how."""


class UnavailableError(UserError):
    """The run asks for hardware this machine lacks; a sweep records the job as skipped."""


class DivergedError(UserError):
    """Training produced a non-finite loss (usually a too-high learning rate)."""


def exit_status(action: Callable[[], object]) -> int:
    """Run a command-line action: 0, or 1 after one `error: ...` line for a UserError."""
    try:
        action()
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
