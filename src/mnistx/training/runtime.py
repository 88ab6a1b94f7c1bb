"""Process-wide settings a run makes before training: the config checked, library logging,
threads and seeds, and the NVML check."""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any


def prepare_process(cfg: Any) -> None:
    """Before anything of a run (training, or tune=lr_find) is built: the config checked,
    the accelerator and devices there, the libraries quiet, the threads and seeds set."""
    import lightning.pytorch as L
    import torch

    from mnistx.config.checks import check_config
    from mnistx.config.trainer_checks import check_accelerator, check_devices

    check_config(cfg)
    quiet_libraries()
    check_accelerator(cfg.trainer.accelerator)
    check_devices(cfg.trainer.accelerator, cfg.trainer.get("devices"))
    if cfg.get("threads"):
        torch.set_num_threads(cfg.threads)
    L.seed_everything(cfg.seed, workers=True, verbose=False)


def quiet_libraries() -> None:
    """Send library logs through our handlers once, and drop chatter users don't act on."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "torchmetrics"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # "GPU available: False", tips and "Restoring states": the summary says what matters.
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=r".*treespec, LeafSpec.*")
    # Metrics are logged per epoch, so the per-step logging interval does not matter.
    warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
    # The module's on_after_batch_transfer (batch augmentation) is meant to be used.
    warnings.filterwarnings("ignore", message=r".*overridden `on_after_batch_transfer`.*")
    # The test loads the best (EMA-averaged) checkpoint without the EMA callback on purpose.
    warnings.filterwarnings("ignore", message=r".*callbacks used to create the checkpoint.*")
    # On a cluster's login node (srun installed) Lightning suggests srun for every run; mnistx
    # runs reach SLURM through hydra/launcher=slurm or the user's own srun / sbatch.
    warnings.filterwarnings("ignore", message=r".*`srun` command is available on your system.*")


def skip_per_step_nvml_check(strategy: Any) -> None:
    """Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 on import so that fork-based strategies
    can fork before CUDA starts. With it set, every optimizer step asks NVML whether CUDA is
    there (torch's graph-capture health check; a dlopen each time, 0.3-2 ms per step on this
    CPU machine, as long as a small MLP's whole step). Only the fork-based strategies need it."""
    if not any(word in str(strategy) for word in ("fork", "notebook")):
        os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)


_frozen: list[bool] = []


def freeze_imports() -> None:
    """Once per sweep command's process (never in a program importing mnistx: a notebook's
    own objects are not frozen), after its imports and before its first job builds anything:
    what is alive then (torch, Lightning, Hydra: ~0.5 million objects) is moved out of
    later garbage collections (`gc.freeze`), which would otherwise walk it again each time,
    ~0.2 s per full collection here, one every ~5 jobs; they then take ~0.02 s. No object of
    a run is frozen (none exists yet); what the imports left as cyclic garbage (~8,000
    objects) is kept for the process's life."""
    import gc

    if not _frozen:
        _frozen.append(True)
        gc.freeze()
