"""The JSON schema of the config (docs/config.schema.json): shipped as generated, accepting
every file in conf/, rejecting a wrong kind of value or a misspelt key."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest
from omegaconf import OmegaConf

from mnistx.config.schema import (
    NAMED_GROUPS,
    SETTINGS_GROUPS,
    TARGET_GROUPS,
    config_schema,
    schema_files,
)

DOCS = Path(__file__).resolve().parents[1] / "docs"


@cache
def _validator(group: str | None = None) -> jsonschema.protocols.Validator:
    schema = config_schema()
    if group is not None:
        schema = {**schema["$defs"][group], "$defs": schema["$defs"]}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def _conf_files() -> list[tuple[str, str]]:
    """(file, the schema it is checked against: a group's, or the root's) for conf/'s files;
    hydra/ holds Hydra's own settings, which Hydra checks."""
    conf = files("mnistx.conf")
    found = [("train.yaml", "")]
    for folder in sorted((f for f in conf.iterdir() if f.is_dir()), key=lambda f: f.name):
        if folder.name in ("hydra", "__pycache__"):
            continue
        for f in sorted(folder.iterdir(), key=lambda f: f.name):
            if f.name.endswith(".yaml"):
                text = f.read_text()
                group = "" if text.startswith("# @package _global_") else folder.name
                found.append((f"{folder.name}/{f.name}", group))
    return found


def test_the_shipped_schema_is_the_generated_one():
    for name, text in schema_files().items():
        assert (DOCS / name).read_text() == text, f"docs/{name} is out of date: make schema"


def test_a_groups_schema_file_checks_that_groups_files(tmp_path):
    """docs/schema/model.schema.json, as an editor resolves it (a $ref into the main file)."""
    from referencing import Registry, Resource

    main = json.loads((DOCS / "config.schema.json").read_text())
    group = json.loads((DOCS / "schema" / "model.schema.json").read_text())
    registry = Registry().with_resource(
        "https://mnistx.invalid/config.schema.json", Resource.from_contents(main)
    )
    group["$id"] = "https://mnistx.invalid/schema/model.schema.json"
    validator = jsonschema.Draft202012Validator(group, registry=registry)
    assert list(validator.iter_errors({"_target_": "mnistx.models.networks.CNN"})) == []
    assert list(validator.iter_errors({"dropout": "lots"}))


@pytest.mark.parametrize(("name", "group"), _conf_files())
def test_every_conf_file_is_accepted(name, group):
    known = ("", *TARGET_GROUPS, *NAMED_GROUPS, *SETTINGS_GROUPS)
    assert group in known, f"{name}: a group the schema lacks"
    node = OmegaConf.to_container(
        OmegaConf.create((files("mnistx.conf") / name).read_text()), resolve=False
    )
    errors = [e.message for e in _validator(group or None).iter_errors(node)]
    assert errors == []


@pytest.mark.parametrize(
    "wrong",
    [
        {"trainer": {"max_epochs": "ten"}},
        {"model": {"dropout": True}},
        {"model": {"hiden_sizes": [128]}},  # misspelt
        {"data": {"batch_size": [128]}},
        {"optimizer": {"lr": "fast"}},
        {"seed": 1.5},
        {"callbacks": {"model_checkpoint": {"save_top_k": "all"}}},
        {"epochs": 3},  # not a key of the config
        {"tune": {"num_training": "many"}},
        {"tune": {"min_lr": 1e-6, "maxlr": 1.0}},  # misspelt
    ],
)
def test_a_wrong_kind_or_an_unknown_key_is_rejected(wrong):
    assert list(_validator().iter_errors(wrong)), json.dumps(wrong)


def test_a_users_experiment_file_with_interpolations_is_accepted():
    experiment = {
        "defaults": [{"override /model": "cnn"}],
        "model": {"channels": [16, 32], "dropout": 0.1},
        "optimizer": {"lr": 3e-4, "weight_decay": "${oc.env:WD,0.0}"},
        "trainer": {"max_epochs": 5, "devices": "auto"},
        "tags": ["cnn"],
        "seed": 7,
    }
    assert list(_validator().iter_errors(experiment)) == []
