"""Class probabilities for a whole tensor of images, in batches, without autograd."""

from __future__ import annotations

import torch
from torch import nn


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
