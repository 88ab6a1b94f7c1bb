"""OmegaConf's internals: the YAML loader that `OmegaConf.load` (and so Hydra) reads with.

`omegaconf._utils.get_yaml_loader()` returns a new subclass of PyYAML's pure-Python
SafeLoader on every call (OmegaConf's float and Path rules, no timestamps, duplicate keys
refused). A command reads conf/'s ~65 files two or three times (Hydra composes to learn the
mode, then to run; mnistx lists conf/'s targets and values) and a sweep again for each job:
measured here, that parsing was ~0.3 s of a tiny run's ~1.4 s. `use_libyaml()` makes that
function return one class with the same rules on libyaml's C parser, where PyYAML has it.
tests/test_compat_omegaconf.py checks that both read every conf/ file and a set of tricky
documents alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def use_libyaml() -> None:
    """Have OmegaConf parse YAML with libyaml (once per process; a no-op without it)."""
    import yaml
    from omegaconf import _utils

    if getattr(_utils.get_yaml_loader, "libyaml", False) or not yaml.__with_libyaml__:
        return
    fast = libyaml_loader(_utils.get_yaml_loader())

    def get_yaml_loader() -> Any:
        return fast

    get_yaml_loader.libyaml = True  # type: ignore[attr-defined]
    _utils.get_yaml_loader = get_yaml_loader


def libyaml_loader(pure: type) -> type:
    """OmegaConf's loader class `pure` with libyaml's parser in place of PyYAML's: its
    resolvers, constructors and duplicate-key check are inherited as they are."""
    from yaml.constructor import SafeConstructor
    from yaml.cyaml import CParser
    from yaml.resolver import Resolver

    class LibyamlLoader(CParser, pure):
        def __init__(self, stream: Any) -> None:
            CParser.__init__(self, stream)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return LibyamlLoader


def read_yaml(path: str | Path) -> Any:
    """A YAML file as plain data (dicts, lists, scalars; interpolations left as strings),
    read by OmegaConf's own rules, as `OmegaConf.to_container(OmegaConf.load(path))` gives
    it, without building a DictConfig first: a sweep's 7 kB multirun.yaml, read to name
    each of its jobs' folders, took 70 ms that way, 3 ms this way."""
    import yaml
    from omegaconf import _utils

    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=_utils.get_yaml_loader())
    return {} if data is None else data  # an empty file is an empty config to OmegaConf
