"""hydra/launcher=stacked: a sweep's compatible jobs trained together, each job what it would
be alone: the same numbers, the same files, checkpoints that eval and resume= read as a solo
job's, a diverging job failed alone, an incompatible job trained alone in the same sweep."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest
import torch
from helpers import TINY_OVERRIDES, run_cli, start_cli

# Its module fixtures train: all its tests on one xdist worker, so they train once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("stacked")]
STACKED = "hydra/launcher=stacked"
# Pictures and TensorBoard on: the files of a job must be those of a job alone.
WITH_PICTURES = [o for o in TINY_OVERRIDES if not o.startswith("callbacks.pictures")]


def _records(sweep: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(sweep.glob("*/metrics.json"))}


def _same(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(
        math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-6) for x, y in zip(a, b, strict=True)
    )


def _both(root: Path, name: str, *args: str) -> tuple[Path, Path]:
    """The sweep `args`, stacked and with Hydra's basic launcher."""
    stacked, alone = root / f"{name}-stacked", root / f"{name}-alone"
    run_cli(root, "-m", *args, STACKED, f"hydra.sweep.dir={stacked}")
    run_cli(root, "-m", *args, f"hydra.sweep.dir={alone}")
    return stacked, alone


@pytest.fixture(scope="module")
def grid(tiny_data, tmp_path_factory) -> tuple[Path, Path]:
    """24 jobs: 3 optimizers (3 stacks) x 2 seeds x 2 learning rates x dropout or not, in
    float64. In float32 a batched matrix product adds in another order than one network's
    (1e-7 apart), and Adam without dropout on this tiny set can turn that into 1e-3 within
    two epochs, stacked or not (README); in float64 the same steps agree to the last digit
    that metrics.json keeps, so any difference here is the stack's doing."""
    return _both(
        tmp_path_factory.mktemp("grid"),
        "grid",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer.precision=64-true",
        "optimizer=sgd,sgd_momentum,adam",
        "seed=0,1",
        "optimizer.lr=0.01,0.03",
        "model.dropout=0,0.25",
    )


@pytest.fixture(scope="module")
def mixed(tiny_data, tmp_path_factory) -> tuple[Path, Path]:
    """4 jobs with pictures: two stack (one of them diverges), two with batch norm cannot."""
    return _both(
        tmp_path_factory.mktemp("mixed"),
        "mixed",
        f"data.data_dir={tiny_data}",
        *WITH_PICTURES,
        "model.batch_norm=false,true",
        "optimizer=sgd",
        "optimizer.lr=0.05,1e8",
    )


@pytest.fixture(scope="module")
def cnn(tiny_data, tmp_path_factory) -> tuple[Path, Path]:
    """4 small CNNs with dropout and two activations: grouped convolutions in one stack."""
    return _both(
        tmp_path_factory.mktemp("cnn"),
        "cnn",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "model=cnn",
        "model.channels=[4,8]",
        "model.fc_hidden=16",
        "model.dropout=0.25",
        "model.activation=relu,tanh",
        "seed=0,1",
    )


def test_stacked_jobs_equal_the_same_jobs_trained_alone(grid):
    stacked, alone = (_records(s) for s in grid)
    assert len(stacked) == 24 and stacked.keys() == alone.keys()
    for name, s in stacked.items():
        a = alone[name]
        assert s["status"] == a["status"] == "ok", name
        for key in ("train/loss", "train/acc", "val/loss", "val/acc", "train/lr"):
            assert _same(s["history"][key], a["history"][key]), (name, key)
        assert s["test/acc"] == pytest.approx(a["test/acc"], abs=1e-6), name
        assert s["test/loss"] == pytest.approx(a["test/loss"], rel=1e-4), name
        assert s["best_epoch"] == a["best_epoch"], name
    # The seeds, learning rates and dropout rates of one stack did make different runs.
    assert len({s["test/loss"] for s in stacked.values()}) == 24


def test_stacked_cnns_equal_the_same_cnns_trained_alone(cnn, tmp_path):
    stacked, alone = (_records(s) for s in cnn)
    assert len(stacked) == 4 and stacked.keys() == alone.keys()
    for name, s in stacked.items():
        a = alone[name]
        assert _same(s["history"]["train/loss"], a["history"]["train/loss"]), name
        assert _same(s["history"]["val/loss"], a["history"]["val/loss"]), name
        assert s["test/acc"] == pytest.approx(a["test/acc"], abs=1e-6), name
    # Jobs with the same optimizer settings share one parameter group over the stack; each
    # job's checkpoint holds its slice of the optimizer's state: extended, as alone.
    name = next(iter(stacked))
    for sweep in cnn:
        run_cli(tmp_path, f"resume='{sweep / name}'", "trainer.max_epochs=3")
    extended, twin = (json.loads((s / name / "metrics.json").read_text()) for s in cnn)
    assert extended["epochs"] == twin["epochs"] == 3
    assert _same(extended["history"]["train/loss"], twin["history"]["train/loss"])


def test_a_stacked_job_has_the_files_of_a_job_alone_and_a_diverging_one_fails_alone(mixed):
    stacked, alone = mixed

    def files(folder: Path) -> set[str]:
        # TensorBoard's event file names hold the time and the host
        return {
            str(p.relative_to(folder)).split("events.out")[0]
            for p in folder.rglob("*")
            if p.is_file()
        }

    records, twins = _records(stacked), _records(alone)
    assert len(records) == 4 and records.keys() == twins.keys()
    for name, record in records.items():
        twin = twins[name]
        assert files(stacked / name) == files(alone / name), name
        assert record["status"] == twin["status"], name
        if "lr=0.05" not in name:
            assert record["status"] == "failed" and "diverged" in record["reason"], name
            assert record["reason"] == twin["reason"], name
        else:
            assert record["status"] == "ok", name
            assert record["test/acc"] == pytest.approx(twin["test/acc"], abs=1e-6), name
    assert "samples.png" in files(stacked / _ok_stacked_job(records))
    # TensorBoard's per-epoch misclassified validation images, drawn from the job's slice.
    name = _ok_stacked_job(records)
    images = [_images(sweep / name, "val/misclassified") for sweep in mixed]
    assert [step for step, _ in images[0]] == [step for step, _ in images[1]] == [0, 1]
    assert images[0] == images[1]  # the same images picked, drawn alike
    for sweep in mixed:  # its own log, ending as a job alone's does
        last = (sweep / name / "train.log").read_text().strip().splitlines()[-1]
        assert "[mnistx][INFO] - finished in " in last and last.endswith(f"in {sweep / name}")
    report = (stacked / "comparison.csv").read_text()
    assert report.count("\n") == 5  # a row per job


def _images(run: Path, tag: str) -> list[tuple[int, bytes]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    return [(e.step, e.encoded_image_string) for e in events.Images(tag)]


def _ok_stacked_job(records: dict[str, dict]) -> str:
    (name,) = [
        n for n, r in records.items() if r["status"] == "ok" and "batch_norm=false" in n.lower()
    ]
    return name


def test_eval_and_resume_read_a_stacked_jobs_checkpoints_as_a_solo_jobs(mixed, tmp_path):
    stacked, alone = mixed
    name = _ok_stacked_job(_records(stacked))
    record = json.loads((stacked / name / "metrics.json").read_text())
    evaluated = run_cli(tmp_path, f"run={stacked / name}", module="mnistx.eval")
    assert f"{100 * record['test/acc']:.2f}" in evaluated.stdout + evaluated.stderr
    # Extended by one epoch: as the same job trained alone and extended.
    for sweep in (stacked, alone):
        run_cli(tmp_path, f"resume='{sweep / name}'", "trainer.max_epochs=3")
    extended, twin = (json.loads((s / name / "metrics.json").read_text()) for s in mixed)
    assert extended["epochs"] == twin["epochs"] == 3
    assert _same(extended["history"]["val/loss"], twin["history"]["val/loss"])
    assert extended["test/acc"] == pytest.approx(twin["test/acc"], abs=1e-6)


def _cfg(*overrides: str):
    from mnistx.runs.compose import compose_config

    return compose_config(["output_dir=/tmp/x", *overrides])


def test_jobs_stack_when_they_differ_only_in_per_model_values():
    from mnistx.sweeps.stacking import groups, stacking_key, why_alone

    base = stacking_key(_cfg())
    for same in (
        "seed=3",
        "optimizer.lr=0.1",
        "model.dropout=0.3",
        "model.activation=tanh",
        "loss=mse",
        "optimizer.weight_decay=0.01",
        "tags=[a]",
    ):
        assert stacking_key(_cfg(same)) == base, same
    for other in (
        "data.batch_size=64",
        "model.hidden_sizes=[64]",
        "trainer.max_epochs=3",
        "optimizer=sgd",
        "scheduler=none",
        "data=fashion_mnist",
    ):
        assert stacking_key(_cfg(other)) != base, other
    assert why_alone(_cfg()) is None
    assert "batch_norm" in why_alone(_cfg("model.batch_norm=true"))
    assert "prelu" in why_alone(_cfg("model.activation=prelu"))
    assert "DDP" in why_alone(_cfg("trainer=ddp"))
    assert "EMA" in why_alone(_cfg("callbacks=ema"))
    from mnistx.runs.compose import compose_config

    optuna = compose_config(["output_dir=/tmp/x", "hparams_search=optuna"], with_hydra=True)
    assert why_alone(optuna) is None  # a trial stacks, reporting to its pruner from the stack
    configs = [_cfg(f"seed={s}") for s in range(5)] + [_cfg("model.batch_norm=true")]
    assert groups(configs, 2, fresh=[True] * 6) == [[0, 1], [2, 3], [4], [5]]
    assert groups(configs, 8, fresh=[True, False, True, True, True, True]) == [
        [0, 2, 3, 4],
        [1],
        [5],
    ]


@pytest.mark.parametrize("value", ["0", "-2", "1.5", "many"])
def test_a_bad_max_models_is_one_message(cli_here, tmp_path, value):
    code, out, err = cli_here(
        tmp_path, "-m", "hydra/launcher=stacked", f"hydra.launcher.max_models={value}", "seed=0,1"
    )
    assert code == 1 and "Traceback" not in err, err
    assert err.startswith(f"error: hydra.launcher.max_models={value!r}") or (
        "hydra.launcher.max_models" in err and "positive integer" in err
    ), err
    assert not any(p.name == "metrics.json" for p in tmp_path.rglob("*"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_stacked_jobs_on_cuda_equal_the_same_jobs_alone(tiny_data, tmp_path):
    """On the GPU too (make gpu-check): dropout masks from each job's own CUDA stream."""
    stacked, alone = (
        _records(s)
        for s in _both(
            tmp_path,
            "cuda",
            f"data.data_dir={tiny_data}",
            *TINY_OVERRIDES,
            "trainer.accelerator=gpu",
            "model.dropout=0.25",
            "seed=0,1",
            "optimizer.lr=0.001,0.003",
        )
    )
    assert len(stacked) == 4 and stacked.keys() == alone.keys()
    for name, s in stacked.items():
        assert s["accelerator"] == "cuda"
        a = alone[name]
        for key in ("train/loss", "val/loss"):
            assert all(
                math.isclose(x, y, rel_tol=1e-3)
                for x, y in zip(s["history"][key], a["history"][key], strict=True)
            ), (name, key)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_a_stopped_stacked_sweep_is_finished_by_resume_as_its_jobs_alone(tiny_data, tmp_path, sig):
    """SIGKILL or Ctrl-C once the stack has written its jobs' first checkpoints (Ctrl-C: each
    job recorded interrupted, the report written, exit 130); `resume=<sweep>` continues each
    job alone from its own last.ckpt and ends where the job trained alone, uninterrupted,
    ends."""
    import signal
    import time

    sweep = tmp_path / "sw"
    # Batches of 2: epochs long enough to kill the stack after its first epoch.
    common = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "data.batch_size=2"]
    common += ["trainer.max_epochs=3", "scheduler=none"]
    args = ["-m", *common, "optimizer.lr=0.002,0.003", STACKED, f"hydra.sweep.dir={sweep}"]
    proc = start_cli(tmp_path, *args)
    deadline = time.time() + 240
    while len(list(sweep.glob("*/checkpoints/last.ckpt"))) < 2:
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read()
        time.sleep(0.02)
    proc.send_signal(getattr(signal, sig))
    proc.wait(timeout=60)
    if sig == "SIGKILL":
        assert not list(sweep.glob("*/metrics.json"))
    else:
        assert proc.returncode == 130
        assert proc.stderr.read().count("interrupted: continue with") == 1
        records = _records(sweep)
        assert [r["status"] for r in records.values()] == ["interrupted", "interrupted"]
        assert "interrupted" in (sweep / "comparison.md").read_text()

    done = run_cli(tmp_path, f"resume={sweep}")
    assert "2 to continue from their checkpoints" in done.stdout + done.stderr
    for i, job in enumerate(("optimizer.lr=0.002", "optimizer.lr=0.003")):
        record = json.loads((sweep / job / "metrics.json").read_text())
        assert record["status"] == "ok" and record["epochs"] == 3, job
        (resume,) = record["resumes"]
        assert 1 <= resume["from_epoch"] < 3
        alone = tmp_path / f"alone{i}"
        run_cli(tmp_path, *common, job, f"hydra.run.dir={alone}")
        twin = json.loads((alone / "metrics.json").read_text())
        assert _same(record["history"]["val/loss"], twin["history"]["val/loss"]), job
        assert record["test/acc"] == pytest.approx(twin["test/acc"], abs=1e-6), job


def test_a_stack_that_cannot_run_is_recorded_as_its_jobs_alone_and_the_sweep_goes_on(
    cli_here, tiny_data, tmp_path
):
    """A GPU asked for on a machine without one: each job skipped with the message it gets
    alone, the report written, exit 0 (as a sweep of jobs that cannot run)."""
    if torch.cuda.is_available():
        pytest.skip("needs a machine without a GPU")
    sweep = tmp_path / "sw"
    code, _, err = cli_here(
        tmp_path,
        "-m",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer.accelerator=gpu",
        "seed=0,1",
        STACKED,
        f"hydra.sweep.dir={sweep}",
    )
    assert code == 0 and "Traceback" not in err, err
    records = _records(sweep)
    assert [r["status"] for r in records.values()] == ["skipped", "skipped"]
    assert all("gpu" in r["reason"].lower() for r in records.values())
    assert err.count("skipped: ") == 2
    assert (sweep / "comparison.md").exists()


def test_an_optuna_batch_trains_stacked_and_a_pruned_trial_leaves_its_stack(tiny_data, tmp_path):
    """Four trials in a fixed order, two at a time (hydra.sweeper.n_jobs=2), each batch one
    stack: lr 1e-4 and 3e-4 complete; then 1e-9, which learns nothing, is pruned after its
    first epoch (judged against the first batch) while its stack-mate 3e-3 (ahead of the
    first batch's median at every epoch) trains on to the end, as the same trial alone
    (float64: to the last digit)."""
    sweep_dir = tmp_path / "search"
    sweep_dir.mkdir()
    storage = f"sqlite:///{sweep_dir / 'optuna.db'}"
    study = optuna.create_study(study_name="mnistx", storage=storage, direction="maximize")
    for lr in (0.0001, 0.0003, 1e-9, 0.003):
        study.enqueue_trial({"optimizer.lr": lr})
    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "trainer.max_epochs=3"]
    args.append("trainer.precision=64-true")
    searched = run_cli(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        STACKED,
        *args,
        "optimizer.lr=choice(0.0001,0.0003,1e-9,0.003)",
        "hydra.sweeper.n_trials=4",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.pruner_args={n_startup_trials:1}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    said = searched.stdout + searched.stderr
    assert said.count("Launching 2 jobs: 2 stacked") == 2, said
    study = optuna.load_study(study_name="mnistx", storage=storage)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED", "COMPLETE"]
    assert list(study.trials[2].intermediate_values) == [0]
    assert len(study.trials[3].intermediate_values) == 3
    pruned = _records(sweep_dir)["optimizer.lr=1e-09"]
    assert pruned["status"] == "pruned" and pruned["pruned_at_epoch"] == 1
    assert pruned["epochs"] == 1 and pruned["test/acc"] is None  # stopped, not tested
    assert len(pruned["history"]["train/loss"]) == len(pruned["history"]["val/loss"]) == 1
    last = torch.load(
        sweep_dir / "optimizer.lr=1e-09" / "checkpoints" / "last.ckpt", weights_only=True
    )
    assert last["epoch"] == 0  # its checkpoint of the epoch it was pruned after, as alone
    mate = _records(sweep_dir)["optimizer.lr=0.003"]
    run_cli(tmp_path, *args, "optimizer.lr=0.003", "hydra.run.dir=alone")
    alone = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    assert mate["status"] == "ok" and mate["history"] == alone["history"]
    assert mate["test/acc"] == alone["test/acc"]
