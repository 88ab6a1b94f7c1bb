"""SLURM through Hydra's submitit launcher (hydra/launcher=slurm), in the launching process.

submitit follows a sweep's jobs with `sacct`, which needs SLURM's accounting (slurmdbd). On a
cluster without it, every poll printed sacct's "Slurm accounting storage is disabled" and
submitit's "Bypassing sacct error ... status may be inaccurate" (on two handlers, and
Hydra's): several lines per poll for the whole sweep, while a job killed without a result
was never seen to end. There, `follow_jobs()` makes submitit ask `squeue` instead, whose
answer has the same fields; a job squeue no longer lists has ended.

This swaps one class attribute of submitit (`SlurmJob.watcher`) for a subclass of its own
watcher (mnistx.compat.submitit, where submitit's internals are used).
"""

from __future__ import annotations

import logging
import subprocess

log = logging.getLogger("mnistx")

# The longest wait between two squeue calls. submitit's watcher asks after 2, 4, 8, ... s and
# at most every `delay_s`: a job that ends after a minute was seen ended up to a minute late.
# One `squeue --me` is a single light request to the controller (sacct, which submitit's
# default of 60 s spares, reads the accounting database).
POLL_S = 10


def accounting_enabled() -> bool:
    """Whether this cluster keeps job accounting (what `sacct` reads); True when unsure."""
    try:
        out = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return True
    for line in out.splitlines():
        if line.split("=")[0].strip() == "AccountingStorageType":
            return line.split("=", 1)[1].strip() not in ("accounting_storage/none", "(null)")
    return True


def follow_jobs() -> None:
    """On a cluster without accounting, follow the sweep's jobs with squeue (module doc)."""
    from submitit.slurm import slurm

    from mnistx.compat.submitit import squeue_watcher

    if accounting_enabled() or type(slurm.SlurmJob.watcher).__name__ == "SqueueWatcher":
        return
    slurm.SlurmJob.watcher = squeue_watcher()(delay_s=POLL_S)
    log.info("SLURM accounting is off on this cluster: following the jobs with squeue.")
