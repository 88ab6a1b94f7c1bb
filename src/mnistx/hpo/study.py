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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mnistx.compat.optuna import live_trial
from mnistx.errors import UserError
from mnistx.hpo.settings import directions, make_pruner

log = logging.getLogger("mnistx")

# A trial's worker and the last time it said it was alive (trial user attributes).
WORKER, BEAT, KILLED, FOLDER = "mnistx.worker", "mnistx.beat", "mnistx.killed", "mnistx.folder"
BEAT_EVERY = 10.0  # seconds between heartbeats
GRACE = 120.0  # a trial whose worker elsewhere has been silent this long is dead


# --- the storage -----------------------------------------------------------------------------


def _sqlite_file(url: str) -> Path | None:
    if not url.startswith("sqlite:///"):
        return None
    return Path(url[len("sqlite:///") :])


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
                study_name=name,
                storage=make_storage(url),
                load_if_exists=True,
                directions=directions(sweeper),  # type: ignore[arg-type]
                pruner=pruner,
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
    gone = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if _worker_gone(t, now)
    ]
    for trial in list(gone):
        try:
            _set_attr(study, trial, KILLED, f"its worker ({trial.user_attrs.get(WORKER)}) stopped")
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        except RuntimeError:  # finished meanwhile: another worker marked it first
            gone.remove(trial)
    if gone:
        log.info(
            "Marked %d trial(s) of study %r failed: their searches were stopped (%s); "
            "new trials replace them.",
            len(gone),
            study.study_name,
            ", ".join(f"#{t.number}" for t in gone),
        )
    return len(gone)


def _set_attr(study: Any, trial: Any, key: str, value: Any) -> None:
    live_trial(study, trial).set_user_attr(key, value)


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
