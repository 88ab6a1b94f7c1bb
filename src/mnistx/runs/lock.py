"""One writer per run folder: a flock on <run>/.lock, held while a process trains in it.

The kernel drops a flock when its process dies, so a killed run never leaves it stuck; the
file names its holder (pid, and the SLURM job, so a requeued job finds its folder again).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from mnistx.errors import UserError
from mnistx.runs.env import requeued, slurm_job
from mnistx.runs.layout import LOCK

_locks: dict[str, int] = {}


def started_by_this_job(folder: Path) -> bool:
    """Whether `folder` is this SLURM job's own, from before SLURM requeued it: `hold`
    records the job id in the folder's lock file."""
    job = slurm_job()
    if not (job and requeued()):
        return False
    try:
        return f"slurm={job}" in (folder / LOCK).read_text().split()
    except OSError:
        return False


def hold(folder: Path) -> None:
    """Lock `folder` for this process until it exits or `release` is called; refuse when
    another process holds it. A flock: the kernel drops it when its process dies, so a killed
    run never leaves it stuck."""
    key = str(folder.resolve())
    if key in _locks:
        return
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = (os.read(fd, 64).decode(errors="replace").split() or ["another process"])[0]
        os.close(fd)
        raise UserError(
            f"{folder} is in use: process {owner} is training in it right now. Wait for it to "
            "finish (or stop it), then run this again."
        ) from None
    os.ftruncate(fd, 0)
    job = slurm_job()
    os.write(fd, (f"{os.getpid()} slurm={job}" if job else str(os.getpid())).encode())
    _locks[key] = fd


def in_use(folder: Path) -> str | None:
    """The process training in `folder` right now (its pid, as `hold` wrote it), or None.
    Only looks: the lock file is opened read-only and left as it is."""
    try:
        fd = os.open(folder / LOCK, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return None
    except BlockingIOError:
        return (os.read(fd, 64).decode(errors="replace").split() or ["another process"])[0]
    finally:
        os.close(fd)  # also drops the shared lock this probe may have taken


def release(folder: Path) -> None:
    fd = _locks.pop(str(folder.resolve()), None)
    if fd is not None:
        os.close(fd)  # closing the last descriptor drops the flock
