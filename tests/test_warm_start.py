"""The tests' warm start (tests/warm_start.py) stands in for a fresh `python -m`: the same
command gives the same files, numbers, output and exit status either way."""

from __future__ import annotations

import json
import os

from helpers import TINY_OVERRIDES, run_cli
from warm_start import refused, run_module, start_module


def _fresh(cwd, *args):
    return run_cli(cwd, *args, check=False, env={"MNISTX_TESTS_FRESH": "1"})


def test_a_warm_started_run_equals_a_fresh_one(tiny_data, tmp_path):
    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES]
    warm = run_module(
        "mnistx.train", [*args, "hydra.run.dir=warm"], tmp_path, dict(os.environ), 300
    )
    assert warm is not None, refused()
    fresh = _fresh(tmp_path, *args, "hydra.run.dir=fresh")
    assert warm.returncode == fresh.returncode == 0, warm.stderr + fresh.stderr
    runs = [json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("warm", "fresh")]
    for key in ("test/acc", "test/loss", "val/acc_best", "history", "threads", "overrides"):
        expected = runs[1][key]
        if key == "overrides":
            expected = [o.replace("fresh", "warm") for o in expected]
        assert runs[0][key] == expected, key
    files = [
        sorted(p.name.split(".out.")[0] for p in (tmp_path / d).rglob("*"))
        for d in ("warm", "fresh")
    ]
    assert files[0] == files[1]


def test_the_warm_start_outlives_a_run_trained_in_the_test_process(tmp_path):
    """An in-process run sets Lightning's PL_GLOBAL_SEED in the test process's environment;
    commands after it still start warm (it is read only while a run goes on)."""
    import lightning.pytorch as L

    L.seed_everything(1234, verbose=False)
    assert os.environ["PL_GLOBAL_SEED"] == "1234"
    proc = run_module("mnistx.train", ["--cfg", "job"], tmp_path, dict(os.environ), 300)
    assert proc is not None, refused()
    assert proc.returncode == 0 and "optimizer:" in proc.stdout
    changed = {**os.environ, "PYTHONHASHSEED": "7"}  # read when Python starts: fresh
    assert run_module("mnistx.train", ["--cfg", "job"], tmp_path, changed, 300) is None


def test_a_warm_started_error_equals_a_fresh_one(tmp_path):
    args = ["optimizer.lr=-1"]
    warm = run_module("mnistx.train", args, tmp_path, dict(os.environ), 300)
    fresh = _fresh(tmp_path, *args)
    assert warm is not None, refused()
    assert warm.returncode == fresh.returncode == 1
    assert warm.stdout == fresh.stdout
    strip = [[ln for ln in p.stderr.splitlines() if "outputs/" not in ln] for p in (warm, fresh)]
    assert strip[0] == strip[1] and any(ln.startswith("error:") for ln in strip[0])


def test_a_warm_started_process_pipes_and_exits_as_a_fresh_popen(tmp_path):
    import subprocess
    import sys

    args = ["optimizer.lr=-1"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    warm = start_module("mnistx.train", args, tmp_path, dict(os.environ), **pipes)
    assert warm is not None, refused()
    fresh = subprocess.Popen(
        [sys.executable, "-m", "mnistx.train", *args], cwd=tmp_path, text=True, **pipes
    )
    outputs = [p.communicate(timeout=300) for p in (warm, fresh)]
    assert warm.returncode == fresh.returncode == 1
    assert outputs[0][0] == outputs[1][0]
    strip = [[ln for ln in err.splitlines() if "outputs/" not in ln] for _, err in outputs]
    assert strip[0] == strip[1] and any(ln.startswith("error:") for ln in strip[0])


def test_a_warm_started_process_is_signalled_and_waited_for_as_a_popen(tiny_data, tmp_path):
    import signal
    import subprocess

    # Batches of 2 for 50 epochs: still training when the signal comes.
    args = [f"data.data_dir={tiny_data}", *TINY_OVERRIDES, "data.batch_size=2"]
    proc = start_module(
        "mnistx.train", [*args, "trainer.max_epochs=50"], tmp_path, dict(os.environ)
    )
    assert proc is not None, refused()
    assert proc.poll() is None and proc.returncode is None
    try:
        proc.wait(timeout=0.2)
        raise AssertionError("wait() returned before the command ended")
    except subprocess.TimeoutExpired:
        pass
    os.kill(proc.pid, 0)  # the command's own process, not a stand-in
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL and proc.poll() == -signal.SIGKILL


def test_a_warm_started_command_has_its_own_pythonpath_where_a_fresh_one_has_it(tmp_path):
    """A command's PYTHONPATH (tests name their own callbacks through it) goes on sys.path
    after the command's folder and before the libraries, as in a fresh interpreter."""
    import sys

    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "where_am_i.py").write_text("import sys\nprint(repr(sys.path))\n")
    env = {**os.environ, "PYTHONPATH": str(extra)}
    warm = run_module("where_am_i", [], tmp_path, env, 300)
    assert warm is not None, refused()
    fresh = run_cli(tmp_path, module="where_am_i", env={**env, "MNISTX_TESTS_FRESH": "1"})
    assert warm.returncode == 0 and eval(warm.stdout) == eval(fresh.stdout)
    assert eval(warm.stdout)[:2] == [str(tmp_path), str(extra)]
    assert str(extra) not in sys.path  # the test process's own is as it was
