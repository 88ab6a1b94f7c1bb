"""A trained network from its checkpoint, and its class probabilities for a tensor of images."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mnistx.errors import UserError


def load_network(ckpt: Path) -> nn.Module:
    """The network of an mnistx checkpoint, in eval mode, built from its saved `model`
    hyperparameters without Lightning: the same weights `ClassifierModule.load_from_checkpoint`
    gives, ~3 s sooner (no Lightning or torchmetrics import), so mnistx.predict and
    mnistx.serve start fast. Never compiled: a checkpoint's weights do not depend on it."""
    from mnistx.models.networks import build_network
    from mnistx.runs.saved import read_checkpoint

    state = read_checkpoint(ckpt)  # checked (they build only mnistx's own) and upgraded
    model = state["hyper_parameters"]["model"]
    net = build_network({**model, "compile": False, "channels_last": False})
    weights = {
        k.removeprefix("net."): v for k, v in state["state_dict"].items() if k.startswith("net.")
    }
    try:
        net.load_state_dict(weights)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise UserError(
            f"{ckpt}: its weights do not fit the model its settings describe ({first[:200]})."
        ) from None
    return net.eval()


@torch.inference_mode()
def predict_probs(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Softmax over the model's logits (every mnistx loss trains logits); leaves the model's
    train/eval mode as it found it."""
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        parts = [
            model(x[i : i + batch_size].to(device)).float().softmax(1).cpu()
            for i in range(0, len(x), batch_size)
        ]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0)


def most_confident_mistakes(probs: torch.Tensor, targets: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of up to k wrong predictions, the most confident first."""
    confidence, preds = probs.max(1)
    wrong = (preds != targets.cpu()).nonzero().flatten()
    order = confidence[wrong].argsort(descending=True)
    return wrong[order[:k]]


def captions(probs: torch.Tensor, targets: torch.Tensor, idx: torch.Tensor) -> list[str]:
    preds = probs.argmax(1)
    return [f"pred {int(preds[i])} / true {int(targets[i])}" for i in idx]
