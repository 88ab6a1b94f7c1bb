"""The OmegaConf internal mnistx.compat.omegaconf relies on (`omegaconf._utils.
get_yaml_loader`, OmegaConf's YAML loader class): if a release moves or reshapes it, these
fail first; and the libyaml loader built from it reads YAML exactly as OmegaConf's own."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf, _utils

from mnistx.compat.omegaconf import libyaml_loader, use_libyaml

pytestmark = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")

# What OmegaConf reads its own way: floats without a dot, no timestamps, Paths, interpolations.
TRICKY = [
    "a: 1e-3\nb: 1.0e+3\nc: .5\nd: 2024-01-01\ne: ${x.y}\nf: [1, 'a', null, true, ~]\n",
    "g: 0x10\nh: 1_000\ni: .inf\nj: -.inf\nk: 'yes'\nl: yes\nm: 010\nn: '1e-3'\n",
    "p: !!python/object/apply:pathlib.Path [a, b]\n",
    "defaults:\n  - model: mlp\n  - _self_\nq: {r: [1, {s: 2}]}\nt: |\n  two\n  lines\n",
]


def _pure() -> type:
    loader = _utils.get_yaml_loader()
    if getattr(_utils.get_yaml_loader, "libyaml", False):  # use_libyaml() ran in this process
        loader = loader.__mro__[2]  # LibyamlLoader -> CParser -> OmegaConf's own class
    return loader


def test_omegaconfs_loader_is_a_safe_loader_class_with_its_rules():
    pure = _pure()
    assert isinstance(pure, type) and issubclass(pure, yaml.SafeLoader)
    assert "construct_mapping" in vars(pure)  # the duplicate-key check
    assert "tag:yaml.org,2002:timestamp" not in {
        tag for rules in pure.yaml_implicit_resolvers.values() for tag, _ in rules
    }


@pytest.mark.parametrize("text", TRICKY)
def test_libyaml_reads_tricky_documents_as_omegaconf_does(text):
    pure = _pure()
    fast = libyaml_loader(pure)
    read, read_fast = yaml.load(text, Loader=pure), yaml.load(text, Loader=fast)
    assert read_fast == read and repr(read_fast) == repr(read)


def test_libyaml_reads_every_conf_file_as_omegaconf_does():
    pure = _pure()
    fast = libyaml_loader(pure)
    conf = Path(str(files("mnistx.conf")))
    paths = sorted(conf.rglob("*.yaml"))
    assert len(paths) > 40
    for path in paths:
        text = path.read_text()
        assert repr(yaml.load(text, Loader=fast)) == repr(yaml.load(text, Loader=pure)), path


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("a: 1\na: 2\n", "found duplicate key a"),
        ("a: [1,\n", "line 2"),
        ("b: !!python/name:os.system ''\n", "could not determine a constructor"),
    ],
)
def test_libyaml_refuses_what_omegaconf_refuses(text, error):
    fast = libyaml_loader(_pure())
    with pytest.raises(yaml.YAMLError, match=error):
        yaml.load(text, Loader=fast)
    with pytest.raises(yaml.YAMLError):
        yaml.load(text, Loader=_pure())


def test_use_libyaml_makes_omegaconf_load_read_with_it(tmp_path):
    use_libyaml()
    use_libyaml()  # once: the second call keeps the first loader
    loader = _utils.get_yaml_loader()
    assert loader is _utils.get_yaml_loader() and loader.__mro__[1].__name__ == "CParser"
    (tmp_path / "c.yaml").write_text(TRICKY[0])
    cfg = OmegaConf.load(tmp_path / "c.yaml")
    assert cfg.a == 0.001 and cfg.d == "2024-01-01" and OmegaConf.is_interpolation(cfg, "e")
    with pytest.raises(yaml.YAMLError, match="duplicate key"):
        OmegaConf.create("a: 1\na: 2\n")


@pytest.mark.parametrize("text", [*TRICKY, "", "# only a comment\n", "- a\n- 1e-3\n"])
def test_read_yaml_gives_what_omegaconf_load_and_to_container_give(text, tmp_path):
    from mnistx.compat.omegaconf import read_yaml

    path = tmp_path / "c.yaml"
    path.write_text(text)
    assert read_yaml(path) == OmegaConf.to_container(OmegaConf.load(path))


def test_omegaconf_still_parses_interpolations_through_the_patched_names():
    """cache_interpolation_parses replaces `parse` in omegaconf.base and omegaconf._utils:
    those modules must still look it up there when a value is read."""
    import inspect

    from omegaconf import base, grammar_parser

    assert "parse(_get_value(self))" in inspect.getsource(base), (
        "omegaconf no longer parses interpolations through base.parse: "
        "cache_interpolation_parses (compat/omegaconf.py) does nothing; adapt or remove it"
    )
    assert grammar_parser.parse.__module__ == "omegaconf.grammar_parser"


def test_cached_parses_resolve_every_value_as_before():
    """One parse tree per string, reused: values read in any order, nested and string
    interpolations, resolvers with arguments, all resolve as they did uncached."""
    from omegaconf import base, grammar_parser

    from mnistx.compat.omegaconf import cache_interpolation_parses

    cache_interpolation_parses()
    assert base.parse.cache_info() is not None and base.parse is _utils.parse
    text = {
        "a": 3,
        "b": "x",
        "c": "${a}",
        "d": "pre_${b}_${a}_post",
        "e": "${oc.env:MNISTX_NOT_SET_ANYWHERE,${d}}",
        "f": {"g": "${..c}", "h": "${oc.select:b,none}"},
        "i": "${oc.decode:'[1, ${a}]'}",
    }
    expected = {
        "a": 3,
        "b": "x",
        "c": 3,
        "d": "pre_x_3_post",
        "e": "pre_x_3_post",
        "f": {"g": 3, "h": "x"},
        "i": [1, 3],
    }
    for _ in range(3):  # the second and third reads use the cached trees, in another order
        cfg = OmegaConf.create(text)
        assert OmegaConf.to_container(cfg, resolve=True) == expected
        assert [cfg.i, cfg.f.h, cfg.e, cfg.d, cfg.c] == [[1, 3], "x", *["pre_x_3_post"] * 2, 3]
        text = dict(reversed(text.items()))
    before = base.parse.cache_info()
    assert OmegaConf.create({"zz": 1, "y": "${zz}"}).y == 1  # parsed once...
    assert OmegaConf.create({"zz": 2, "y": "${zz}"}).y == 2  # ...then reused for a new value
    after = base.parse.cache_info()
    assert (after.misses, after.hits) == (before.misses + 1, before.hits + 1)
    from omegaconf.errors import GrammarParseError

    with pytest.raises(GrammarParseError):
        grammar_parser.parse("${a")  # the uncached function raises
    for _ in range(2):  # and so does the cached one, each time: errors are not kept
        with pytest.raises(GrammarParseError):
            OmegaConf.create({"bad": "${a"})


# Strings a dumper must quote or escape to read back as the same strings.
AWKWARD = {
    "numbers": ["1e-3", "10", "0x10", "1_000", ".inf", "-.5", "010"],
    "booleans": ["yes", "no", "on", "off", "true", "False", "null", "~", ""],
    "interpolations": ["${a.b}", "pre_${x}_${oc.env:HOME,/tmp}", "${oc.decode:'[1, 2]'}"],
    "text": [
        "a: b",
        "# not a comment",
        " leading space",
        "trailing space ",
        "two\nlines\n",
        "tab\there",
        "quote ' and \" both",
        "unicode: é ü 数字 ✓",
        "x" * 200,
        "a long line with spaces " * 12,
        "- looks like a list",
        "{looks: like a map}",
        "back\\slash",
    ],
    "nested": {"list": [1, 2.5, None, True, "3"], "map": {"k": "v", "1": "one"}},
}


@pytest.mark.parametrize("sort_keys", [False, True])
def test_libyaml_writes_what_reads_back_as_omegaconfs_own_writing_does(sort_keys):
    """Every conf/ file, the composed config with its `hydra` node and awkward strings: what
    OmegaConf.to_yaml now writes with libyaml reads back (by OmegaConf) as the same config
    that its pure-Python writing reads back as."""
    from omegaconf import omegaconf as omegaconf_module

    from mnistx.compat.omegaconf import libyaml_dumper
    from mnistx.runs.compose import compose_config

    use_libyaml()
    assert omegaconf_module.get_omega_conf_dumper().__mro__[1].__name__ == "CEmitter"
    pure = _utils.OmegaConfDumper
    fast = libyaml_dumper(pure)
    conf = Path(str(files("mnistx.conf")))
    documents = [OmegaConf.to_container(OmegaConf.load(p)) for p in sorted(conf.rglob("*.yaml"))]
    composed = compose_config(["output_dir=/unused"], with_hydra=True)
    documents += [OmegaConf.to_container(composed), AWKWARD]
    for data in documents:
        texts = [
            yaml.dump(
                data,
                default_flow_style=False,
                allow_unicode=True,
                sort_keys=sort_keys,
                Dumper=dumper,
            )
            for dumper in (pure, fast)
        ]
        read = [OmegaConf.to_container(OmegaConf.create(t)) for t in texts]
        assert read[1] == read[0] == data
    assert OmegaConf.create(OmegaConf.to_yaml(OmegaConf.create(AWKWARD))) == AWKWARD
    written = OmegaConf.create(OmegaConf.to_yaml(composed))
    assert list(written.keys()) == list(composed.keys())  # in the config's own order
