"""`python -m mnistx.train --help`, answered in well under a second.

Hydra's own `--help` lists the config groups of every installed Hydra plugin (launchers,
sweepers, samplers: ~100 groups), twice, re-copying the config sources for each lookup: ~2 s
on a 2-core CPU, though mnistx's help page shows only mnistx's own groups. This renders the
same page from the same template (conf/hydra/help/mnistx.yaml) with the groups read from
conf/. Other flags (`-m --help`, `--resolve`) go to Hydra as before.
"""

from __future__ import annotations

import string
import sys
from collections.abc import Sequence
from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

HELP_FLAGS = ("--help", "-h")


def plain_help_request(argv: Sequence[str]) -> list[str] | None:
    """The overrides of a `--help` call with nothing but overrides besides; else None."""
    if not any(a in HELP_FLAGS for a in argv):
        return None
    rest = [a for a in argv if a not in HELP_FLAGS]
    return None if any(a.startswith("-") for a in rest) else rest


def _groups(folder: Traversable, prefix: str = "") -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for entry in folder.iterdir():
        if not entry.is_dir() or entry.name.startswith(("_", ".")) or entry.name == "hydra":
            continue
        name = prefix + entry.name
        options = sorted(f.name[:-5] for f in entry.iterdir() if f.name.endswith(".yaml"))
        if options:
            found[name] = options
        found.update(_groups(entry, name + "/"))
    return found


def app_config_groups() -> str:
    """mnistx's config groups and their options, one `group: a, b` line each, as Hydra's help
    lists them."""
    groups = _groups(files("mnistx.conf"))
    return "".join(f"{g}: {', '.join(groups[g])}\n" for g in sorted(groups))


def render_help(overrides: Sequence[str]) -> str:
    """The help page for `python -m mnistx.train [overrides] --help`."""
    from omegaconf import OmegaConf, open_dict

    from mnistx.runs.compose import compose_config

    cfg = compose_config(overrides, with_hydra=True)
    template = string.Template(cfg.hydra.help.template)
    with open_dict(cfg):
        del cfg["hydra"]
    return template.safe_substitute(
        APP_CONFIG_GROUPS=app_config_groups(), CONFIG=OmegaConf.to_yaml(cfg)
    )


def answer_help(argv: Sequence[str]) -> bool:
    """Print the help page if `argv` asks for it plainly; False leaves the call to Hydra.
    A bad override gets Hydra's message, as a run would print it (Hydra's own `--help` shows
    a traceback instead), and exit status 1."""
    from hydra.errors import HydraException

    overrides = plain_help_request(argv)
    if overrides is None:
        return False
    try:
        text = render_help(overrides)
    except HydraException as e:
        print(e, file=sys.stderr)
        sys.exit(1)
    print(text)
    return True
