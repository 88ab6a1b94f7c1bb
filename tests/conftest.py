"""Shared fixtures: a tiny MNIST-format dataset on disk and the real conf/ composed for it.

Plain helpers (no fixtures) are in helpers.py, which tests import directly."""

from __future__ import annotations

import gzip
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

from mnistx.config.compose import compose_config, register_resolvers

register_resolvers()


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data_dir holding MNIST/raw with 600 training and 200 test images."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture
def cli_here(monkeypatch, capfd):
    """`python -m mnistx.train ARGS` run in this process (the real cli(): preflight, Hydra,
    the recipe), in a given working folder: (exit code, stdout, stderr). No interpreter
    start-up per call, for the long tables of user mistakes."""

    from mnistx.runs import resolvers
    from mnistx.train import cli

    def _run(cwd: Path, *args: str) -> tuple[int, str, str]:
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(resolvers, "_claimed", {})  # a new process would claim anew
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
    """The real MNIST under the project's data/ (copied there from ../shared by .ci/run)."""
    if not (PROJECT_MNIST / "train-images-idx3-ubyte.gz").exists() and SHARED_MNIST.exists():
        PROJECT_MNIST.mkdir(parents=True, exist_ok=True)
        for f in SHARED_MNIST.glob("*.gz"):
            shutil.copy(f, PROJECT_MNIST / f.name)
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
