"""End a finished command without the interpreter's teardown of its modules.

With torch, torchvision and Lightning loaded, Python spends ~1.3 s on this machine after the
last line of a command has run, tearing down module dictionaries and extension objects: as
long as a small MLP's whole epoch, and paid by every train, eval, predict and compare command.

A command's `script()` enters `exiting_fast()` before its work imports torch or Lightning, so
this exit handler is registered before theirs; atexit runs handlers last-in first-out, so it
runs after all of them (multiprocessing's and TensorBoard's clean-up), once Python has joined
every non-daemon thread. Then it shuts logging down, flushes the standard streams and leaves
with `os._exit`. It acts only for a command run under `exiting_fast()` that returned or
called sys.exit with a number; an uncaught exception exits the usual way, and a program that
only imports mnistx (a notebook, pytest) never registers it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_status: list[int] = []
_registered: list[object] = []  # the exit handler, once registered


@contextmanager
def exiting_fast() -> Iterator[None]:
    """Around a command's `__main__` code: its exit status, once it has one, skips the
    teardown."""
    if _exit not in _registered:
        atexit.register(_exit)
        _registered.append(_exit)
    try:
        yield
    except SystemExit as e:
        if e.code is None or isinstance(e.code, int):
            _status.append(e.code or 0)
        raise
    _status.append(0)


def command_process() -> bool:
    """Whether this process runs an mnistx command (its `script()` entered `exiting_fast`)
    and ends with it; False in a program that imports mnistx (a notebook, pytest), whose
    process-wide state a command must not change."""
    return bool(_registered)


def _exit() -> None:
    if not _status:
        return
    logging.shutdown()
    _save_coverage()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed, or its reader has gone
            stream.flush()
    os._exit(_status[-1])


def _save_coverage() -> None:
    """Under coverage (the test suite's subprocesses), write its data first: its own exit
    handler was registered before this one, so it would run after `os._exit`, i.e. never."""
    coverage = sys.modules.get("coverage")
    current = getattr(getattr(coverage, "Coverage", None), "current", None)
    cov = current() if current else None
    if cov is not None:
        cov.stop()
        cov.save()
