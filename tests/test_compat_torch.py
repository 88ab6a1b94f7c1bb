"""The torch internals mnistx.compat.torch relies on: a cosine schedule's closed form and
last learning rate, and torch.compile's timers."""

from __future__ import annotations

import math

import torch

from mnistx.compat.torch import compile_seconds, restart_from_closed_form


def test_a_stretched_cosine_restarts_from_its_closed_form():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    for _ in range(4):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] < 1e-6  # at eta_min after its 4 epochs
    scheduler.T_max = 8  # the run extended to 8 epochs
    restart_from_closed_form(scheduler)
    expected = 0.5 * (1 + math.cos(math.pi * 4 / 8))
    assert math.isclose(optimizer.param_groups[0]["lr"], expected)
    assert scheduler.get_last_lr() == [optimizer.param_groups[0]["lr"]]


def test_a_scheduler_without_a_closed_form_is_left_alone():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: 0.5)
    restart_from_closed_form(scheduler)
    assert optimizer.param_groups[0]["lr"] == 0.5


def test_torch_compile_timers_are_read():
    seconds = compile_seconds()
    assert seconds is not None and seconds >= 0.0
