"""One LightningModule over several jobs' networks, stacked (mnistx.models.stacked).

Each job's ClassifierModule keeps its own parameters, metrics and history: the stacked forward
pass gives each its logits, the sum of their losses gives each its own gradient, and one
optimizer holds a parameter group per job (lr, weight decay, momentum, betas: the job's own),
whose per-group updates are those of the job's own optimizer. Each job draws its random
numbers (dropout masks, augmentation) from its own stream, saved between its draws. A job
whose loss stops being finite, or whose Optuna trial is pruned, leaves the stack: its loss is
no longer summed and its checkpoints no longer written, and the others go on. Each epoch,
each job's Pictures callback draws its misclassified validation images from its slice.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import lightning.pytorch as L
import torch
import torch.nn.functional as F

from mnistx.config.build import build
from mnistx.errors import DivergedError
from mnistx.models.losses import CrossEntropy
from mnistx.models.stacked import StackedNetworks
from mnistx.training.stacked_member import Member


class StackedModule(L.LightningModule):
    """K ClassifierModules trained as one (module doc)."""

    def __init__(self, members: list[Member]) -> None:
        super().__init__()
        self.members = members
        # The jobs' modules (their metrics, on the training device) and their networks' stack.
        self.jobs = torch.nn.ModuleList([m.module for m in members])
        self.stack = StackedNetworks([m.module.net for m in members])
        criteria = {_criterion_key(m.module.criterion) for m in members}
        self._smoothing = None  # one cross-entropy call for all jobs when they share it
        if len(criteria) == 1 and isinstance(members[0].module.criterion, CrossEntropy):
            self._smoothing = members[0].module.criterion.label_smoothing
        self.views: list[list[torch.Tensor]] | None = None  # per-job groups (configure_...)

    def write_back(self) -> None:
        """Each job's network set to its slice of the stack (for its checkpoints)."""
        self.stack.write_back()

    # -- randomness: each job draws from its own stream, as it would alone ----------------
    def _with_rng(self, k: int, fn: Callable[[], Any]) -> Any:
        member = self.members[k]
        cuda = torch.cuda.is_available() and self.device.type == "cuda"
        outer = torch.get_rng_state()
        outer_cuda = torch.cuda.get_rng_state(self.device) if cuda else torch.empty(0)
        torch.set_rng_state(member.rng)
        if cuda and member.cuda_rng is not None:
            torch.cuda.set_rng_state(member.cuda_rng, self.device)
        try:
            return fn()
        finally:
            member.rng = torch.get_rng_state()
            torch.set_rng_state(outer)
            if cuda:
                member.cuda_rng = torch.cuda.get_rng_state(self.device)
                torch.cuda.set_rng_state(outer_cuda, self.device)

    def _stack(self, batches: Sequence[tuple[torch.Tensor, torch.Tensor]], train: bool):
        xs = []
        for k, (x, _) in enumerate(batches):
            module = self.members[k].module
            if module.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if train and module.augment is not None:
                x = self._with_rng(k, functools.partial(module.augment, x))
            xs.append(x)
        return self.stack(torch.stack(xs), train, self._with_rng)

    # -- training ---------------------------------------------------------------------------
    def training_step(self, batches, batch_idx: int) -> torch.Tensor | None:
        logits = self._stack(batches, train=True)
        ys = torch.stack([y for _, y in batches])
        losses = self._losses(logits, ys)
        seen, preds = losses.detach(), logits.detach().argmax(-1)
        alive = [k for k, m in enumerate(self.members) if m.active(self.current_epoch)]
        for k in alive:
            self.members[k].module.note_train_outputs(seen[k], preds[k], ys[k])
        # On the CPU the check is free (on a GPU the epoch-end check catches it), as alone.
        if seen.device.type == "cpu" and not bool(torch.isfinite(seen[alive]).all()):
            where = f"at step {batch_idx + 1} of epoch {self.current_epoch + 1}"
            for k in alive:
                self._check(k, seen[k], where)
            alive = [k for k in alive if not self.members[k].failed]
        if not alive:  # every job has left the stack (diverged)
            self.trainer.should_stop = True
            return None
        return losses.sum() if len(alive) == len(self.members) else losses[alive].sum()

    def _losses(self, logits: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        """Each job's loss on its batch, [K]."""
        if self._smoothing is not None:
            k, b, c = logits.shape
            each = F.cross_entropy(
                logits.reshape(k * b, c),
                ys.reshape(-1),
                reduction="none",
                label_smoothing=self._smoothing,
            )
            return each.view(k, b).mean(1)
        return torch.stack(
            [m.module.criterion(logits[k], ys[k]) for k, m in enumerate(self.members)]
        )

    def _check(self, k: int, loss: torch.Tensor, where: str) -> None:
        try:
            self.members[k].module.check_finite(loss, where)
        except DivergedError as e:
            self.members[k].failed = str(e)

    def on_after_backward(self) -> None:
        """Per-job parameter groups hold views of the stack: each gets its slice of the
        gradient (none for a job that left the stack)."""
        if self.views is None:
            return
        stacked = list(self.stack.stacked)
        for k, views in enumerate(self.views):
            for view, p in zip(views, stacked, strict=True):
                left = not self.members[k].active(self.current_epoch) or p.grad is None
                view.grad = None if left else p.grad[k]
        for p in stacked:
            p.grad = None  # held by the views now; the next backward starts afresh

    def group_of(self, k: int) -> int:
        """The optimizer's parameter group that holds job k's parameters."""
        return 0 if self.views is None else k

    def on_train_epoch_start(self) -> None:
        groups = self.trainer.optimizers[0].param_groups
        for k, member in enumerate(self.members):
            member.module.start_train_epoch(float(groups[self.group_of(k)]["lr"]))

    def on_train_epoch_end(self) -> None:
        for k, member in enumerate(self.members):
            module = member.module
            module.end_train_epoch()
            values = module.epoch_values("train")
            if not member.active(self.current_epoch):
                continue
            module.append_history(values)
            self._check(k, values["train/loss"], f"in epoch {self.current_epoch + 1}")

    # -- validation -----------------------------------------------------------------------
    def validation_step(self, batches, batch_idx: int) -> None:
        logits = self._stack(batches, train=False)
        for k, member in enumerate(self.members):
            y = batches[k][1]
            module = member.module
            module.note_eval_step("val", module.criterion(logits[k], y), logits[k], y)

    def on_validation_epoch_end(self) -> None:
        epoch, sanity = self.current_epoch, self.trainer.sanity_checking
        scored = []
        for member in self.members:
            module = member.module
            values = module.epoch_values("val")
            if sanity or not member.active(epoch):
                continue
            module.append_history(values)
            module.update_best(values["val/acc"], epoch)
            scored.append((member, float(values["val/acc"])))
        if sanity:
            return
        self._val_pictures(epoch)
        # An Optuna trial's val/acc to its pruner, as alone; pruned, it leaves the stack after
        # this epoch (its checkpoints of this epoch are still written).
        for member, val_acc in scored:
            reporter = member.reporter
            if reporter is not None and reporter.report(val_acc, epoch):
                reporter.stop(epoch)
                member.pruned = epoch + 1
        if not any(m.active(epoch + 1) for m in self.members):
            self.trainer.should_stop = True

    @torch.no_grad()
    def _val_pictures(self, epoch: int) -> None:
        """Each job's per-epoch picture of its misclassified validation images, drawn by its
        own Pictures callback from its slice of the stack, as alone."""
        drawn = [(k, p) for k, m in enumerate(self.members) for p in m.pictures]
        if not drawn:
            return
        rows = [p.val_rows(self.members[k].data) for k, p in drawn]
        if len({len(x) for x, _ in rows}) != 1 or len(drawn) != len(self.members):
            return  # (the jobs of a stack share their data settings: not reached)
        logits = self._stack([(x.to(self.device), y) for x, y in rows], train=False)
        probs = logits.float().softmax(-1).cpu()
        for (k, pictures), (x, y) in zip(drawn, rows, strict=True):
            member = self.members[k]
            if member.active(epoch):
                pictures.val_mistakes(member.setup.trainer, member.data, x, y, probs[k], epoch)

    # -- the optimizer: one parameter group per job ---------------------------------------
    def configure_optimizers(self) -> Any:
        """One optimizer: one parameter group over the stacked tensors when every job has
        the same settings (a seed sweep), else one group per job, of views of its slices."""
        first = self.members[0].module
        options = [_group_options(m.module.make_optimizer) for m in self.members]
        stacked = list(self.stack.stacked)
        if all(o == options[0] for o in options):
            groups = [{"params": stacked, **options[0]}]
        else:
            self.views = [[p.detach()[k] for p in stacked] for k in range(len(self.members))]
            groups = [{"params": v, **o} for v, o in zip(self.views, options, strict=True)]
        optimizer = first.make_optimizer(groups)
        sched_cfg = dict(first.hparams["scheduler"] or {})
        interval = sched_cfg.pop("interval", "epoch")
        if not sched_cfg.get("_target_"):
            return optimizer
        make = build("scheduler", sched_cfg)
        kwargs = {}
        if "total_steps" in inspect.signature(make.func).parameters and (
            "total_steps" not in make.keywords
        ):
            kwargs["total_steps"] = int(self.trainer.estimated_stepping_batches)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": make(optimizer, **kwargs), "interval": interval},
        }


def _criterion_key(criterion: Any) -> tuple[Any, ...]:
    return (type(criterion).__name__, getattr(criterion, "label_smoothing", None))


def _group_options(make_optimizer: Any) -> dict[str, Any]:
    """The job's optimizer settings that are per parameter group (lr, weight_decay, ...):
    its own values and the class's defaults for the rest."""
    signature = inspect.signature(make_optimizer.func)
    bound = signature.bind_partial(**make_optimizer.keywords)
    bound.apply_defaults()
    shared = {"params", "foreach", "fused", "capturable", "differentiable", "maximize"}
    return {k: v for k, v in bound.arguments.items() if k not in shared}
