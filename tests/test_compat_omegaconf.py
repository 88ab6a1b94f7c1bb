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
