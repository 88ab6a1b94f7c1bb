"""submitit's internals: its SLURM job watcher, made to read `squeue` instead of `sacct`.

On a cluster without accounting (mnistx.sweeps.slurm.follow_jobs) submitit's watcher is
replaced by this subclass, which overrides the watcher's `_make_command` and reads its
`_registered` and `_finished` job sets. tests/test_compat_submitit.py checks them.
"""

from __future__ import annotations

from typing import Any


def squeue_watcher() -> Any:
    """A subclass of submitit's SlurmInfoWatcher reading `squeue`, not `sacct`."""
    from submitit.slurm.slurm import SlurmInfoWatcher

    class SqueueWatcher(SlurmInfoWatcher):
        """submitit's SLURM watcher, reading `squeue` instead of `sacct`."""

        def _make_command(self) -> list[str] | None:
            if super()._make_command() is None:  # nothing left to follow
                return None
            # All of this user's jobs: asking for ids the controller has already forgotten
            # (an ended job, after MinJobAge) is an error for squeue.
            return ["squeue", "--array", "--me", "--format=%i|%T|%N"]

        def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
            text = string.decode() if isinstance(string, bytes) else string
            lines = text.splitlines()
            listed = super().read_info("\n".join(["JobID|State|NodeList", *lines[1:]]))
            for job_id in self._registered - self._finished:  # ended: squeue forgets it
                if job_id not in listed:
                    listed[job_id] = {"JobID": job_id, "State": "COMPLETED", "NodeList": ""}
            return listed

    return SqueueWatcher
