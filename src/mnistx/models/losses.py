"""Training losses. Models emit logits; each loss applies the output transform it needs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mnistx.config.kinds import in_range


class CrossEntropy(nn.Module):
    """Softmax cross-entropy, with optional label smoothing."""

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        in_range(
            label_smoothing,
            "loss.label_smoothing",
            0,
            1,
            "in [0, 1): the share of the target spread over the other classes",
            "0.1",
        )
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)


class NLL(nn.Module):
    """NLL of log-softmax outputs: the tutorials' LogSoftmax layer + NLLLoss."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.nll_loss(F.log_softmax(logits, dim=1), target)


class MSE(nn.Module):
    """Squared error between class probabilities (softmax) and one-hot targets."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        return F.mse_loss(logits.softmax(dim=1), one_hot)


class BCE(nn.Module):
    """One-vs-rest binary cross-entropy: each class's logit through a sigmoid against its
    one-hot target (the last loss the source tutorials list)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        one_hot = F.one_hot(target, logits.shape[1]).to(logits.dtype)
        return F.binary_cross_entropy_with_logits(logits, one_hot)
