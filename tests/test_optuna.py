"""Optuna searches (hparams_search=optuna): real studies on SQLite and on the PostgreSQL server
that `.ci/postgres.sh` starts (CI sets MNISTX_POSTGRES=1, so there those tests must run),
real trials on the tiny dataset, pruning, workers sharing a study, optuna-dashboard."""

from __future__ import annotations

import csv
import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import optuna
import pytest
from helpers import TINY_OVERRIDES, run_cli, start_cli
from omegaconf import OmegaConf
from packaging.requirements import Requirement

from mnistx.runs.compose import compose_config

POSTGRES_URL = os.environ.get(
    "MNISTX_POSTGRES_URL", "postgresql://mnistx:mnistx@127.0.0.1:5432/mnistx_test"
)
SEARCHED = {"optimizer", "optimizer.lr", "model.activation", "search.width", "data.batch_size"}


def _search_args(data: Path, *more: str) -> list[str]:
    return [
        "-m",
        "hparams_search=optuna",
        f"data.data_dir={data}",
        *TINY_OVERRIDES,
        "trainer.max_epochs=1",
        "hydra.callbacks.sweep.report=false",
        *more,
    ]


def _sqlite(study_dir: Path) -> str:
    return f"sqlite:///{study_dir / 'optuna.db'}"


def _jobs(study_dir: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in study_dir.glob("*/metrics.json")}


def _states(study: optuna.Study) -> list[str]:
    return [t.state.name for t in study.get_trials(deepcopy=False)]


@pytest.fixture(scope="module")
def postgres() -> str:
    """The test server's URL; skipped with the reason when it does not answer (failed in CI)."""
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as e:
        reason = (
            f"no PostgreSQL server at {POSTGRES_URL} ({str(e).splitlines()[0][:120]}); "
            "`.ci/postgres.sh start` starts one"
        )
        if os.environ.get("MNISTX_POSTGRES") == "1":
            pytest.fail(f"CI expects the test PostgreSQL server, but {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


def test_the_install_pulls_current_optuna_and_no_old_sqlalchemy():
    requirements = [
        Requirement(r) for r in importlib.metadata.requires("mnistx") or [] if "extra ==" not in r
    ]
    names = {r.name.lower(): r for r in requirements}
    assert "hydra-optuna-sweeper" not in names
    assert "sqlalchemy" not in names and "alembic" not in names  # no caps of ours
    assert not names["optuna"].specifier.contains("3.6.2")
    assert names["optuna"].specifier.contains(optuna.__version__)
    import sqlalchemy

    assert int(sqlalchemy.__version__.split(".")[0]) >= 2  # what the tests run with


def test_the_presets_compose():
    cfg = compose_config(["hparams_search=optuna"], with_hydra=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.mnistx_sweeper.OptunaSweeper"
    assert sweeper.storage.startswith("sqlite:///")
    assert sweeper.storage.endswith("optuna/mnistx/optuna.db")
    assert (sweeper.sampler, sweeper.pruner, sweeper.direction) == ("tpe", "median", "maximize")
    assert sweeper.seed == cfg.seed
    assert set(sweeper.params) == SEARCHED
    assert list(
        compose_config(["hparams_search=optuna", "search.width=64"]).model.hidden_sizes
    ) == [64, 64]
    pareto = compose_config(["hparams_search=optuna_pareto"], with_hydra=True).hydra.sweeper
    assert list(pareto.objective) == ["val/acc_best", "params"]
    assert list(pareto.direction) == ["maximize", "minimize"]
    assert pareto.pruner == "none" and pareto.study_name == "mnistx_pareto"
    assert set(pareto.params) == SEARCHED


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("hydra.sweeper.sampler=bayes", "hydra.sweeper.sampler=bayes is not a sampler"),
        ("hydra.sweeper.pruner=early", "hydra.sweeper.pruner=early is not a pruner"),
        ("hydra.sweeper.objective=accuracy", "hydra.sweeper.objective=accuracy is not a value"),
        ("hydra.sweeper.direction=up", "must be maximize or minimize"),
        ("hydra.sweeper.n_trials=-1", "hydra.sweeper.n_trials=-1 must be a whole number"),
        ("hydra.sweeper.n_jobs=0", "hydra.sweeper.n_jobs=0 must be a whole number >= 1"),
        ("hydra.sweeper.objective=[val/acc_best,params]", "has 1 value(s) for 2 objective(s)"),
        ("hydra.sweeper.sampler_args={n_startup:3}", "sampler_args do not fit the tpe sampler"),
        ("hydra.sweeper.pruner_args={warmup:3}", "pruner_args do not fit the median pruner"),
        (
            "hydra.sweeper.storage=postgresql://mnistx:secret@127.0.0.1:1/none",
            "Cannot open the Optuna storage hydra.sweeper.storage=postgresql://mnistx:***@",
        ),
        ("hydra.sweeper.storage=sqlite:////proc/no/such/optuna.db", "Cannot"),
        ("hydra.sweeper.seed=abc", "hydra.sweeper.seed=abc must be a whole number"),
        ("hydra.sweeper.params={optimizer.lr:'interval(1e-4'}", "search space cannot be read"),
        (
            "hydra.sweeper.params={optimizer.lr:'glob(*)'}",
            "is not a search range Optuna can sample",
        ),
    ],
)
def test_bad_search_settings_get_one_paragraph(cli_here, tmp_path, override, says):
    code, out, err = cli_here(tmp_path, "-m", "hparams_search=optuna", override)
    assert code == 1, (out, err)
    assert says in err and "Traceback" not in err and "secret" not in err
    assert len(err.strip().splitlines()) == 1
    assert not list(tmp_path.glob("outputs/optuna/*/*/metrics.json"))  # no trial ran


def test_a_multi_objective_search_cannot_be_pruned(cli_here, tmp_path):
    code, _, err = cli_here(
        tmp_path, "-m", "hparams_search=optuna_pareto", "hydra.sweeper.pruner=median"
    )
    assert code == 1 and "prunes single-objective studies only" in err


def test_a_search_stores_its_study_resumes_and_opens_in_optuna_dashboard(tiny_data, tmp_path):
    args = _search_args(tiny_data)
    run_cli(tmp_path, *args, "hydra.sweeper.n_trials=2")
    study_dir = tmp_path / "outputs" / "optuna" / "mnistx"
    study = optuna.load_study(study_name="mnistx", storage=_sqlite(study_dir))
    assert _states(study) == ["COMPLETE", "COMPLETE"]
    study.ask()  # a trial left running, as when a search is killed mid-trial

    proc = run_cli(tmp_path, *args, "hydra.sweeper.n_trials=3")
    assert "already has 2 of 3 trials; running the other 1" in proc.stdout + proc.stderr
    study = optuna.load_study(study_name="mnistx", storage=_sqlite(study_dir))
    assert _states(study) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]  # killed, replaced
    assert study.trials[2].user_attrs["mnistx.killed"]
    jobs = _jobs(study_dir)
    assert len(jobs) == 3 and all(m["status"] == "ok" for m in jobs.values())
    for trial in study.trials[:2] + study.trials[3:]:
        folder = Path(trial.user_attrs["mnistx.folder"])
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["val/acc_best"] == pytest.approx(trial.value)
        assert [trial.intermediate_values[0]] == metrics["history"]["val/acc"]  # per epoch

    best = OmegaConf.load(study_dir / "best.yaml")
    assert best["val/acc_best"] == pytest.approx(max(m["val/acc_best"] for m in jobs.values()))
    # data.batch_size, set on the command line, is not searched.
    assert best.params == study.best_trial.params
    assert set(best.params) == SEARCHED - {"data.batch_size"}
    params = " ".join(f"{k}={v}" for k, v in best.params.items())
    assert best.command == " ".join(
        [
            "python -m mnistx.train hparams_search=optuna",
            f"data.data_dir={tiny_data}",
            *TINY_OVERRIDES,
            "trainer.max_epochs=1",
            params,
        ]
    )
    assert "Best trial" in proc.stdout

    # No stray folders: only the study's (the default sweep folder is not claimed).
    assert [p.name for p in (tmp_path / "outputs").iterdir()] == ["optuna"]

    # Once the study has its trials, the same command runs none.
    again = run_cli(tmp_path, *args, "hydra.sweeper.n_trials=3")
    assert "already has 3 of 3 trials; running the other 0" in again.stdout + again.stderr
    assert len(_jobs(study_dir)) == 3

    # optuna-dashboard <storage> lists the study and its trials (its HTTP API).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dashboard = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("optuna-dashboard")),
            _sqlite(study_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as r:
                    summaries = json.load(r)["study_summaries"]
                break
            except OSError:
                assert dashboard.poll() is None and time.time() < deadline, dashboard.stderr
                time.sleep(0.3)
        (summary,) = summaries
        assert summary["study_name"] == "mnistx" and summary["directions"] == ["maximize"]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}"
        ) as r:
            detail = json.load(r)
        assert [t["state"] for t in detail["trials"]] == [
            "Complete",
            "Complete",
            "Fail",
            "Complete",
        ]
        assert detail["has_intermediate_values"]
    finally:
        dashboard.terminate()
        dashboard.wait(timeout=30)


def _two_workers(cwd: Path, args: list[str]) -> list[subprocess.CompletedProcess]:
    """The same command started twice at once, as on two machines."""
    procs = [
        start_cli(cwd, *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)
    ]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


@pytest.mark.parametrize(
    "storage", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_workers_share_the_studys_n_trials(storage, tiny_data, tmp_path, request):
    study_dir = tmp_path / "outputs" / "optuna" / "shared"
    name = f"shared_{os.getpid()}_{time.time_ns()}"  # the server outlives the test
    url = _sqlite(study_dir) if storage == "sqlite" else request.getfixturevalue("postgres")
    # Batches of 4 images: each trial trains for a few seconds, so both workers get some.
    # One thread each: two workers on 2 cores would otherwise fight over them.
    args = _search_args(
        tiny_data,
        "data.batch_size=4",
        "trainer.max_epochs=2",
        "threads=1",
        "hydra.sweeper.n_trials=4",
        f"hydra.sweeper.study_name={name}",
        f"hydra.sweeper.storage={url}",
        f"hydra.sweep.dir={study_dir}",
    )
    _two_workers(tmp_path, args)
    study = optuna.load_study(study_name=name, storage=url)
    trials = study.get_trials(deepcopy=False)
    assert _states(study) == ["COMPLETE"] * 4  # 4 in all: none lost, none over
    assert len({t.user_attrs["mnistx.worker"] for t in trials}) == 2  # both took a share
    folders = [t.user_attrs["mnistx.folder"] for t in trials]
    assert len(set(folders)) == 4  # none run twice
    assert sorted(Path(f).name for f in folders) == sorted(_jobs(study_dir))
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4  # seeded per trial
    assert all(m["status"] == "ok" for m in _jobs(study_dir).values())


def test_the_pruner_stops_a_trial_that_falls_behind(tiny_data, tmp_path):
    """Three trials in a fixed order (queued in the study first): lr 3e-3; lr 1e-9, which
    learns nothing and is pruned after its first epoch, judged against the first trial; and
    lr 1e30, which diverges: a failed trial, and the search goes on."""
    sweep_dir = tmp_path / "search"
    sweep_dir.mkdir()
    study = optuna.create_study(
        study_name="mnistx", storage=_sqlite(sweep_dir), direction="maximize"
    )
    for lr in (1e30, 0.003, 1e-9):
        study.enqueue_trial({"optimizer.lr": lr})
    run_cli(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer.max_epochs=3",
        "optimizer.lr=choice(1e30,0.003,1e-9)",
        "hydra.sweeper.n_trials=3",
        "hydra.sweeper.pruner_args={n_startup_trials:1}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    study = optuna.load_study(study_name="mnistx", storage=_sqlite(sweep_dir))
    failed, first, second = study.trials
    assert failed.state.name == "FAIL" and "mnistx.killed" not in failed.user_attrs
    assert (
        json.loads((sweep_dir / "optimizer.lr=1e+30" / "metrics.json").read_text())["status"]
        == "failed"
    )
    assert first.state.name == "COMPLETE" and len(first.intermediate_values) == 3
    assert second.state.name == "PRUNED" and list(second.intermediate_values) == [0]
    metrics = json.loads((sweep_dir / "optimizer.lr=1e-09" / "metrics.json").read_text())
    assert metrics["status"] == "pruned" and metrics["pruned_at_epoch"] == 1
    assert metrics["epochs"] == 1 and metrics["test/acc"] is None  # stopped, not tested
    assert (
        json.loads((sweep_dir / "optimizer.lr=0.003" / "metrics.json").read_text())["status"]
        == "ok"
    )
    with open(sweep_dir / "comparison.csv") as f:
        rows = {r["optimizer.lr"]: r for r in csv.DictReader(f)}
    assert rows["1e-09"]["status"] == "pruned" and "epoch 1 of 3" in rows["1e-09"]["reason"]
    assert rows["0.003"]["status"] == "ok"


def _span(folder: Path) -> tuple[datetime, datetime]:
    """When the job in `folder` started and ended, from its train.log's last line."""
    line = (folder / "train.log").read_text().strip().splitlines()[-1]
    stamp = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\]", line)
    took = re.search(r"finished in ([\d.]+) s", line)
    assert stamp and took, line
    end = datetime.strptime(stamp[1], "%Y-%m-%d %H:%M:%S,%f")
    return end - timedelta(seconds=float(took[1])), end


def test_trials_run_in_parallel_batches_through_joblib(tiny_data, tmp_path):
    run_cli(
        tmp_path,
        *_search_args(
            tiny_data,
            "data.batch_size=4",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            "hydra.sweeper.n_jobs=2",
            "hydra.sweeper.n_trials=2",
        ),
    )
    study_dir = tmp_path / "outputs" / "optuna" / "mnistx"
    study = optuna.load_study(study_name="mnistx", storage=_sqlite(study_dir))
    assert _states(study) == ["COMPLETE", "COMPLETE"]
    spans = [_span(Path(t.user_attrs["mnistx.folder"])) for t in study.trials]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # at the same time


def test_a_pareto_search_writes_its_front(tiny_data, tmp_path):
    proc = run_cli(
        tmp_path,
        *[
            a if a != "hparams_search=optuna" else "hparams_search=optuna_pareto"
            for a in _search_args(tiny_data, "hydra.sweeper.n_trials=4")
        ],
    )
    study_dir = tmp_path / "outputs" / "optuna" / "mnistx_pareto"
    study = optuna.load_study(study_name="mnistx_pareto", storage=_sqlite(study_dir))
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(complete) == 4
    front = OmegaConf.to_container(OmegaConf.load(study_dir / "pareto.yaml"))
    assert front["objectives"] == {"val/acc_best": "maximize", "params": "minimize"}
    on_front = {r["trial"] for r in front["front"]}

    def dominates(a, b) -> bool:
        return a.values[0] >= b.values[0] and a.values[1] <= b.values[1] and a.values != b.values

    for t in complete:  # the front: exactly the trials no other trial beats on both counts
        beaten = any(dominates(o, t) for o in complete)
        assert (t.number in on_front) == (not beaten), t.number
    for record in front["front"]:
        metrics = json.loads((Path(record["folder"]) / "metrics.json").read_text())
        assert record["values"] == {
            "val/acc_best": metrics["val/acc_best"],
            "params": metrics["params"],
        }
        assert record["val/acc_best"] == metrics["val/acc_best"]
        assert record["command"].startswith("python -m mnistx.train hparams_search=optuna_pareto")
    assert "Pareto front" in proc.stdout and (study_dir / "best.yaml").exists()


@pytest.mark.slow
def test_a_plain_install_runs_an_optuna_search(tiny_data, tmp_path):
    """`pip install .` (a wheel, not the editable install the tests run from): Hydra must find
    the sweeper and its config in the installed package."""
    import shutil

    repo = Path(__file__).resolve().parents[1]
    source = tmp_path / "source"  # a copy: building writes build/ next to pyproject.toml
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(repo / name, source / name)
    for name in ("src", "conf"):
        shutil.copytree(
            repo / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
        )
    (source / "conf" / "local" / "default.yaml").unlink(missing_ok=True)  # this machine's
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "wheel"),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = (tmp_path / "wheel").glob("mnistx-*.whl")
    site = tmp_path / "site"
    import zipfile

    zipfile.ZipFile(wheel).extractall(site)  # what pip would put into site-packages
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mnistx, hydra_plugins.mnistx_sweeper as p; print(mnistx.__file__, p.__file__)",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert all(path.startswith(str(site)) for path in where)
    run_cli(tmp_path, *_search_args(tiny_data, "hydra.sweeper.n_trials=1"), env=env)
    study = optuna.load_study(
        study_name="mnistx", storage=_sqlite(tmp_path / "outputs" / "optuna" / "mnistx")
    )
    assert _states(study) == ["COMPLETE"]


def test_trials_of_workers_that_have_gone_are_failed_and_no_longer_count(tmp_path):
    """A worker records itself and a heartbeat on each trial it runs; other workers fail the
    trial once that worker's process is gone (same host) or its heartbeat is stale."""
    from mnistx.hpo import study as studies

    study = optuna.create_study(storage=_sqlite(tmp_path), study_name="s")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    cases = {  # worker, seconds since its last heartbeat -> found gone
        "this process": (studies.this_worker(), 0, False),
        "a dead process here": (f"{host}:{dead.pid}", 0, True),
        "a live worker elsewhere": ("elsewhere:1", 5, False),
        "a silent worker elsewhere": ("elsewhere:1", studies.GRACE + 5, True),
    }
    trials = {}
    for name, (worker, silent, _) in cases.items():
        trial = study.ask()
        trial.set_user_attr(studies.WORKER, worker)
        trial.set_user_attr(studies.BEAT, time.time() - silent)
        trials[name] = trial.number
    assert studies.fail_abandoned(study) == 2
    for name, (_, _, gone) in cases.items():
        frozen = study.trials[trials[name]]
        assert (frozen.state.name == "FAIL") == gone, name
        assert studies.counts(frozen) != gone, name  # a killed trial leaves the budget


def test_a_ddp_trial_is_pruned_on_every_rank(tiny_data, tmp_path):
    """Rank 0 asks the pruner; both ranks stop after the same epoch (a rank left training
    alone would wait for the other forever)."""
    sweep_dir = tmp_path / "search"
    sweep_dir.mkdir()
    study = optuna.create_study(
        study_name="mnistx", storage=_sqlite(sweep_dir), direction="maximize"
    )
    lr = optuna.distributions.CategoricalDistribution([0.003, 1e-9])
    study.add_trial(
        optuna.trial.create_trial(  # the bar: a finished trial at 90% each epoch
            params={"optimizer.lr": 0.003},
            distributions={"optimizer.lr": lr},
            value=0.9,
            intermediate_values={0: 0.9, 1: 0.9},
        )
    )
    study.enqueue_trial({"optimizer.lr": 1e-9})
    run_cli(
        tmp_path,
        "-m",
        "hydra/sweeper=optuna",
        f"data.data_dir={tiny_data}",
        *TINY_OVERRIDES,
        "trainer=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "optimizer.lr=choice(0.003,1e-9)",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.pruner_args={n_startup_trials:1}",
        f"hydra.sweep.dir={sweep_dir}",
    )
    study = optuna.load_study(study_name="mnistx", storage=_sqlite(sweep_dir))
    assert _states(study) == ["COMPLETE", "PRUNED"]
    metrics = json.loads((sweep_dir / "optimizer.lr=1e-09" / "metrics.json").read_text())
    assert metrics["status"] == "pruned" and metrics["epochs"] == 1


@pytest.mark.parametrize(
    ("sampler", "pruner"),
    [
        *((s, "median") for s in ("tpe", "random", "cmaes", "gp", "qmc", "nsgaii")),
        *(("tpe", p) for p in ("hyperband", "successive_halving", "none")),
    ],
)
def test_every_named_sampler_and_pruner_drives_the_presets_space(sampler, pruner):
    """Each name builds Optuna's sampler and pruner, which then ask for trials of the
    preset's search space (what the sweeper does), seeded: the same seed, the same trials."""
    from mnistx.hpo.settings import check_settings, make_pruner, make_sampler
    from mnistx.hpo.space import search_space

    sweeper = compose_config(
        [
            "hparams_search=optuna",
            f"hydra.sweeper.sampler={sampler}",
            f"hydra.sweeper.pruner={pruner}",
            "hydra.sweeper.sampler_args={n_startup_trials:2}"
            if sampler in ("tpe", "gp")
            else "hydra.sweeper.sampler_args=null",
        ],
        with_hydra=True,
    ).hydra.sweeper
    check_settings(sweeper)
    space, _ = search_space(sweeper, [])

    def trials(seed: int) -> list[dict]:
        study = optuna.create_study(direction="maximize", pruner=make_pruner(sweeper, 3))
        asked = []
        for number in range(4):
            study.sampler = make_sampler(sweeper, seed + number)
            trial = study.ask(space)
            study.tell(trial, float(trial.params["search.width"]) / 512)
            asked.append(trial.params)
        return asked

    first = trials(0)
    assert all(set(p) == SEARCHED for p in first)
    assert trials(0) == first
