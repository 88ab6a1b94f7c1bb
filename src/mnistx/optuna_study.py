"""An Optuna study as mnistx's searches use it: opened from `hydra.sweeper.*`, shared by any
number of workers, with trials left behind by killed workers found and replaced.

Several workers (processes, machines) may run the same command on one storage at once. They
share the study's `n_trials`: a worker asks for a trial only while the study holds fewer
trials that count (complete, pruned, failed, or running in a live worker), and asks under
a lock that the storage's server or file provides, so that two workers never both take the
last one. Each worker records itself and a heartbeat on its running trials; a trial whose
worker has gone (its process is dead, or its heartbeat stopped) is marked failed, tagged
`mnistx.killed`, and no longer counts, so another trial replaces it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError

log = logging.getLogger("mnistx")

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "nsgaii")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
# Values a trial can be judged by: numbers every finished run writes to metrics.json.
OBJECTIVES = ("val/acc_best", "test/acc", "test/loss", "val/loss", "val/acc", "train/loss",
              "train/acc", "params", "train_seconds", "seconds_per_epoch")
# A trial's worker and the last time it said it was alive (trial user attributes).
WORKER, BEAT, KILLED, FOLDER = "mnistx.worker", "mnistx.beat", "mnistx.killed", "mnistx.folder"
BEAT_EVERY = 10.0  # seconds between heartbeats
GRACE = 120.0  # a trial whose worker elsewhere has been silent this long is dead


# --- reading hydra.sweeper -----------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    if OmegaConf.is_list(value) or isinstance(value, list | tuple):
        return list(value)
    return [value]


def objectives(sweeper: DictConfig) -> list[str]:
    return [str(o) for o in as_list(sweeper.objective)]


def directions(sweeper: DictConfig) -> list[str]:
    return [str(d) for d in as_list(sweeper.direction)]


def check_settings(sweeper: DictConfig) -> None:
    """Every hydra.sweeper.* value an Optuna search reads, before anything is run."""
    names = objectives(sweeper)
    ways = directions(sweeper)
    for name in names:
        if name not in OBJECTIVES:
            raise UserError(
                f"hydra.sweeper.objective={name} is not a value a run reports. Choose from "
                f"{', '.join(OBJECTIVES)} (a list for a multi-objective search, e.g. "
                "hydra.sweeper.objective=[val/acc_best,params])."
            )
    for way in ways:
        if way not in ("maximize", "minimize"):
            raise UserError(
                f"hydra.sweeper.direction={way} must be maximize or minimize (a list, one per "
                "objective, for a multi-objective search)."
            )
    if len(ways) != len(names):
        raise UserError(
            f"hydra.sweeper.direction has {len(ways)} value(s) for {len(names)} objective(s) "
            f"({', '.join(names)}): give one direction per objective, e.g. "
            "hydra.sweeper.direction=[maximize,minimize]."
        )
    if str(sweeper.sampler) not in SAMPLERS:
        raise UserError(
            f"hydra.sweeper.sampler={sweeper.sampler} is not a sampler mnistx knows. Choose "
            f"one of {', '.join(SAMPLERS)} (hydra.sweeper.sampler_args passes its options)."
        )
    if str(sweeper.pruner) not in PRUNERS:
        raise UserError(
            f"hydra.sweeper.pruner={sweeper.pruner} is not a pruner mnistx knows. Choose one "
            f"of {', '.join(PRUNERS)} (hydra.sweeper.pruner_args passes its options)."
        )
    if len(names) > 1 and str(sweeper.pruner) != "none":
        raise UserError(
            f"hydra.sweeper.pruner={sweeper.pruner} cannot judge a multi-objective search "
            f"({', '.join(names)}): Optuna prunes single-objective studies only. Add "
            "hydra.sweeper.pruner=none."
        )
    if len(names) > 1 and str(sweeper.sampler) == "cmaes":
        raise UserError(
            "hydra.sweeper.sampler=cmaes optimizes one objective; a multi-objective search "
            "needs tpe, nsgaii, gp or random."
        )
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (key == "n_jobs"):
            raise UserError(
                f"hydra.sweeper.{key}={value} must be a whole number "
                f"{'>= 1' if key == 'n_jobs' else '>= 0'}."
            )
    for key in ("sampler_args", "pruner_args"):
        if sweeper.get(key) is not None and not OmegaConf.is_dict(sweeper.get(key)):
            raise UserError(
                f"hydra.sweeper.{key} must be a mapping of options, e.g. "
                f"hydra.sweeper.{key}={{n_startup_trials:5}}."
            )
    if not sweeper.get("storage"):
        raise UserError(
            "hydra.sweeper.storage is empty: give an Optuna storage URL, e.g. "
            "sqlite:///outputs/optuna/mnistx/optuna.db or postgresql://user:pw@host/db."
        )


def _options(sweeper: DictConfig, key: str) -> dict[str, Any]:
    options = sweeper.get(key)
    return dict(OmegaConf.to_container(options, resolve=True)) if options else {}


def make_sampler(sweeper: DictConfig, seed: int | None) -> Any:
    """The named sampler, seeded with `seed` (each trial's own, see Search)."""
    import optuna

    name = str(sweeper.sampler)
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "nsgaii": optuna.samplers.NSGAIISampler,
    }
    needs = {"cmaes": "cmaes", "gp": "scipy"}.get(name)
    if needs:
        try:
            __import__(needs)
        except ImportError:
            raise UserError(
                f"hydra.sweeper.sampler={name} needs the `{needs}` package, which is not "
                "installed: pip install 'mnistx[samplers]'."
            ) from None
    # TPE: trials running in parallel are taken as "constant liars" (their worst value), so
    # a batch of n_jobs spreads out (Optuna 5's default; Optuna 4's was off).
    defaults = {"tpe": {"constant_liar": True}}.get(name, {})
    try:
        return classes[name](seed=seed, **{**defaults, **_options(sweeper, "sampler_args")})
    except TypeError as e:
        raise UserError(
            f"hydra.sweeper.sampler_args do not fit the {name} sampler: {e}. See "
            f"optuna.samplers.{classes[name].__name__} for its options."
        ) from None


def make_pruner(sweeper: DictConfig, max_epochs: int | None) -> Any:
    """The named pruner; its defaults fit mnistx's few-epoch trials (README, Optuna)."""
    import optuna

    name = str(sweeper.pruner)
    defaults: dict[str, dict[str, Any]] = {
        # The median of 4 finished trials is the bar from the first epoch on.
        "median": {"n_startup_trials": 4, "n_warmup_steps": 0},
        "hyperband": {"min_resource": 1, "max_resource": max_epochs or "auto",
                      "reduction_factor": 3},
        "successive_halving": {"min_resource": 1, "reduction_factor": 3},
    }
    classes = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    if name == "none":
        return optuna.pruners.NopPruner()
    try:
        return classes[name](**{**defaults[name], **_options(sweeper, "pruner_args")})
    except (TypeError, ValueError) as e:
        raise UserError(
            f"hydra.sweeper.pruner_args do not fit the {name} pruner: {e}. See "
            f"optuna.pruners.{classes[name].__name__} for its options."
        ) from None


# --- the storage -----------------------------------------------------------------------------


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///"):])


def make_storage(url: str) -> Any:
    """Optuna's storage for `url`. SQLite waits for a busy file (workers and their jobs
    write at once) instead of failing after SQLite's default 5 s."""
    import optuna

    file = _sqlite_file(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": {"timeout": 120}})
    if "://" in url:
        return optuna.storages.RDBStorage(url)
    return url  # another kind Optuna takes by name


def open_study(sweeper: DictConfig, max_epochs: int | None = None, create: bool = True) -> Any:
    """The study `hydra.sweeper.study_name` in `hydra.sweeper.storage`, created when missing
    (create=False: a KeyError then). Unreachable storages, missing database drivers and a
    stored study of other directions are UserErrors."""
    import optuna

    url = str(sweeper.storage)
    name = str(sweeper.study_name)
    pruner = make_pruner(sweeper, max_epochs)
    try:
        if not create:
            return optuna.load_study(study_name=name, storage=make_storage(url), pruner=pruner)
        # Locked: workers starting together on a new database would each create its tables.
        with budget_lock(url, name):
            study = optuna.create_study(
                study_name=name, storage=make_storage(url), load_if_exists=True,
                directions=directions(sweeper), pruner=pruner,
            )
    except (UserError, KeyError):
        raise
    except ModuleNotFoundError as e:
        extra = " pip install 'mnistx[postgres]'." if "psycopg" in str(e) else ""
        raise UserError(
            f"hydra.sweeper.storage={_hide_password(url)} needs a database driver that is not "
            f"installed ({e}).{extra}"
        ) from None
    except ValueError as e:  # e.g. the stored study has other directions
        raise UserError(
            f"Study {name!r} in {_hide_password(url)} cannot be used for this search: {e}. "
            "Use another hydra.sweeper.study_name for a search of other objectives."
        ) from None
    except Exception as e:  # sqlalchemy's OperationalError and the like: cannot connect
        detail = str(getattr(e, "orig", None) or e).strip().splitlines()[0][:300]
        raise UserError(
            f"Cannot open the Optuna storage hydra.sweeper.storage={_hide_password(url)}: "
            f"{detail}. Check the URL (e.g. sqlite:///outputs/optuna/mnistx/optuna.db, "
            "postgresql://user:password@host:5432/database), that the database server runs "
            "and that it accepts this user."
        ) from None
    if [d.name.lower() for d in study.directions] != directions(sweeper):
        stored = ", ".join(d.name.lower() for d in study.directions)
        raise UserError(
            f"Study {name!r} in {_hide_password(url)} was made to {stored}, not "
            f"{', '.join(directions(sweeper))}. Use another hydra.sweeper.study_name."
        )
    return study


def _hide_password(url: str) -> str:
    """postgresql://user:secret@host/db -> postgresql://user:***@host/db, for messages."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    credentials, _, rest = tail.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{head}://{user}{':***' if ':' in credentials else ''}@{rest}"


@contextlib.contextmanager
def budget_lock(url: str, study_name: str) -> Iterator[None]:
    """Held while a worker counts the study's trials and asks for new ones: a file lock
    next to a SQLite database, an advisory lock on a PostgreSQL or MySQL server. Other
    storages are not locked; Search then gives back a trial it finds over the budget."""
    file = _sqlite_file(url)
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(file.with_name(f".{file.name}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
        return
    dialect = url.split(":", 1)[0].split("+", 1)[0]
    if dialect not in ("postgresql", "mysql"):
        yield
        return
    import sqlalchemy

    key = zlib.crc32(f"mnistx:{study_name}".encode())
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    lock, unlock = (
        ("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)")
        if dialect == "postgresql"
        else ("SELECT GET_LOCK(:n, 600)", "SELECT RELEASE_LOCK(:n)")
    )
    args = {"k": key, "n": f"mnistx:{study_name}"}
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(lock), args)
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text(unlock), args)
    finally:
        engine.dispose()


# --- trials and workers ------------------------------------------------------------------------


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def counts(trial: Any) -> bool:
    """Whether `trial` takes one of the study's n_trials: all but the killed ones, and those
    given back over the budget (both tagged KILLED), and queued ones not yet started. Failed
    trials count: a diverged lr is a result, and running it again would fail again."""
    from optuna.trial import TrialState

    if trial.state == TrialState.WAITING:  # queued (enqueue_trial): run when asked for
        return False
    return not (trial.state == TrialState.FAIL and trial.user_attrs.get(KILLED))


def _worker_gone(trial: Any, now: float) -> bool:
    worker = trial.user_attrs.get(WORKER)
    if not worker:  # not one of ours: a search of an older mnistx, or a stray study.ask()
        return True
    host, _, pid = str(worker).rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        if int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            pass
    return now - float(trial.user_attrs.get(BEAT, 0.0)) > GRACE


def fail_abandoned(study: Any) -> int:
    """Mark failed (and killed) each running trial whose worker has gone; how many."""
    from optuna.trial import TrialState

    now = time.time()
    gone = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if _worker_gone(t, now)]
    for trial in list(gone):
        try:
            _set_attr(study, trial, KILLED, f"its worker ({trial.user_attrs.get(WORKER)}) stopped")
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        except RuntimeError:  # finished meanwhile: another worker marked it first
            gone.remove(trial)
    if gone:
        log.info("Marked %d trial(s) of study %r failed: their searches were stopped (%s); "
                 "new trials replace them.", len(gone), study.study_name,
                 ", ".join(f"#{t.number}" for t in gone))
    return len(gone)


def _set_attr(study: Any, trial: Any, key: str, value: Any) -> None:
    import optuna

    optuna.trial.Trial(study, trial._trial_id).set_user_attr(key, value)


class Heartbeat:
    """Tells other workers, every BEAT_EVERY seconds, that this worker's trials are alive."""

    def __init__(self, study: Any) -> None:
        self.study = study
        self.trials: dict[int, Any] = {}  # number -> optuna.Trial
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mnistx-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def add(self, trial: Any) -> None:
        trial.set_user_attr(WORKER, this_worker())
        trial.set_user_attr(BEAT, time.time())
        self.trials[trial.number] = trial

    def done(self, number: int) -> None:
        self.trials.pop(number, None)

    def _run(self) -> None:
        while not self._stop.wait(BEAT_EVERY):
            for trial in list(self.trials.values()):
                try:
                    trial.set_user_attr(BEAT, time.time())
                except Exception as e:  # finished meanwhile, or the storage is busy
                    log.debug("heartbeat of trial #%s: %s", trial.number, e)


# --- the results -------------------------------------------------------------------------------


def rerun_command(params: dict[str, Any], fixed: Sequence[str] = ()) -> str:
    """The single run a trial was: the search's command line (its preset, e.g.
    hparams_search=optuna, and constants) with the trial's values."""
    from mnistx.optuna_search import override_value

    constants = [o for o in fixed if not o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    overrides = [*constants, *(f"{k}={override_value(v)}" for k, v in params.items())]
    return " ".join(["python -m mnistx.train", *overrides])


def _trial_record(trial: Any, names: Sequence[str], fixed: Sequence[str]) -> dict[str, Any]:
    values = dict(zip(names, trial.values, strict=True))
    return {
        "trial": trial.number,
        # Each objective's value, also at the top (but `params` there is the settings).
        **{name: value for name, value in values.items() if name != "params"},
        "values": values,
        "params": dict(trial.params),
        "folder": trial.user_attrs.get(FOLDER),
        "command": rerun_command(trial.params, fixed),
    }


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    """Written whole or not at all: workers that end together may both write it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    OmegaConf.save(OmegaConf.create(data), tmp)
    os.replace(tmp, path)


def write_best(study: Any, sweeper: DictConfig, sweep_dir: Path,
               fixed: Sequence[str] = ()) -> dict[str, Any]:
    """best.yaml (the best trial: its value, settings and the command that reruns it) and,
    for a multi-objective search, pareto.yaml (every trial on the Pareto front); printed."""
    from optuna.trial import TrialState
    from rich.console import Console

    console = Console()
    names = objectives(sweeper)
    trials = study.get_trials(deepcopy=False)
    tally = {
        "finished": sum(t.state.is_finished() and counts(t) for t in trials),
        "complete": sum(t.state == TrialState.COMPLETE for t in trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "failed": sum(t.state == TrialState.FAIL and counts(t) for t in trials),
    }
    summary = (f"{tally['finished']} trials: {tally['complete']} complete, {tally['pruned']} "
               f"pruned, {tally['failed']} failed")
    front = study.best_trials
    if not front:
        log.error("No trial of study %r completed (%s); see the trials' train.log.",
                  study.study_name, summary)
        return {}
    # Multi-objective: the front's best by the first objective stands for the search.
    first = -1.0 if directions(sweeper)[0] == "maximize" else 1.0
    best = min(front, key=lambda t: (first * t.values[0], t.number))
    result = {"study_name": study.study_name, **_trial_record(best, names, fixed),
              "trials": tally}
    _write_yaml(sweep_dir / "best.yaml", result)
    values = ", ".join(f"{n} {_shown(n, v)}" for n, v in zip(names, best.values, strict=True))
    console.print(f"[bold]Best trial[/bold] #{best.number}: {values} ({summary})")
    for key, value in best.params.items():
        console.print(f"  {key} = {value}")
    console.print(f"Written to {sweep_dir / 'best.yaml'}")
    if len(names) > 1:
        ordered = sorted(front, key=lambda t: (first * t.values[0], t.number))
        records = [_trial_record(t, names, fixed) for t in ordered]
        _write_yaml(sweep_dir / "pareto.yaml", {
            "study_name": study.study_name,
            "objectives": dict(zip(names, directions(sweeper), strict=True)),
            "front": records,
        })
        console.print(f"[bold]Pareto front[/bold] ({len(front)} of {tally['complete']} "
                      "complete trials):")
        for t in ordered:
            shown = ", ".join(f"{n} {_shown(n, v)}" for n, v in zip(names, t.values, strict=True))
            console.print(f"  #{t.number}: {shown}")
        console.print(f"Written to {sweep_dir / 'pareto.yaml'}")
        result["pareto"] = records
    return result


def _shown(name: str, value: float) -> str:
    if name.endswith("acc") or name.endswith("acc_best"):
        return f"{100 * value:.2f}%"
    if name == "params":
        return f"{int(value):,}"
    return f"{value:.4g}"
