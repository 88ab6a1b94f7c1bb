"""Building objects from config: every part of a run is made here, one way.

A config node names its class or factory (`_target_`) and its arguments; `build` checks it
against the allow-list (mnistx.config.targets: nothing else is ever built), instantiates it,
and turns the errors Hydra wraps around a bad argument into one UserError that names the
config key to fix. Nodes with `_partial_: true` (optimizer, scheduler) come back as factories
the LightningModule completes (they need the model's parameters).
"""

from __future__ import annotations

import re
from typing import Any

from mnistx.config.targets import check_node
from mnistx.errors import UserError

# Lightning's Trainer gets its own words: its arguments are Lightning's, not mnistx's.
_TRAINER = "trainer"


def build(what: str, node: Any, **kwargs: Any) -> Any:
    """`node` instantiated (with `kwargs` added), or a UserError about the `what.*` keys."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    check_node(_plain(node), what)
    try:
        return instantiate(node, **kwargs)
    except UserError:
        raise
    except Exception as e:
        cause = e.__cause__ if isinstance(e, InstantiationException) and e.__cause__ else e
        if isinstance(cause, UserError):
            raise cause from None
        if what == _TRAINER:
            raise _trainer_error(cause) from None
        if not isinstance(cause, InstantiationException | TypeError | ValueError):
            raise
        detail = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause)
        raise UserError(
            f"Could not build {what} from the config: {detail}. Check the {what}.* overrides "
            f"(`python -m mnistx.train --cfg job` prints the composed config)."
        ) from None


def _plain(node: Any) -> Any:
    """The node as plain dicts and lists, interpolations resolved: what Hydra will build."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(node, DictConfig | ListConfig):
        return OmegaConf.to_container(node, resolve=True)
    return node


def complete(what: str, factory: Any, *args: Any, **kwargs: Any) -> Any:
    """A built partial (`_partial_: true`) called with what only the caller has (the model's
    parameters), with `build`'s errors."""
    try:
        return factory(*args, **kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(
            f"Could not build {what} from the config: {str(e).strip()}. Check the {what}.* "
            "overrides (`python -m mnistx.train --cfg job` prints the composed config)."
        ) from None


def check_arguments(what: str, factory: Any, *args: Any) -> None:
    """A partial's keyword arguments are ones its target takes: checked without building it,
    so a misspelt key fails before training starts."""
    import inspect

    try:
        inspect.signature(factory.func).bind(*args, **factory.keywords)
    except TypeError as e:
        raise UserError(
            f"Could not build {what} from the config: {e}. Check the {what}.* overrides "
            "(`python -m mnistx.train --cfg job` prints the composed config)."
        ) from None
    except ValueError:  # no signature to read (a builtin): it is checked when built
        pass


def _trainer_error(cause: BaseException) -> BaseException:
    import lightning.pytorch as L
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    unknown = re.search(r"unexpected keyword argument '(\w+)'", str(cause))
    if isinstance(cause, TypeError) and unknown:
        return UserError(
            f"trainer.{unknown[1]} is not an argument of Lightning's Trainer "
            f"(lightning {L.__version__}). Check its spelling against "
            "lightning.pytorch.Trainer's arguments, e.g. +trainer.gradient_clip_val=1.0"
        )
    if not isinstance(cause, MisconfigurationException | ValueError | TypeError):
        return cause
    return UserError(f"Invalid trainer settings: {cause} Check the trainer.* overrides.")
