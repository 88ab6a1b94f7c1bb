"""What `model.pool_first` buys: training-step time of each CNN preset's network with its
blocks in the usual order (conv-BatchNorm-ReLU-pool) and pooled first (conv-pool-BatchNorm-ReLU).

Pooling first runs BatchNorm and ReLU (memory-bound on a CPU) on a quarter of the pixels.
Each step is forward, backward and the preset's optimizer step on one batch of the preset's
size, in its memory layout. The two orders alternate step by step so that drift in the
machine's speed hits both alike; it prints medians (ms) and their ratio.

    python bench/pool_order.py [--steps 40] [--experiments fast_cnn,best_cnn]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from hydra.utils import instantiate

from mnistx.models.networks import build_network
from mnistx.runs.compose import compose_config


def _stepper(cfg, pool_first: bool):
    torch.manual_seed(0)
    model_cfg = dict(cfg.model, pool_first=pool_first)
    net = build_network(model_cfg)
    opt = instantiate(cfg.optimizer)(net.parameters())
    bs = cfg.data.batch_size
    x = torch.randn(bs, cfg.data.channels, cfg.data.image_size, cfg.data.image_size)
    if cfg.model.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, cfg.data.num_classes, (bs,))

    def step() -> float:
        t = time.perf_counter()
        loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return time.perf_counter() - t

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--experiments", default="fast_cnn,best_cnn")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name in args.experiments.split(","):
        cfg = compose_config([f"experiment={name}"])
        last, first = _stepper(cfg, False), _stepper(cfg, True)
        for _ in range(5):  # warm-up: oneDNN primitive creation, allocator
            last(), first()
        pairs = [(last(), first()) for _ in range(args.steps)]
        t_last = statistics.median(p[0] for p in pairs) * 1e3
        t_first = statistics.median(p[1] for p in pairs) * 1e3
        print(
            f"{name:10s} channels={list(cfg.model.channels)} batch {cfg.data.batch_size}: "
            f"pool last {t_last:6.1f} ms/step, pool first {t_first:6.1f} ms/step, "
            f"speed-up x{t_last / t_first:.2f}"
        )


if __name__ == "__main__":
    main()
