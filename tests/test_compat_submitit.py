"""The submitit internals mnistx.compat.submitit relies on (no cluster needed)."""

from __future__ import annotations


def test_the_squeue_watcher_reads_what_submitits_sacct_watcher_reads():
    """mnistx.sweeps.slurm swaps submitit's SlurmJob.watcher (a SlurmInfoWatcher) on clusters
    without accounting: if a submitit release renames or reshapes these, this fails first."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from mnistx.compat.submitit import squeue_watcher

    assert isinstance(SlurmJob.watcher, SlurmInfoWatcher)
    watcher = squeue_watcher()(delay_s=600)
    for job_id in ("7_0", "7_1", "7_2", "8"):
        watcher.register_job(job_id)
    assert watcher._make_command()[:2] == ["squeue", "--array"]
    watcher._info_dict.update(
        watcher.read_info("JOBID|STATE|NODELIST\n7_0|RUNNING|n1\n7_1|PENDING|\n8|REQUEUED|\n")
    )
    states = {j: watcher.get_state(j, mode="cache") for j in ("7_0", "7_1", "7_2", "8")}
    assert states == {"7_0": "RUNNING", "7_1": "PENDING", "7_2": "COMPLETED", "8": "REQUEUED"}
    assert not watcher.is_done("7_1", mode="cache") and watcher.is_done("7_2", mode="cache")
