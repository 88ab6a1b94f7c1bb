"""A JSON schema of the config, generated from conf/ and the signatures of its `_target_`s.

`python -m mnistx.config.schema docs` writes docs/config.schema.json (one `$defs` entry per
config group, the root for train.yaml and `# @package _global_` files such as experiment/) and
docs/schema/<group>.schema.json (a group's files). Editors
with a YAML language server then complete and check conf/ files and a user's own
`experiment=` files (README, Configuration). tests/test_config_schema.py checks that the shipped
file is the one this module generates, that it accepts every file in conf/ and that it
rejects a wrong kind of value.

A key's kinds are its target's annotation where there is one, and the kinds of the values
conf/ gives it; any key may also be an interpolation (`${...}`). Nodes of the groups whose
targets are mnistx's own (model, data, loss, augment) take only their targets' arguments;
optimizer, scheduler, trainer, callbacks and logger nodes may name other classes of their
family, so keys outside the known ones are left to the run's own check (config.targets).
"""

from __future__ import annotations

import inspect
import json
import sys
import types
import typing
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mnistx.config.kinds import ANY_KIND, default_values, kind_of
from mnistx.config.targets import HYDRA_KEYS, NOT_ARGUMENTS

SCHEMA_ID = "https://mnistx.invalid/config.schema.json"
# Groups whose node is one `_target_` node, and whether other keys may appear in it.
TARGET_GROUPS = {
    "data": False,
    "model": False,
    "loss": False,
    "augment": False,
    "optimizer": True,
    "scheduler": True,
    "trainer": True,
}
# Groups whose node maps names to `_target_` nodes (or null: left out).
NAMED_GROUPS = ("callbacks", "logger")
# Groups of plain settings (no `_target_`), unset by default.
SETTINGS_GROUPS = ("tune",)
INTERPOLATION = {"type": "string", "pattern": r"\$\{"}
KINDS = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}
# mnistx.config.kinds's names of kinds (the run's own check) as JSON's.
JSON_KINDS = {
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "str": "string",
    "list": "array",
    "dict": "object",
    "null": "null",
}


def _annotation_kinds(annotation: Any) -> set[str]:
    """JSON kinds of a Python annotation; empty when it says nothing usable (Any, a class)."""
    if isinstance(annotation, str):
        return set()
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        each = [_annotation_kinds(a) for a in typing.get_args(annotation)]
        return set().union(*each) if all(each) else set()
    if origin is typing.Literal:
        return {KINDS.get(type(v), "string") for v in typing.get_args(annotation)}
    if annotation in KINDS:
        return {KINDS[annotation], "integer"} if annotation is float else {KINDS[annotation]}
    if origin in (list, tuple) or annotation in (list, tuple):
        return {"array"}
    if origin is dict or annotation is dict:
        return {"object"}
    return set()


def _known_kinds(key: str) -> set[str]:
    """The kinds the run's own check (config.kinds) accepts for `key`: those of the values
    conf/ gives it, and the several kinds some keys take."""
    kinds = set(ANY_KIND.get(key, set()))
    kinds |= {k for v in default_values().get(key, []) if (k := kind_of(v))}
    return {JSON_KINDS[k] for k in kinds}


def _property(kinds: set[str]) -> dict[str, Any]:
    if not kinds or kinds == {"null"}:  # null by default: its kind is not known here
        return {}
    if "number" in kinds:
        kinds = kinds - {"integer"}
    schema: dict[str, Any] = {"type": sorted(kinds) if len(kinds) > 1 else next(iter(kinds))}
    return schema if "string" in kinds else {"anyOf": [schema, INTERPOLATION]}


def _kinds_in(schema: dict[str, Any]) -> set[str]:
    """The kinds a property's schema allows (beside an interpolation)."""
    if not schema:
        return set()
    first = schema["anyOf"][0] if "anyOf" in schema else schema
    kind = first.get("type", [])
    return set(kind) if isinstance(kind, list) else {kind}


def _signature(target: str) -> dict[str, set[str]]:
    """The keyword arguments a target takes, with the kinds its annotations allow."""
    module, _, name = target.rpartition(".")
    try:
        obj = getattr(__import__(module, fromlist=[name]), name)
        params = inspect.signature(obj).parameters.values()
        hints = typing.get_type_hints(obj.__init__ if inspect.isclass(obj) else obj)
    except Exception:  # a target that cannot be looked at here: its conf/ values only
        return {}
    return {
        p.name: _annotation_kinds(hints.get(p.name, p.annotation))
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self"
    }


def _load(file: Traversable) -> dict[str, Any]:
    node = OmegaConf.to_container(OmegaConf.create(file.read_text()), resolve=False)
    return {str(k): v for k, v in node.items()} if isinstance(node, dict) else {}


def _target_node(nodes: list[dict[str, Any]], section: str, open_keys: bool) -> dict[str, Any]:
    """The schema of a `_target_` node, from the nodes conf/ gives it."""
    kinds: dict[str, set[str]] = {}
    targets = sorted({str(n["_target_"]) for n in nodes if "_target_" in n})
    for target in targets:
        for key, found in _signature(target).items():
            kinds.setdefault(key, set()).update(found)
    for node in nodes:
        for key in node:
            if key not in HYDRA_KEYS and key != "defaults":
                kinds.setdefault(key, set()).update(_known_kinds(f"{section}.{key}"))
    for key in NOT_ARGUMENTS.get(section, ()):
        kinds.setdefault(key, {"boolean"} if key != "interval" else {"string"})
    properties = {key: _property(found) for key, found in sorted(kinds.items())}
    properties["_target_"] = {"type": ["string", "null"]}  # null: no such object (scheduler)
    if targets and not open_keys:
        properties["_target_"] = {"enum": [*targets, None]}
    properties["_partial_"] = {"type": "boolean"}
    properties["defaults"] = {"type": "array"}  # a file's own defaults list
    return {"type": "object", "properties": properties, "additionalProperties": open_keys}


def _group_nodes(group: str) -> list[dict[str, Any]]:
    """The nodes of a config group's files (conf/<group>/*.yaml, as installed)."""
    found = sorted((f for f in (files("mnistx.conf") / group).iterdir()), key=lambda f: f.name)
    return [
        _load(f)
        for f in found
        if f.name.endswith(".yaml") and not f.read_text().startswith("# @package _global_")
    ]


def _named_node(group: str) -> dict[str, Any]:
    members = {
        f"{group}.{name}": m
        for node in _group_nodes(group)
        for name, m in node.items()
        if isinstance(m, dict)
    }
    kinds: dict[str, set[str]] = {}
    for section, member in members.items():
        for key, found in _target_node([member], section, open_keys=True)["properties"].items():
            kinds.setdefault(key, set()).update(_kinds_in(found))
    properties = {key: _property(found) for key, found in sorted(kinds.items())}
    properties |= {"_target_": {"type": "string"}, "_partial_": {"type": "boolean"}}
    member = {"type": "object", "properties": properties, "additionalProperties": True}
    return {
        "type": ["object", "null"],
        "properties": {"defaults": {"type": "array"}},  # a file's own defaults list
        "additionalProperties": {"anyOf": [member, {"type": "null"}]},
    }


def _settings_node(group: str) -> dict[str, Any]:
    """A group of plain settings: the keys its files have, of the kinds they give them."""
    keys = {str(k) for node in _group_nodes(group) for k in node if k != "defaults"}
    properties = {k: _property(_known_kinds(f"{group}.{k}")) for k in sorted(keys)}
    properties["defaults"] = {"type": "array"}
    return {"type": ["object", "null"], "properties": properties, "additionalProperties": False}


def config_schema() -> dict[str, Any]:
    """The JSON schema (draft 2020-12) of mnistx's config, from conf/ as installed."""
    defs: dict[str, Any] = {
        group: _target_node(_group_nodes(group), group, open_keys)
        for group, open_keys in TARGET_GROUPS.items()
    }
    defs |= {group: _named_node(group) for group in NAMED_GROUPS}
    defs |= {group: _settings_node(group) for group in SETTINGS_GROUPS}
    root = _load(files("mnistx.conf") / "train.yaml")
    properties: dict[str, Any] = {
        key: _property(_known_kinds(key)) for key in root if key not in ("defaults", "hydra")
    }
    properties |= {group: {"$ref": f"#/$defs/{group}"} for group in defs}
    properties["defaults"] = {"type": "array"}
    properties["hydra"] = {"type": "object"}  # Hydra's own settings: Hydra checks them
    # A search's own helper values (hparams_search=optuna: search.width), read by
    # interpolations only.
    properties["search"] = {"type": "object"}
    properties["slurm"] = {
        "type": "object",
        "properties": {k: {"type": ["string", "null"]} for k in root["slurm"]},
        "additionalProperties": False,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "mnistx config (conf/train.yaml and the files of its config groups)",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "$defs": defs,
    }


def _text(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def schema_files() -> dict[str, str]:
    """The files `make schema` writes under docs/: the config's schema, and one per config
    group pointing into it (for editors: conf/model/*.yaml -> schema/model.schema.json)."""
    found = {"config.schema.json": _text(config_schema())}
    for group in (*TARGET_GROUPS, *NAMED_GROUPS, *SETTINGS_GROUPS):
        found[f"schema/{group}.schema.json"] = _text(
            {
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": f"mnistx config group {group} (conf/{group}/*.yaml)",
                "$ref": f"../config.schema.json#/$defs/{group}",
            }
        )
    return found


def main(argv: list[str] | None = None) -> int:
    """Write the schema files into the folder given (default docs/)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[0] if args else "docs")
    for name, text in schema_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
        print(f"wrote {root / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
