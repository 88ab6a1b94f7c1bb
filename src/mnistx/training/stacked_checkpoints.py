"""Each stacked job's checkpoints, in the format of a job trained alone, so that `eval`,
`predict`, `serve` and `resume=` read them as any job's: its weights and hyperparameters, its
part of the shared optimizer's and scheduler's state, the loop state of the stack's Trainer
(the same epochs and steps as the job's own), its ModelCheckpoint callbacks' state, and the
mnistx record (history, best epoch, its random state)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import lightning as lightning_pkg
import lightning.pytorch as L
import torch
from lightning.pytorch.callbacks import Checkpoint

from mnistx.training.checkpoint_io import AtomicCheckpointIO
from mnistx.training.stacked_member import Member
from mnistx.training.stacked_module import StackedModule

# Per-parameter-group lists in a scheduler's state (one entry per job of the stack).
_PER_GROUP = ("base_lrs", "_last_lr")


class MemberCheckpoints(Checkpoint):
    """Each job still in the stack gets its last.ckpt and, when its val/acc improved, its
    best.ckpt, at the moment ModelCheckpoint writes a job's alone: at the end of each
    training epoch when validation runs once per epoch (after the LightningModule's hook, as
    a Checkpoint callback), else after each validation."""

    def __init__(self, members: list[Member], timer: Any) -> None:
        self.members, self.timer, self.io = members, timer, AtomicCheckpointIO()

    @staticmethod
    def _at_epoch_end(trainer: L.Trainer) -> bool:
        return trainer.check_val_every_n_epoch == 1 and trainer.val_check_interval == 1.0

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._at_epoch_end(trainer):
            self._save(trainer, pl_module)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking and not self._at_epoch_end(trainer):
            self._save(trainer, pl_module)

    def _save(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        assert isinstance(pl_module, StackedModule)
        pl_module.write_back()
        optimizer = trainer.optimizers[0]
        schedulers = [c.scheduler for c in trainer.lr_scheduler_configs]
        loops = {
            "fit_loop": trainer.fit_loop.state_dict(),
            "validate_loop": trainer.validate_loop.state_dict(),
            "test_loop": trainer.test_loop.state_dict(),
            "predict_loop": trainer.predict_loop.state_dict(),
        }
        for k, member in enumerate(self.members):
            if not member.active(trainer.current_epoch):  # failed, or pruned before
                continue
            module = member.module
            improved = module.best_epoch == trainer.current_epoch
            best, last = member.checkpoint(monitored=True), member.checkpoint(monitored=False)
            folder = Path(best.dirpath or ".")
            score = module.val_acc_best.compute() if module.best_epoch >= 0 else None
            best_score: Any = score
            if improved:
                best.best_model_path = best.kth_best_model_path = str(folder / "best.ckpt")
                best.best_model_score = best.kth_value = best_score
                best.best_k_models = {best.best_model_path: best_score}
            best.current_score = torch.tensor(module.history["val/acc"][-1])
            last.best_model_path = str(folder / "last.ckpt")
            state = {
                "epoch": trainer.current_epoch,
                "global_step": trainer.global_step,
                "pytorch-lightning_version": lightning_pkg.__version__,
                "state_dict": module.state_dict(),
                "loops": copy.deepcopy(loops),
                "callbacks": {
                    "Timer": self.timer.state_dict(),
                    best.state_key: best.state_dict(),
                    last.state_key: last.state_dict(),
                },
                "optimizer_states": [_job_state(optimizer, k, pl_module)],
                "lr_schedulers": [_scheduler_state(s, pl_module.group_of(k)) for s in schedulers],
                "hparams_name": "kwargs",
                "hyper_parameters": dict(module.hparams),
                "mnistx": {
                    "history": module.history,
                    "best_epoch": module.best_epoch,
                    "val_acc_best": None if score is None else float(score),
                    "torch_rng": member.rng,
                },
            }
            if improved:
                self.io.save_checkpoint(state, folder / "best.ckpt")
            self.io.save_checkpoint(state, folder / "last.ckpt")


def _job_state(optimizer: torch.optim.Optimizer, k: int, stack: StackedModule) -> dict[str, Any]:
    """Job k's part of the shared optimizer's state: what its own optimizer would save (its
    group; in a group over the stacked tensors, its slice of each state tensor)."""
    full = optimizer.state_dict()
    group = dict(full["param_groups"][stack.group_of(k)])
    ids = group["params"]
    group["params"] = list(range(len(ids)))
    n = len(stack.members)

    def own(value: Any) -> Any:
        if stack.views is None and torch.is_tensor(value) and value.dim() and len(value) == n:
            return value[k].clone()
        return value

    state = {
        i: {name: own(v) for name, v in full["state"][p].items()}
        for i, p in enumerate(ids)
        if p in full["state"]
    }
    return {"state": state, "param_groups": [group]}


def _scheduler_state(scheduler: Any, k: int) -> dict[str, Any]:
    state = scheduler.state_dict()
    return {key: ([v[k]] if key in _PER_GROUP else v) for key, v in state.items()}
