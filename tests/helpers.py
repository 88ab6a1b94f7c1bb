"""Helpers the tests share: a tiny MNIST-format dataset, running a command as a user does,
hashing a folder, and the overrides of a tiny run and of a two-node DDP rank."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from warm_start import WarmProcess, run_module, start_module

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "MNIST" / "raw"
PROJECT_MNIST = REPO / "data" / "MNIST" / "raw"
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
TINY_TRAIN, TINY_TEST = 600, 200


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (the MNIST on-disk format)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.tobytes())


def tiny_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Learnable 28x28 'digits': class k is a bright bar at a class-specific place, plus noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    rng.shuffle(labels)
    images = rng.integers(0, 140, size=(n, 28, 28))
    for i, k in enumerate(labels):
        r, c = 2 + 2 * k + rng.integers(-1, 2), 4 + rng.integers(0, 10)
        images[i, r : r + 2, c : c + 12] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


def make_tiny_dataset(root: Path, folder: str = "MNIST") -> Path:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix, n, seed in (("train", TINY_TRAIN, 0), ("t10k", TINY_TEST, 1)):
        images, labels = tiny_images(n, seed)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    return root


def run_cli(
    cwd: Path,
    *args: str,
    check: bool = True,
    module: str = "mnistx.train",
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """`python -m mnistx.train ARGS` (or another module) as a user runs it, in `cwd`: in a
    fork of a warm interpreter (tests/warm_start.py) unless `env` changes what libraries read
    when imported."""
    full_env = {**os.environ, **(env or {})}
    proc = run_module(module, list(args), cwd, full_env, timeout=300) or subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def start_cli(
    cwd: Path,
    *args: str,
    module: str = "mnistx.train",
    stdout: int = subprocess.DEVNULL,
    stderr: int = subprocess.PIPE,
) -> WarmProcess | subprocess.Popen:
    """`python -m mnistx.train ARGS` started as from a terminal (Ctrl-C raises
    KeyboardInterrupt), for a test that watches, signals and waits for it as a Popen (text
    streams): a fork of the warm interpreter, or a fresh one where that is refused."""
    env = dict(os.environ)
    proc = start_module(module, list(args), cwd, env, stdout=stdout, stderr=stderr)
    if proc is not None:
        return proc
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        stdout=stdout,
        stderr=stderr,
        text=True,
        env=env,
        # A background shell job (CI started with `&`) would inherit an ignored SIGINT, and
        # Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` and a hash of its bytes."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


TINY_OVERRIDES = [
    "data.val_size=100",
    "data.batch_size=32",
    "data.eval_batch_size=100",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "callbacks.pictures=null",  # drawn in the tests of pictures only
]


# What a continued run (resume, requeue) must report exactly as an uninterrupted one.
SAME_RESULTS = (
    "test/acc",
    "test/loss",
    "val/acc_best",
    "best_epoch",
    "train/loss",
    "val/loss",
    "train/acc",
    "val/acc",
    "epochs",
)


def two_node_ddp(data: Path, seen: Path) -> list[str]:
    """Overrides of one rank of a 2-node DDP run (one process per node, gloo) that records
    the rows each rank sees into `seen` (tests/index_recorder.py)."""
    return [
        f"data.data_dir={data}",
        *TINY_OVERRIDES,
        "trainer=ddp",
        "trainer.devices=1",
        "+trainer.num_nodes=2",
        "trainer.accelerator=cpu",
        "+callbacks.recorder._target_=index_recorder.IndexRecorder",
        "trusted_targets=[index_recorder.IndexRecorder]",
        f"+callbacks.recorder.out_dir={seen}",
    ]


def wandb_records(path: Path) -> list:
    """The records of a W&B offline run file (run-<id>.wandb), as W&B's own protobuf
    messages: a LevelDB-style log (a 7-byte header, then 32 KiB blocks of records, each a
    7-byte header: crc32, length, type FULL/FIRST/MIDDLE/LAST). wandb 0.31 ships no reader."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, pos = [], b"", 7
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the rest of a block too short for a header: padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if kind == 0:
            break
        chunk, pos = data[pos + 7 : pos + 7 + length], pos + 7 + length
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):  # FULL or LAST: one whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def wandb_run(folder: Path) -> dict:
    """An offline W&B run folder's run record, config, history rows and final summary."""
    import json as json_module

    (file,) = folder.glob("run-*.wandb")

    def key(item) -> str:
        return item.key or "/".join(item.nested_key)

    found: dict = {"run": None, "config": {}, "history": [], "summary": {}}
    for record in wandb_records(file):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            found["run"] = record.run
        elif kind == "config":
            found["config"].update(
                {key(i): json_module.loads(i.value_json) for i in record.config.update}
            )
        elif kind == "history":
            found["history"].append(
                {key(i): json_module.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            found["summary"].update(
                {key(i): json_module.loads(i.value_json) for i in record.summary.update}
            )
    return found


def png_bomb(width: int, height: int) -> bytes:
    """A real 1-bit black PNG of width x height: a few kB that decode to width*height bytes
    (a decompression bomb), written row by row so making it takes no memory."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte, then the packed pixels
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row * 100) for _ in range(height // 100))
    idat += packer.compress(row * (height % 100)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
