"""What a config may build: the one allow-list of `_target_`s, checked before anything is built.

Hydra's `instantiate` calls whatever a `_target_` names, with whatever arguments the node
holds, and recursively so for nested nodes. A config read from a saved run (a checkpoint's
hyperparameters, a downloaded run's .hydra/config.yaml) must never choose code, so every node
is checked here first, for the live config as for a saved one (the idea of Hydra 1.4's
`instantiate` allow-list):

- its `_target_` is one that conf/ names (the networks, losses, optimizers, schedulers, data
  module, callbacks, loggers, Trainer), or a class of a known family: an optimizer of
  `torch.optim`, a scheduler of `torch.optim.lr_scheduler`, a Lightning callback or profiler
  (only those modules are imported to look the name up; nothing else is ever imported);
- its keys are arguments the target takes (`inspect.signature`), nested nodes likewise;
- `data.dataset`, a class named as a string, is an MNIST-family dataset of torchvision.

A network of your own becomes buildable by naming it in a conf/ file (conf/model/<name>.yaml);
a callback of your own package by `trusted_targets=[mypkg.MyCallback]` on the training command
line. That key is honoured only from the command that trains (`trusting`), never from a saved
run: eval, predict and serve build only what the list above allows.
"""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from typing import Any, cast

from mnistx.compat.omegaconf import read_yaml
from mnistx.errors import UserError

# Modules whose classes of the given base may be built though conf/ does not name them.
FAMILIES = {
    "torch.optim": ("torch.optim.optimizer", "Optimizer"),
    "torch.optim.lr_scheduler": ("torch.optim.lr_scheduler", "LRScheduler"),
    "lightning.pytorch.callbacks": ("lightning.pytorch.callbacks", "Callback"),
    "lightning.pytorch.profilers": ("lightning.pytorch.profilers", "Profiler"),
}
# Hydra's own keys in a node: any other `_key_` is refused.
HYDRA_KEYS = {"_target_", "_partial_", "_args_", "_recursive_", "_convert_"}
# Keys of a section that mnistx reads itself rather than passing to the target.
NOT_ARGUMENTS = {"model": {"compile", "channels_last"}, "scheduler": {"interval"}}
# torchvision's MNIST-family datasets (data.dataset): the same files, so the same loader.
DATASET_MODULE = "torchvision.datasets"
DATAMODULE = "mnistx.data.datamodule.MNISTDataModule"


class RefusedConfig(UserError):
    """A config node names code mnistx does not build, or arguments its target does not take."""


# The targets the training command's own `trusted_targets=` adds, while it builds (`trusting`).
_trusted: set[str] = set()


def check_trusted(names: object) -> list[str]:
    """`trusted_targets`: a list of full dotted names (mypkg.callbacks.MyCallback)."""
    if names is None:
        return []
    if not isinstance(names, list | tuple) or not all(
        isinstance(n, str) and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", n) for n in names
    ):
        raise UserError(
            f"trusted_targets={names} must be a list of full dotted names of classes or "
            "functions you trust a config to build, e.g. "
            "trusted_targets=[mypkg.callbacks.MyCallback]"
        )
    return list(names)


@contextmanager
def trusting(names: Sequence[str]) -> Iterator[None]:
    """Allow `names` too while the training command builds its live config."""
    added = set(check_trusted(list(names))) - _trusted
    _trusted.update(added)
    try:
        yield
    finally:
        _trusted.difference_update(added)


def _walk_yaml(node: Any, found: set[str], datasets: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "_target_" and isinstance(value, str):
                found.add(value)
            elif key == "dataset" and isinstance(value, str):
                datasets.add(value)
            else:
                _walk_yaml(value, found, datasets)
    elif isinstance(node, list):
        for value in node:
            _walk_yaml(value, found, datasets)


@cache
def _conf_names() -> tuple[frozenset[str], frozenset[str]]:
    """The `_target_`s and datasets that mnistx's own conf/ files name (not conf/local/,
    which is a machine's settings, not code)."""
    targets: set[str] = set()
    datasets: set[str] = set()
    stack = [files("mnistx.conf")]
    while stack:
        folder = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir() and entry.name not in ("local", "__pycache__"):
                stack.append(entry)
            elif entry.name.endswith(".yaml"):
                data = read_yaml(str(entry))
                _walk_yaml(data, targets, datasets)
    return frozenset(targets), frozenset(datasets)


def allowed_targets() -> frozenset[str]:
    return _conf_names()[0]


def _family_member(target: str) -> Any:
    module, _, name = target.rpartition(".")
    family = FAMILIES.get(module)
    if family is None or not name or name.startswith("_"):
        return None
    found = getattr(importlib.import_module(module), name, None)
    base = getattr(importlib.import_module(family[0]), family[1])
    return found if inspect.isclass(found) and issubclass(found, base) else None


def _import(target: str) -> Any:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


def resolve(target: Any, key: str, source: str | None) -> Callable[..., Any]:
    """The callable an allowed `_target_` names; RefusedConfig for any other, before anything
    outside the allowed modules is imported."""
    if isinstance(target, str) and (target in allowed_targets() or target in _trusted):
        try:
            return cast(Callable[..., Any], _import(target))
        except (ImportError, AttributeError):
            pass  # e.g. a module that moved: the error below
    elif isinstance(target, str):
        member = _family_member(target)
        if member is not None:
            return cast(Callable[..., Any], member)
    raise RefusedConfig(
        f"{_where(source)}{key}._target_={target!r} is not something mnistx builds, so it was "
        "refused before anything was built or run. A config may build only what conf/ names "
        "(the networks, losses, optimizers, schedulers, data module, callbacks, loggers and "
        "Trainer) or a class of torch.optim, torch.optim.lr_scheduler, "
        "lightning.pytorch.callbacks or lightning.pytorch.profilers. "
        + (
            "A saved run that names anything else was changed after mnistx wrote it, or "
            "was trained with trusted_targets=: if you trust that code, name it again on "
            "this command, e.g. resume=<run> trusted_targets=[<its full name>]."
            if source
            else "To train with a class of your own, add trusted_targets=[<its full name>] to "
            "the training command (or name it in a conf/ file, e.g. conf/model/<name>.yaml)."
        )
    )


def _where(source: str | None) -> str:
    return f"{source}: " if source else ""


def dataset_class(name: Any, key: str = "data.dataset", source: str | None = None) -> Any:
    """The torchvision dataset class `data.dataset` names: one of the MNIST family only."""
    if isinstance(name, str) and name.rpartition(".")[0] == DATASET_MODULE:
        import torchvision.datasets as tv

        found = getattr(tv, name.rpartition(".")[2], None)
        if inspect.isclass(found) and issubclass(found, tv.MNIST):
            return found
    known = sorted(_conf_names()[1])
    raise RefusedConfig(
        f"{_where(source)}{key}={name!r} is not an MNIST-family dataset of torchvision (the files "
        f"mnistx reads), so it was refused before anything was imported. Use one of "
        f"{', '.join(known)}, e.g. data=fashion_mnist."
    )


def _check_arguments(
    fn: Any, node: dict[str, Any], key: str, source: str | None, skip: set[str]
) -> None:
    args = list(node.get("_args_") or [])
    kwargs = {k: v for k, v in node.items() if k not in HYDRA_KEYS and k not in skip}
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature to read (a builtin class)
        return
    try:
        signature.bind_partial(*args, **kwargs)
    except TypeError as e:
        names = ", ".join(p for p in signature.parameters if p not in ("self", "args", "kwargs"))
        target = node["_target_"]
        what = "Lightning's Trainer" if target == "lightning.pytorch.Trainer" else target
        unknown = re.search(r"unexpected keyword argument '(\w+)'", str(e))
        problem = f"{key}.{unknown[1]} is not an argument of {what}" if unknown else f"{key}: {e}"
        raise RefusedConfig(
            f"{_where(source)}{problem}. Check its spelling; the arguments are: {names}."
        ) from None


def check_node(node: Any, key: str, source: str | None = None, section: str | None = None) -> None:
    """Every `_target_` in `node` (a plain container: nested dicts and lists) is allowed and
    given only arguments it takes; RefusedConfig naming `source` and the key otherwise."""
    if isinstance(node, list):
        for i, value in enumerate(node):
            check_node(value, f"{key}[{i}]", source)
        return
    if not isinstance(node, dict):
        return
    odd = [k for k in node if isinstance(k, str) and k.startswith("_") and k.endswith("_")]
    odd = [k for k in odd if k not in HYDRA_KEYS]
    if odd:
        raise RefusedConfig(
            f"{_where(source)}{key}.{odd[0]} is not a key mnistx's configs use, so it was refused "
            "before anything was built."
        )
    if "_args_" in node and not isinstance(node["_args_"], list):
        raise RefusedConfig(f"{_where(source)}{key}._args_ must be a list; it was refused.")
    target = node.get("_target_")
    if target is not None:
        fn = resolve(target, key, source)
        _check_arguments(fn, node, key, source, NOT_ARGUMENTS.get(section or key, set()))
    elif "_target_" not in node and ("_args_" in node or "_partial_" in node):
        raise RefusedConfig(f"{_where(source)}{key} has _args_ or _partial_ but no _target_.")
    if target == DATAMODULE and "dataset" in node:
        dataset_class(node["dataset"], f"{key}.dataset", source)
    for name, value in node.items():
        if name != "_target_":
            check_node(value, f"{key}.{name}" if name != "_args_" else f"{key}._args_", source)
