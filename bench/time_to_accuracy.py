"""Time-to-accuracy benchmark: an experiment preset through mnistx vs the same recipe by hand.

For each seed, trains `experiment=<preset>` (default fast_cnn) with `target_acc` through mnistx
(the real Trainer, callbacks, logging, as `python -m mnistx.train`) and then through a minimal
hand-written loop that builds the same network, optimizer, schedule and loss from the same
composed config and validates at the same points (every epoch end), on the same in-memory
tensors. Both clocks cover training plus those validations, as mnistx's training time does. An
untimed hand-loop run goes first (the first use of each convolution shape builds its oneDNN
kernels, which would otherwise count against whichever runs first), and the order of the two
alternates from seed to seed. Prints the seconds to reach the target, the test accuracy
there and the ratio, and writes a Markdown table to bench/TIME_TO_ACCURACY.md.

    python bench/time_to_accuracy.py [--preset fast_cnn] [--seeds 1,2,3] [--target 0.99]
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import tempfile
import time
from pathlib import Path

import lightning.pytorch as L
import torch

from mnistx.config.build import build
from mnistx.inspection.inference import predict_probs
from mnistx.models.networks import build_network
from mnistx.runs.compose import compose_config
from mnistx.training.recipe import train


def _accuracy(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((predict_probs(net, x).argmax(1) == y.cpu()).float().mean())


def hand_loop(cfg, target: float, device: str = "cpu") -> dict[str, float | None]:
    """The preset's recipe in plain PyTorch: returns seconds to target and test accuracy."""
    L.seed_everything(cfg.seed, verbose=False)
    dm = build("data", cfg.data)
    dm.prepare_data()
    dm.setup()
    (x, y), (vx, vy), (tx, ty) = (
        tuple(t.to(device) for t in dm.splits[k].tensors()) for k in ("train", "val", "test")
    )
    net = build_network(cfg.model).to(device)
    channels_last = bool(cfg.model.get("channels_last"))
    augment = build("augment", cfg.augment)
    if isinstance(augment, torch.nn.Module):
        augment = augment.to(device)
    criterion = build("loss", cfg.loss)
    opt = build("optimizer", cfg.optimizer)(net.parameters())
    bs, epochs = cfg.data.batch_size, cfg.trainer.max_epochs
    steps = epochs * -(-len(x) // bs)
    sched_cfg = {k: v for k, v in cfg.scheduler.items() if k != "interval"}
    make_sched = build("scheduler", sched_cfg) if sched_cfg.get("_target_") else None
    per_step = cfg.scheduler.interval == "step"
    sched = None
    if make_sched is not None:
        sched = make_sched(opt, total_steps=steps) if per_step else make_sched(opt)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    sync()
    start, seconds = time.perf_counter(), None
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            xb, yb = x[idx], y[idx]
            if channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            xb = augment(xb)
            loss = criterion(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if sched is not None and per_step:
                sched.step()
        if sched is not None and not per_step:
            sched.step()
        if _accuracy(net, vx, vy) >= target:  # .item() inside: synchronises the device
            seconds = time.perf_counter() - start
            break
    return {"seconds": seconds, "test_acc": _accuracy(net, tx, ty)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fast_cnn")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--out", default=str(Path(__file__).with_name("TIME_TO_ACCURACY.md")))
    args = parser.parse_args()
    logging.getLogger("lightning").setLevel(logging.WARNING)

    def config(seed: str, out: str):
        return compose_config(
            [
                f"experiment={args.preset}",
                f"seed={seed}",
                f"target_acc={args.target}",
                f"data.data_dir={args.data_dir}",
                f"output_dir={out}",
                "trainer.enable_model_summary=false",
            ]
        )

    rows = []
    seeds = args.seeds.split(",")
    with tempfile.TemporaryDirectory() as out:
        hand_loop(config(seeds[0], out), args.target)  # warm-up, untimed
    for n, seed in enumerate(seeds):
        with tempfile.TemporaryDirectory() as out:
            cfg = config(seed, out)
            if n % 2:
                loop = hand_loop(cfg, args.target)
                ours = train(cfg)
            else:
                ours = train(cfg)
                loop = hand_loop(cfg, args.target)
        rows.append(
            (seed, ours["seconds_to_target"], ours["test/acc"], loop["seconds"], loop["test_acc"])
        )
        print(
            f"seed {seed}: mnistx {ours['seconds_to_target']} s ({ours['test/acc']:.4f}), "
            f"loop {loop['seconds']} s ({loop['test_acc']:.4f})",
            flush=True,
        )

    def fmt(s: float | None) -> str:
        return "not reached" if s is None else f"{s:.1f}"

    ratios = [o / h for _, o, _, h, _ in rows if o and h]
    lines = [
        f"Time to val/acc >= {args.target} for `experiment={args.preset}`, seeds {args.seeds}, "
        f"one process, torch {torch.__version__}, {platform.machine()}, "
        f"{torch.get_num_threads()} threads. Training time including the per-epoch validations "
        "(mnistx: the training time in metrics.json). `python bench/time_to_accuracy.py`",
        "",
        "| seed | mnistx s | mnistx test acc | hand loop s | hand loop test acc | mnistx / loop |",
        "|---|---|---|---|---|---|",
    ]
    for seed, o, oa, h, ha in rows:
        ratio = f"{o / h:.2f}x" if o and h else "-"
        lines.append(f"| {seed} | {fmt(o)} | {oa:.2%} | {fmt(h)} | {ha:.2%} | {ratio} |")
    if ratios:
        lines.append(f"| median | | | | | {statistics.median(ratios):.2f}x |")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
