"""Shared fixtures: a tiny MNIST-format dataset on disk and the real conf/ composed for it.

Plain helpers (no fixtures) are in helpers.py, which tests import directly."""

from __future__ import annotations

import gzip
import os
import shutil
import sys
from pathlib import Path

import pytest
from helpers import (
    DEBIAN_FASHION,
    PROJECT_MNIST,
    SHARED_MNIST,
    TINY_OVERRIDES,
    make_tiny_dataset,
)

from mnistx.runs.compose import compose_config, set_up_omegaconf

set_up_omegaconf()

SERVICES = ("slurm", "postgres")  # one cluster, one server: their tests take turns


def pytest_configure(config: pytest.Config) -> None:
    """Before the xdist workers start (or the one process, without -n): the real MNIST copied
    from ../shared and extracted once, so two workers never extract into data/ at once."""
    if hasattr(config, "workerinput"):
        return
    _share_the_cores(config)
    _copy_shared_mnist()
    if any(PROJECT_MNIST.glob("train-images-idx3-ubyte*")):
        from torchvision.datasets import MNIST

        from mnistx.data.files import ensure_raw_files

        ensure_raw_files(MNIST, PROJECT_MNIST.parents[1], 10)


def _share_the_cores(config: pytest.Config) -> None:
    """With N xdist workers, every torch in the suite (the workers, the commands they start,
    the SLURM jobs, which inherit the environment) takes cores/N threads. Each otherwise
    starts one thread per core, and two workers training at once kept 4 spinning threads on
    2 cores: measured here, a test took 77 s beside another instead of 24 s alone. Set before
    the workers start, so each imports torch with it; a value the user set is kept."""
    workers = getattr(config.option, "numprocesses", None)
    if isinstance(workers, int) and workers > 1 and "OMP_NUM_THREADS" not in os.environ:
        os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // workers))


def _service(item: pytest.Item) -> str | None:
    return next((s for s in SERVICES if item.get_closest_marker(s)), None)


def pytest_itemcollected(item: pytest.Item) -> None:
    """The tests of a shared service run on one worker (xdist --dist loadgroup), in turn."""
    service = _service(item)
    if service:
        item.add_marker(pytest.mark.xdist_group(service))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The service groups first: the longest chain of tests starts at once, while the other
    worker takes the rest; then the slow tests, so that short ones end the run on both
    workers. (xdist hands out the groups, largest first, before the single tests.)"""
    items.sort(key=lambda item: (_service(item) is None, item.get_closest_marker("slow") is None))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker, xdist must have put each service test in its group (it marks the
    node id); if a pytest or xdist release loses that, two SLURM tests would race: stop."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if _service(i) and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"pytest-xdist did not group {lost[0]} (and {len(lost) - 1} more) with the other "
            "tests of its service (pytest-xdist #1386 with pytest 9.2). Install the pytest "
            "pyproject.toml's dev extra pins, or run without -n."
        )


def _copy_shared_mnist() -> None:
    if not (PROJECT_MNIST / "train-images-idx3-ubyte.gz").exists() and SHARED_MNIST.exists():
        PROJECT_MNIST.mkdir(parents=True, exist_ok=True)
        for f in SHARED_MNIST.glob("*.gz"):
            shutil.copy(f, PROJECT_MNIST / f.name)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data_dir holding MNIST/raw with 600 training and 200 test images."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def cli_here(monkeypatch, capfd):
    """`python -m mnistx.train ARGS` run in this process (the real cli(): preflight, Hydra,
    the recipe), in a given working folder: (exit code, stdout, stderr). No interpreter
    start-up per call, for the long tables of user mistakes."""

    from mnistx.train import cli

    def _run(cwd: Path, *args: str) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", ["mnistx.train", *args])
        capfd.readouterr()
        try:
            cli()
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        out, err = capfd.readouterr()
        return code, out, err

    return _run


@pytest.fixture
def make_cfg(tiny_data, tmp_path):
    """Compose the real conf/ for a tiny, fast run writing into tmp_path/run."""

    def _make(*overrides: str):
        return compose_config(
            [
                f"data.data_dir={tiny_data}",
                f"output_dir={tmp_path / 'run'}",
                *TINY_OVERRIDES,
                *overrides,
            ]
        )

    return _make


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The real MNIST under the project's data/ (copied from ../shared and extracted by
    pytest_configure, or by .ci/run)."""
    if not any(PROJECT_MNIST.glob("train-images-idx3-ubyte*")):
        pytest.skip(
            "real MNIST files not available: put the four official .gz files in "
            "data/MNIST/raw (README, Data)"
        )
    return PROJECT_MNIST.parents[1]


@pytest.fixture(scope="session")
def fashion_dir(tmp_path_factory) -> Path:
    """Debian's real Fashion-MNIST, gunzipped (its re-compressed .gz fail torchvision's md5)."""
    if not DEBIAN_FASHION.exists():
        pytest.skip("Debian package dataset-fashion-mnist is not installed")
    root = tmp_path_factory.mktemp("fashion")
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for f in DEBIAN_FASHION.glob("*.gz"):
        with gzip.open(f) as src, open(raw / f.name.removesuffix(".gz"), "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root
