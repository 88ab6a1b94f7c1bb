"""Who this process is to a run folder: a DDP rank, a task of a SLURM step, a requeued job.

Read from the environment only, so any module may ask before Hydra or torch start.
"""

from __future__ import annotations

import os


def peers_share_folder() -> bool:
    """Ranks of one multi-task SLURM step (srun -N2) each run this command; any of them may
    write .hydra/ first."""
    return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1") or 1) > 1


def slurm_job() -> str | None:
    """This process's SLURM job id (`<array job>_<task>` for an array task); None outside."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID") or None


def requeued() -> bool:
    """Whether SLURM started this job again (preemption, a node failure, scontrol requeue)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def is_rank_zero() -> bool:
    """False in the extra processes of a DDP run (Lightning's LOCAL_RANK, torchrun's RANK and
    GROUP_RANK, the NODE_RANK of a multi-node launch, SLURM's task id): the first process
    owns the folder for them."""
    env = os.environ
    if any(env.get(key, "0") != "0" for key in ("LOCAL_RANK", "RANK", "GROUP_RANK", "NODE_RANK")):
        return False
    return not peers_share_folder() or env.get("SLURM_PROCID", "0") == "0"
