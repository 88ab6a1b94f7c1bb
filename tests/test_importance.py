"""Which settings matter (mnistx.sweeps.importance): the comparison report of a sweep ranks
the swept keys by fANOVA importance (seeds pooled) and draws every job in parallel
coordinates. A key with a known large effect ranks first, a key with none last."""

from __future__ import annotations

import csv
import math

import pytest
from helpers import TINY_OVERRIDES, run_cli


def _runs(rows: list[tuple[str, str, str, float]]) -> list[dict]:
    return [
        {
            "status": "ok",
            "values": {"optimizer.lr": lr, "model.activation": act, "seed": seed},
            "val/acc_best": acc,
            "test/acc": acc,
        }
        for lr, act, seed, acc in rows
    ]


def test_the_key_that_moves_the_accuracy_ranks_first():
    from mnistx.sweeps.importance import rank, report_lines

    rows = []
    for lr in ("0.0001", "0.001", "0.01", "0.1", "1.0"):
        for act in ("relu", "tanh"):
            for seed in ("1", "2"):
                acc = 0.9 - 0.1 * abs(math.log10(float(lr)) + 2) + 0.001 * int(seed)
                rows.append((lr, act, seed, acc))
    ranked = rank(_runs(rows), ["optimizer.lr", "model.activation"])
    assert [k for k, _ in ranked] == ["optimizer.lr", "model.activation"]
    assert ranked[0][1] > 0.9 and sum(v for _, v in ranked) == pytest.approx(1)
    assert "| optimizer.lr | " in "\n".join(report_lines(ranked))
    # Too few finished jobs, or nothing swept: no ranking (and no table).
    assert rank(_runs(rows[:2]), ["optimizer.lr"]) == []
    assert rank(_runs(rows), []) == [] and report_lines([]) == []
    alike = [(lr, act, seed, 0.5) for lr, act, seed, _ in rows]  # nothing to explain
    assert rank(_runs(alike), ["optimizer.lr", "model.activation"]) == []


@pytest.mark.slow
def test_a_sweeps_report_ranks_the_learning_rate_above_a_key_with_no_effect(tiny_data, tmp_path):
    """optimizer.lr across 1e-4..0.3 moves the accuracy; the progress bar cannot."""
    sweep = tmp_path / "sweep"
    done = run_cli(
        tmp_path,
        "-m",
        f"data.data_dir={tiny_data}",
        *[o for o in TINY_OVERRIDES if not o.startswith("trainer.enable_progress_bar")],
        "trainer.max_epochs=1",
        "optimizer=sgd",
        "optimizer.lr=0.0001,0.003,0.1,0.3",
        "trainer.enable_progress_bar=true,false",
        f"hydra.sweep.dir={sweep}",
    )
    with open(sweep / "importance.csv") as f:
        ranked = [(r["key"], float(r["importance"])) for r in csv.DictReader(f)]
    assert [k for k, _ in ranked] == ["optimizer.lr", "trainer.enable_progress_bar"]
    assert ranked[0][1] > 0.8
    report = (sweep / "comparison.md").read_text()
    assert "Which settings matter" in report and "| optimizer.lr |" in report
    assert "Which settings matter (fANOVA importance of val/acc_best): optimizer.lr" in " ".join(
        done.stdout.split()
    )
    for picture in ("importance.png", "parallel_coordinates.png"):
        assert (sweep / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", picture
