"""Checkpoints written atomically in their own folder, and a full disk said in one paragraph.

Lightning's own writer (fsspec's transaction) stages each checkpoint in $TMPDIR and moves it
into place: a small /tmp then kills a run whose output disk has room, and a full output disk
leaves a traceback. Here the file is staged beside its final name (`.<name>.tmp`), synced,
and renamed over it, so the previous checkpoint stays whole until the new one is complete.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins import TorchCheckpointIO

from mnistx.errors import UserError


class DiskFullError(UserError):
    """The output disk has no room for a checkpoint; the previous one is intact."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """TorchCheckpointIO that stages the file in the checkpoint's own folder."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:  # as Lightning's own: no storage options
            return super().save_checkpoint(checkpoint, path, storage_options)
        final = Path(path)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        tmp = final.parent / f".{final.name}.tmp"
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(buffer.getbuffer())
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DiskFullError(
                    f"The disk holding {final.parent} is full (no room for {final.name}, "
                    f"{buffer.getbuffer().nbytes / 1e6:.1f} MB), so training stopped. The "
                    "previous checkpoints there are whole. Free some space, then continue "
                    f"the run: python -m mnistx.train resume={final.parent.parent}"
                ) from None
            raise
        return None
