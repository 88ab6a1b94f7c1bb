"""OmegaConf's internals: the YAML loader and dumper that `OmegaConf.load` and
`OmegaConf.to_yaml` (and so Hydra) read and write with, and the parser of its `${...}`
interpolations.

`omegaconf._utils.get_yaml_loader()` returns a new subclass of PyYAML's pure-Python
SafeLoader on every call (OmegaConf's float and Path rules, no timestamps, duplicate keys
refused). A command reads conf/'s ~65 files two or three times (Hydra composes to learn the
mode, then to run; mnistx lists conf/'s targets and values) and a sweep again for each job:
measured here, that parsing was ~0.3 s of a tiny run's ~1.4 s. `use_libyaml()` makes that
function return one class with the same rules on libyaml's C parser, where PyYAML has it.
tests/test_compat_omegaconf.py checks that both read every conf/ file and a set of tricky
documents alike; it makes `OmegaConf.to_yaml` write through libyaml's emitter too (below).

OmegaConf parses an interpolation string with its ANTLR grammar every time the value is read
(`omegaconf.grammar_parser.parse`, 0.1-0.7 ms each here): ~600 times in an 8-job sweep,
for 22 distinct strings (Hydra's composition, the `.hydra/` files, building the objects).
`cache_interpolation_parses()` keeps the parse trees of the strings seen: a tree is only
read after parsing (each token keeps its own input), so one tree serves every read.
The tests check that values resolve as before, alternating strings included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def use_libyaml() -> None:
    """Have OmegaConf parse and write YAML with libyaml (once per process; a no-op without
    it). Writing: `OmegaConf.to_yaml` (Hydra's `.hydra/*.yaml` of every job, a sweep's
    multirun.yaml) took ~9 ms per config here in PyYAML's pure-Python emitter, ~2 ms in
    libyaml's; the text may wrap long strings elsewhere, and reads back as the same data."""
    import yaml
    from omegaconf import _utils
    from omegaconf import omegaconf as omegaconf_module

    if getattr(_utils.get_yaml_loader, "libyaml", False) or not yaml.__with_libyaml__:
        return
    fast = libyaml_loader(_utils.get_yaml_loader())
    writer = libyaml_dumper(_utils.get_omega_conf_dumper())

    def get_yaml_loader() -> Any:
        return fast

    def get_omega_conf_dumper() -> Any:
        return writer

    get_yaml_loader.libyaml = True  # type: ignore[attr-defined]
    _utils.get_yaml_loader = get_yaml_loader
    omegaconf_module.get_omega_conf_dumper = get_omega_conf_dumper  # OmegaConf.to_yaml's


def libyaml_dumper(pure: type) -> type:
    """OmegaConf's dumper class `pure` (its quoting of strings that read as numbers or
    booleans) emitting through libyaml, as PyYAML's own CDumper is put together."""
    from yaml.cyaml import CEmitter
    from yaml.representer import Representer
    from yaml.resolver import Resolver

    class LibyamlDumper(CEmitter, pure):
        def __init__(
            self,
            stream: Any,
            default_style: Any = None,
            default_flow_style: Any = False,
            sort_keys: bool = True,
            **emitting: Any,  # canonical, indent, width, allow_unicode, encoding, ...
        ) -> None:
            CEmitter.__init__(self, stream, **emitting)
            Representer.__init__(
                self,
                default_style=default_style,
                default_flow_style=default_flow_style,
                sort_keys=sort_keys,
            )
            Resolver.__init__(self)

    return LibyamlDumper


def cache_interpolation_parses(size: int = 4096) -> None:
    """Have OmegaConf reuse the parse tree of an interpolation string it parsed before (once
    per process). Errors are not cached: a bad string raises each time, as before."""
    import functools

    from omegaconf import _utils, base, grammar_parser

    if getattr(base.parse, "cache_info", None) is not None:
        return
    cached = functools.lru_cache(maxsize=size)(grammar_parser.parse)
    base.parse = _utils.parse = cached


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
