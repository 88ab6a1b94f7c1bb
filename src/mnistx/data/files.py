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
from typing import Any

from mnistx.errors import UserError

_MAGIC = {2049: 1, 2051: 3}  # IDX labels (1 dim), images (3 dims), unsigned bytes


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _readable(path: Path, action):
    """Run `action`, turning a file-system error (no permission, not a folder) into a
    UserError naming the path."""
    try:
        return action()
    except OSError as e:
        raise UserError(
            f"Cannot read the data file {path}: {e.strerror or e}. Make it readable (and every "
            "folder above it), or point data.data_dir (or MNISTX_DATA_DIR) at a folder that "
            "holds <dataset>/raw with the four files."
        ) from None


def check_idx(path: Path) -> list[int]:
    """The dimensions an IDX file's header announces; UserError unless the file is a complete
    IDX file (header and size agree)."""
    size = _readable(path, lambda: path.stat().st_size)
    head = _readable(path, lambda: path.open("rb").read(16))
    magic = int.from_bytes(head[:4], "big") if len(head) >= 4 else -1
    ndim = _MAGIC.get(magic)
    if ndim is None or len(head) < 4 + 4 * ndim:
        found = f"0x{magic:08x}" if magic >= 0 else f"only {len(head)} bytes"
        raise UserError(
            f"{path} is not an MNIST-format IDX file: its first 4 bytes should be the magic "
            f"number 0x00000801 (labels) or 0x00000803 (images), and are {found}. Replace it "
            "with the original file, or move it away so it is downloaded again."
        )
    dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + math.prod(dims)
    if size != expected:
        raise UserError(
            f"{path} is truncated or corrupt: its header announces {'x'.join(map(str, dims))} "
            f"values ({expected} bytes) but the file has {size} bytes. Replace it with the "
            "original file, or move it away so it is downloaded again."
        )
    return dims


def check_pairs(raw: Path, resources: list[tuple[str, str]], num_classes: int | None) -> None:
    """Each images file has as many labels as images, and every label names a class."""
    idx = [raw / gz.removesuffix(".gz") for gz, _ in resources]
    for split in ("train", "t10k"):
        images = next((p for p in idx if p.name.startswith(f"{split}-images")), None)
        labels = next((p for p in idx if p.name.startswith(f"{split}-labels")), None)
        if images is None or labels is None:
            continue
        n_images, n_labels = check_idx(images)[0], check_idx(labels)[0]
        if n_images != n_labels:
            raise UserError(
                f"{labels} holds {n_labels} labels but {images} holds {n_images} images: the "
                "two files of a split must come from the same release. Replace them with the "
                "original pair."
            )
        if num_classes is not None:
            top = max(_readable(labels, labels.read_bytes)[8:], default=0)
            if top >= num_classes:
                raise UserError(
                    f"{labels} has a label {top}, but the dataset has {num_classes} classes "
                    f"(labels 0 to {num_classes - 1}). Replace it with the original file, or "
                    "set data.num_classes to the number of classes it really has."
                )


def ensure_raw_files(
    dataset_cls: Any, root: str | os.PathLike, num_classes: int | None = None
) -> Path:
    """Check, extract or download the four raw files of `dataset_cls` under root/<Name>/raw,
    and that each split's images and labels agree."""
    raw = Path(root) / dataset_cls.__name__ / "raw"
    resources = list(dataset_cls.resources)  # (file name, md5) pairs
    missing = []
    for gz, md5 in resources:
        idx = raw / gz.removesuffix(".gz")
        if _readable(idx, idx.exists):
            check_idx(idx)
        elif (raw / gz).exists():
            if _readable(raw / gz, lambda gz=gz: _md5(raw / gz)) != md5:
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
        check_pairs(raw, resources, num_classes)
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
    check_pairs(raw, resources, num_classes)
    return raw


def _fetch(dataset_cls: Any, gz: str, md5: str, raw: Path, download_and_extract) -> None:
    """Fetch one file from the dataset's mirrors (as torchvision's own download loop does)."""
    errors = []
    for mirror in dataset_cls.mirrors:
        try:
            download_and_extract(mirror + gz, download_root=str(raw), filename=gz, md5=md5)
            return
        except Exception as e:  # next mirror
            errors.append(f"{mirror}{gz}: {e}")
    raise RuntimeError("; ".join(errors))
