"""The OmegaConf internal mnistx.compat.omegaconf relies on: a merge resolves the value it
replaces from inside a function named MERGE_FUNCTION."""

from __future__ import annotations

from omegaconf import OmegaConf

from mnistx.compat.omegaconf import resolving_for_a_merge


def test_a_merge_resolving_the_value_it_replaces_is_seen_and_a_plain_read_is_not():
    seen: list[bool] = []

    def probe(value: str) -> str:
        seen.append(resolving_for_a_merge())
        return value

    OmegaConf.register_new_resolver("compat_probe", probe)
    try:
        base = OmegaConf.create({"dir": "${compat_probe:old}"})
        assert base.dir == "old" and seen == [False]
        seen.clear()
        OmegaConf.merge(base, {"dir": {"nested": 1}})  # a node replaces the value
        assert seen and all(seen), "OmegaConf no longer resolves through its merge function"
    finally:
        OmegaConf.clear_resolver("compat_probe")
