"""Make sure a torchvision MNIST-family dataset's raw IDX files are present and whole.

torchvision would re-download over a file whose md5 is wrong and fails with long tracebacks
offline; here every problem becomes one UserError naming the file, and no existing file is
ever replaced or deleted.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

from mnistx.errors import UserError

_MAGIC = {2049: 1, 2051: 3}  # IDX labels (1 dim), images (3 dims), unsigned bytes


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_idx(path: Path) -> None:
    """Raise UserError unless `path` is a complete IDX file (header and size agree)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(16)
    magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else -1
    ndim = _MAGIC.get(magic)
    if ndim is None or len(head) < 4 + 4 * ndim:
        raise UserError(
            f"{path} is not an MNIST-format IDX file (bad header). Replace it with the "
            "original file, or move it away so it is downloaded again."
        )
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + math.prod(dims)
    if size != expected:
        raise UserError(
            f"{path} is truncated or corrupt: its header announces {'x'.join(map(str, dims))} "
            f"values ({expected} bytes) but the file has {size} bytes. Replace it with the "
            "original file, or move it away so it is downloaded again."
        )


def ensure_raw_files(dataset_cls: type, root: str | os.PathLike) -> Path:
    """Check, extract or download the four raw files of `dataset_cls` under root/<Name>/raw."""
    raw = Path(root) / dataset_cls.__name__ / "raw"
    resources = list(dataset_cls.resources)  # (file name, md5) pairs
    missing = []
    for gz, md5 in resources:
        idx = raw / gz.removesuffix(".gz")
        if idx.exists():
            check_idx(idx)
        elif (raw / gz).exists():
            if _md5(raw / gz) != md5:
                raise UserError(
                    f"{raw / gz} is truncated or corrupt (its md5 is not the official {md5}). "
                    f"Replace it with the original download, or, if it is a re-compressed copy "
                    f"of good data (e.g. Debian's dataset-fashion-mnist), gunzip it in place: "
                    f"the uncompressed {idx.name} is used as it is."
                )
            missing.append(gz)
        else:
            missing.append(gz)
    if not missing:
        return raw
    try:
        if len(missing) == len(resources):
            # The usual first run: torchvision fetches what is absent, verifies md5s, extracts.
            dataset_cls(str(root), train=True, download=True)
        else:  # some files are there already: fetch/extract only the others, touch nothing else
            from torchvision.datasets.utils import download_and_extract_archive

            for gz in missing:
                md5 = dict(resources)[gz]
                _fetch(dataset_cls, gz, md5, raw, download_and_extract_archive)
    except Exception as e:
        names = ", ".join(gz for gz, _ in resources)
        raise UserError(
            f"The {dataset_cls.__name__} data is not in {raw.resolve()} and could not be "
            f"downloaded ({str(e).strip().splitlines()[-1]}). Put the four files {names} "
            f"(or their uncompressed versions) in that folder, or point data.data_dir (or the "
            f"MNISTX_DATA_DIR environment variable) at the folder that contains "
            f"{dataset_cls.__name__}/raw."
        ) from None
    for gz, _ in resources:
        check_idx(raw / gz.removesuffix(".gz"))
    return raw


def _fetch(dataset_cls: type, gz: str, md5: str, raw: Path, download_and_extract) -> None:
    """Fetch one file from the dataset's mirrors (as torchvision's own download loop does)."""
    errors = []
    for mirror in dataset_cls.mirrors:
        try:
            download_and_extract(mirror + gz, download_root=str(raw), filename=gz, md5=md5)
            return
        except Exception as e:  # next mirror
            errors.append(f"{mirror}{gz}: {e}")
    raise RuntimeError("; ".join(errors))
