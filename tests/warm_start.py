"""Start `python -m mnistx.<command>` for a test in ~1 s instead of ~6 s.

Most of a test command's time on this machine is spent importing torch, Lightning and their
dependencies (~5 s of a tiny run's ~6 s). This module keeps one warm interpreter per test
process that has imported those libraries, and nothing of mnistx, and forks it for each
command. The child then does what `python -m` does after its imports: it takes the command's
working folder, environment and standard streams, runs the module as `__main__` and ends
with a normal interpreter exit (non-daemon threads joined, exit handlers run), so the
command's own code, from its first line, runs as it does for a user.

Commands that are sent signals, or that set variables a library reads when imported, start
a fresh interpreter as before (`run_cli` decides); MNISTX_TESTS_FRESH=1 starts every command
fresh, to check that both ways give the same results.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

# Libraries whose import is the cost; none of them is mnistx, so each command imports its
# own code afresh (and any change to src/ is seen at once).
WARM = ("torch", "torchvision.datasets", "torchmetrics", "lightning.pytorch", "hydra", "omegaconf")
# Environment variables read when the interpreter starts or those libraries are imported: a
# command whose environment differs in one from this test process's starts fresh. (The
# libraries also set variables of their own while a test trains in-process, such as
# PL_GLOBAL_SEED and TORCHINDUCTOR_CACHE_DIR; those are read only while a run goes on, from
# the environment the command is given.)
IMPORT_TIME_ENV = ("PYTHON", "LD_", "OMP_", "MKL_", "KMP_", "CUDA_VISIBLE_DEVICES", "MPLBACKEND")


def _startup(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV)}


class _Client:
    """This test process's warm interpreter: started on first use, and again when it has
    gone or this process's start-up variables have changed."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.env: dict[str, str] = {}
        self.folder: str | None = None  # holds the socket; removed with the interpreter
        self.refused = ""  # why the last command started fresh (shown by the tests)

    def _start(self) -> socket.socket | None:
        self.close()
        self.folder = tempfile.mkdtemp(prefix="mnistx-warm-")
        path = os.path.join(self.folder, "socket")
        self.env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, path], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        said = self.proc.stdout.readline().strip()
        if said != b"ready":
            self.refused = f"the warm interpreter said {said!r} when it started"
            self.proc.wait(timeout=30)
            self.proc = None
            return None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def connection(self, env: dict[str, str]) -> socket.socket | None:
        """The warm interpreter for a command with this environment, or None: start fresh."""
        if os.environ.get("MNISTX_TESTS_FRESH") == "1":
            self.refused = "MNISTX_TESTS_FRESH=1"
            return None
        if _startup(env) != _startup(dict(os.environ)):  # this command's own: fresh
            self.refused = "the command sets its own start-up variables"
            return None
        alive = self.proc is not None and self.proc.poll() is None
        if not alive or _startup(self.env) != _startup(dict(os.environ)):
            return self._start()
        return self.sock

    def run(
        self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess | None:
        sock = self.connection(env)
        if sock is None:
            return None
        with tempfile.TemporaryDirectory() as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            request = {"module": module, "args": args, "cwd": str(cwd), "env": env}
            request |= {"stdout": out, "stderr": err}
            sock.sendall(json.dumps(request).encode() + b"\n")
            reader = sock.makefile("rb")
            sock.settimeout(timeout)
            try:
                pid = int(reader.readline())
                try:
                    status = int(reader.readline())
                except TimeoutError:
                    os.kill(pid, signal.SIGKILL)
                    raise subprocess.TimeoutExpired([module, *args], timeout) from None
            finally:
                sock.settimeout(None)
            text = [Path(p).read_text(errors="replace") for p in (out, err)]
        return subprocess.CompletedProcess(
            [sys.executable, "-m", module, *args], status, text[0], text[1]
        )


_client = _Client()
atexit.register(_client.close)


def run_module(
    module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess | None:
    """The command run in a fork of the warm interpreter, or None where it must start fresh
    (`refused()` says why)."""
    return _client.run(module, args, cwd, env, timeout)


def refused() -> str:
    return _client.refused


# The warm interpreter ----------------------------------------------------------------------


def _serve(path: str) -> dict | None:
    """Answer requests until the test process goes; return a request in a forked child."""
    import importlib

    # Whatever a fresh interpreter would print while importing them, a fork would not: where
    # they print anything, every command starts fresh.
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        for name in WARM:
            importlib.import_module(name)
        sys.stderr.flush()
        os.dup2(saved, 2)
        printed = caught.seek(0, os.SEEK_END)
    if printed:
        print("fresh", flush=True)
        return None
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    print("ready", flush=True)
    conn, _ = server.accept()
    reader = conn.makefile("rb")
    for line in reader:
        request = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            reader.close()
            conn.close()
            server.close()
            return request
        conn.sendall(f"{pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
    return None


def _become(request: dict) -> None:
    """In the child: the command's folder, environment and streams, as `python -m` has them."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, key in ((1, "stdout"), (2, "stderr")):
        target = os.open(request[key], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = [request["module"], *request["args"]]
    sys.path.insert(0, os.getcwd())  # as `python -m` puts it first


if __name__ == "__main__":
    # Not in the child: the tests' folder, where this file is (python puts it on sys.path).
    sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
    job = _serve(sys.argv[1])
    if job is not None:
        import runpy

        _become(job)
        runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
