"""Start `python -m mnistx.<command>` for a test in ~1 s instead of ~6 s.

Most of a test command's time on this machine is spent importing torch, Lightning and their
dependencies (~5 s of a tiny run's ~6 s). This module keeps one warm interpreter per test
process that has imported those libraries, and nothing of mnistx, and forks it for each
command. The child then does what `python -m` does after its imports: it takes the command's
working folder, environment, standard streams and Ctrl-C handling, runs the module as
`__main__` and ends with a normal interpreter exit (non-daemon threads joined, exit handlers
run), so the command's own code, from its first line, runs as it does for a user.

`run_module` runs a command to its end (`subprocess.run`); `start_module` starts one that a
test watches, signals and waits for, as it would a `subprocess.Popen` (`WarmProcess` has the
Popen methods the tests use; its pid is the command's own process). Commands that set
variables a library reads when imported start a fresh interpreter instead (the callers in
helpers.py decide; a fork puts PYTHONPATH on sys.path as a fresh interpreter does);
MNISTX_TESTS_FRESH=1 starts every command fresh, to check that both ways give the same
results.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, Any

# Libraries whose import is the cost; none of them is mnistx, so each command imports its
# own code afresh (and any change to src/ is seen at once).
WARM = ("torch", "torchvision.datasets", "torchmetrics", "lightning.pytorch", "hydra", "omegaconf")
# Environment variables read when the interpreter starts or those libraries are imported: a
# command whose environment differs in one from this test process's starts fresh. (The
# libraries also set variables of their own while a test trains in-process, such as
# PL_GLOBAL_SEED and TORCHINDUCTOR_CACHE_DIR; those are read only while a run goes on, from
# the environment the command is given.)
IMPORT_TIME_ENV = ("PYTHON", "LD_", "OMP_", "MKL_", "KMP_", "CUDA_VISIBLE_DEVICES", "MPLBACKEND")
MESSAGE = 1 << 20  # the largest request (a command line and its environment)


def _startup(env: dict[str, str]) -> dict[str, str]:
    """The variables a fork cannot take over. PYTHONPATH is not among them: a fork puts the
    command's entries on sys.path where a fresh interpreter puts them."""
    return {k: v for k, v in env.items() if k.startswith(IMPORT_TIME_ENV) and k != "PYTHONPATH"}


def _python_path(env: dict[str, str]) -> list[str]:
    """PYTHONPATH's entries as a fresh interpreter puts them on sys.path (made absolute)."""
    return [os.path.abspath(p) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]


class WarmProcess:
    """A command started in a fork of the warm interpreter, used as a `subprocess.Popen`
    (text mode): pid, poll, wait, communicate, send_signal, terminate, kill, returncode,
    and `stdout`/`stderr` where they were PIPE."""

    def __init__(self, sock: socket.socket, args: list[str], pipes: dict[str, IO[str]]):
        self.args = args
        self._sock = sock
        self.stdout: IO[str] | None = pipes.get("stdout")
        self.stderr: IO[str] | None = pipes.get("stderr")
        self.returncode: int | None = None
        self.pid = int(sock.recv(64))

    def _status(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            self._sock.settimeout(timeout)
            try:
                self.returncode = int(self._sock.recv(64))
            except (TimeoutError, BlockingIOError):
                return None
            self._sock.close()
        return self.returncode

    def poll(self) -> int | None:
        return self._status(0)

    def wait(self, timeout: float | None = None) -> int:
        status = self._status(timeout)
        if status is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        return status

    def communicate(self, timeout: float | None = None) -> tuple[str | None, str | None]:
        """Everything the command writes to its pipes until it ends, as Popen's does."""
        deadline = None if timeout is None else time.monotonic() + timeout
        streams = {s: [] for s in (self.stdout, self.stderr) if s is not None}
        with selectors.DefaultSelector() as selector:
            for stream in streams:
                selector.register(stream.fileno(), selectors.EVENT_READ, stream)
            while selector.get_map():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise subprocess.TimeoutExpired(self.args, timeout or 0)
                for key, _ in selector.select(left):
                    chunk = os.read(key.fd, 1 << 16)
                    if chunk:
                        streams[key.data].append(chunk)
                    else:
                        selector.unregister(key.fd)
        self.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
        text = {s: b"".join(c).decode(errors="replace") for s, c in streams.items()}
        for stream in streams:
            stream.close()
        return text.get(self.stdout), text.get(self.stderr)  # type: ignore[arg-type]

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Client:
    """This test process's warm interpreter: started on first use, and again when it has
    gone or this process's start-up variables have changed."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.path = ""
        self.env: dict[str, str] = {}
        self.folder: str | None = None  # holds the socket; removed with the interpreter
        self.refused = ""  # why the last command started fresh (shown by the tests)

    def _start(self) -> bool:
        self.close()
        self.folder = tempfile.mkdtemp(prefix="mnistx-warm-")
        self.path = os.path.join(self.folder, "socket")
        self.env = dict(os.environ)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, self.path], stdout=subprocess.PIPE, stdin=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        said = self.proc.stdout.readline().strip()
        if said != b"ready":
            self.refused = f"the warm interpreter said {said!r} when it started"
            self.close()
            return False
        return True

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # the interpreter stops when its test process goes
            self.proc.wait(timeout=30)
            self.proc = None
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def connect(self, env: dict[str, str]) -> socket.socket | None:
        """A connection to the warm interpreter for a command with this environment, or
        None: start fresh."""
        if os.environ.get("MNISTX_TESTS_FRESH") == "1":
            self.refused = "MNISTX_TESTS_FRESH=1"
            return None
        if _startup(env) != _startup(dict(os.environ)):  # this command's own: fresh
            self.refused = "the command sets its own start-up variables"
            return None
        alive = self.proc is not None and self.proc.poll() is None
        if (not alive or _startup(self.env) != _startup(dict(os.environ))) and not self._start():
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        sock.connect(self.path)
        return sock

    def start(
        self, module: str, args: list[str], cwd: Path, env: dict[str, str], streams: dict
    ) -> WarmProcess | None:
        """`streams`: stdout/stderr as subprocess.PIPE, DEVNULL, or a file path."""
        sock = self.connect(env)
        if sock is None:
            return None
        request: dict[str, Any] = {"module": module, "args": args, "cwd": str(cwd), "env": env}
        fds, pipes = [], {}
        for name in ("stdout", "stderr"):
            where = streams.get(name, subprocess.DEVNULL)
            if where == subprocess.PIPE:
                read, write = os.pipe()
                pipes[name] = open(read, encoding="utf-8", errors="replace")  # noqa: SIM115
                request[name] = len(fds)  # the index of its descriptor in the message
                fds.append(write)
            else:
                request[name] = os.devnull if where == subprocess.DEVNULL else str(where)
        socket.send_fds(sock, [json.dumps(request).encode()], fds)
        for fd in fds:  # the command holds them now: a pipe ends when the command ends
            os.close(fd)
        return WarmProcess(sock, [sys.executable, "-m", module, *args], pipes)

    def run(
        self, module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
    ) -> subprocess.CompletedProcess | None:
        with tempfile.TemporaryDirectory() as tmp:
            out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
            proc = self.start(module, args, cwd, env, {"stdout": out, "stderr": err})
            if proc is None:
                return None
            try:
                status = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
            text = [Path(p).read_text(errors="replace") for p in (out, err)]
        return subprocess.CompletedProcess(proc.args, status, text[0], text[1])


_client = _Client()
atexit.register(_client.close)


def run_module(
    module: str, args: list[str], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess | None:
    """The command run to its end in a fork of the warm interpreter, or None where it must
    start fresh (`refused()` says why)."""
    return _client.run(module, args, cwd, env, timeout)


def start_module(
    module: str, args: list[str], cwd: Path, env: dict[str, str], **streams: Any
) -> WarmProcess | None:
    """The command started in a fork of the warm interpreter (stdout=, stderr=: PIPE or
    DEVNULL, as for Popen), or None where it must start fresh (`refused()` says why)."""
    return _client.start(module, args, cwd, env, streams)


def refused() -> str:
    return _client.refused


# The warm interpreter ----------------------------------------------------------------------


def _serve(path: str) -> tuple[dict, list[int]] | None:
    """Answer requests until the test process goes (its end of our stdin closes); return a
    request and its descriptors in a forked command."""
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
    server = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    server.bind(path)
    server.listen(8)
    print("ready", flush=True)
    with selectors.DefaultSelector() as selector:
        selector.register(server, selectors.EVENT_READ)
        selector.register(sys.stdin, selectors.EVENT_READ)
        while True:
            ready = [key.fileobj for key, _ in selector.select()]
            if sys.stdin in ready:  # closed: the test process has gone
                return None
            conn, _ = server.accept()
            message, fds, _, _ = socket.recv_fds(conn, MESSAGE, 2)
            sys.stdout.flush()
            sys.stderr.flush()
            if os.fork() == 0:  # a minder: starts the command, tells its pid and exit status
                server.close()
                pid = os.fork()
                if pid == 0:
                    conn.close()
                    return json.loads(message), fds
                for fd in fds:
                    os.close(fd)
                conn.send(f"{pid}".encode())
                _, status = os.waitpid(pid, 0)
                conn.send(f"{os.waitstatus_to_exitcode(status)}".encode())
                os._exit(0)
            conn.close()
            for fd in fds:
                os.close(fd)
            while True:  # the minders that have ended
                try:
                    if os.waitpid(-1, os.WNOHANG)[0] == 0:
                        break
                except ChildProcessError:
                    break


def _become(request: dict, fds: list[int], started_with: list[str]) -> None:
    """In the child: the command's folder, environment, sys.path, streams and Ctrl-C, as
    `python -m` has them when started from a terminal (`started_with`: the warm
    interpreter's own PYTHONPATH entries)."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    for entry in started_with:
        if entry in sys.path:
            sys.path.remove(entry)
    sys.path[0:0] = _python_path(os.environ)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for fd, key in ((1, "stdout"), (2, "stderr")):
        where = request[key]
        if isinstance(where, int):
            os.dup2(fds[where], fd)
        else:
            target = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(target, fd)
            os.close(target)
    for held in fds:
        os.close(held)
    # Python raises KeyboardInterrupt on SIGINT unless it started with SIGINT ignored (a
    # background job); a command started from a terminal has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [request["module"], *request["args"]]
    sys.path.insert(0, os.getcwd())  # as `python -m` puts it first


if __name__ == "__main__":
    # Not in the child: the tests' folder, where this file is (python puts it on sys.path).
    sys.path.remove(os.path.dirname(os.path.abspath(__file__)))
    own_path = _python_path(dict(os.environ))
    job = _serve(sys.argv[1])
    if job is not None:
        import runpy

        _become(*job, own_path)
        runpy.run_module(job[0]["module"], run_name="__main__", alter_sys=True)
