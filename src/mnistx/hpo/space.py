"""The search space: `hydra.sweeper.params` and the command line's sweep syntax, read into
Optuna distributions (`choice(...)`, `interval(...)`, `range(...)`, `tag(log, ...)`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig

from mnistx.errors import UserError


def distribution(key: str, value: Any) -> Any:
    """The Optuna distribution of a parsed sweep override: choice(...) or a, b, c ->
    categorical; interval(lo, hi) -> float (int when both ends are); range(lo, hi, step) ->
    stepped int or float; tag(log, ...) -> log scale."""
    from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    log_scale = "log" in getattr(value, "tags", set())
    if isinstance(value, ChoiceSweep):
        return CategoricalDistribution(list(value.list))  # type: ignore[arg-type]
    if isinstance(value, IntervalSweep):
        lo, hi = value.start, value.end
        assert lo is not None and hi is not None  # Hydra's parser requires both ends
        if isinstance(lo, int) and isinstance(hi, int):
            return IntDistribution(lo, hi, log=log_scale)
        return FloatDistribution(float(lo), float(hi), log=log_scale)
    if isinstance(value, RangeSweep):
        step = value.step or 1
        assert value.start is not None and value.stop is not None
        values = list(_range_values(value.start, value.stop, step))
        if not values:
            raise UserError(f"{key}: range({value.start}, {value.stop}, {step}) is empty.")
        if all(isinstance(v, int) for v in (value.start, value.stop, step)):
            return IntDistribution(
                int(values[0]), int(values[-1]), step=int(step), log=log_scale and step == 1
            )
        return FloatDistribution(float(values[0]), float(values[-1]), step=float(step))
    raise UserError(
        f"{key}={value} is not a search range Optuna can sample. Use choice(a,b,...), "
        "interval(lo,hi), range(lo,hi,step), and tag(log, interval(lo,hi)) for a log scale."
    )


def _range_values(start: float, stop: float, step: float) -> Sequence[float]:
    values, v = [], start
    while (step > 0 and v < stop) or (step < 0 and v > stop):
        values.append(v)
        v += step
    return values


def search_space(sweeper: DictConfig, arguments: Sequence[str]) -> tuple[dict, list[str]]:
    """The searched keys (hydra.sweeper.params, and sweeps on the command line) as Optuna
    distributions, and the other command-line overrides, which every trial gets: a key of
    the search space set to one value there (data.batch_size=64) is no longer searched."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = sweeper.get("params") or {}
    words = [f"{k}={v}" for k, v in params.items()]
    parser = OverridesParser.create()
    space: dict[str, Any] = {}
    fixed: list[str] = []
    from hydra.errors import HydraException

    try:
        parsed = parser.parse_overrides([*words, *arguments])
    except HydraException as e:
        detail = str(e).strip().splitlines()[0]
        raise UserError(
            f"The search space cannot be read: {detail}. Each entry of hydra.sweeper.params "
            "is choice(a,b,...), interval(lo,hi), range(lo,hi,step) or tag(log, interval(lo,"
            "hi)), e.g. hydra.sweeper.params.optimizer.lr='tag(log, interval(1e-4,1e-1))'."
        ) from None
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            space[key.lstrip("+~")] = distribution(key, override.value())
        else:  # a constant, every trial's; on the command line, it pins a searched key
            space.pop(key.lstrip("+~"), None)
            fixed.append(override.input_line or str(override))
    if not space:
        raise UserError(
            "An Optuna search needs something to search: hydra.sweeper.params is empty and the "
            "command line sweeps nothing. Add e.g. 'optimizer.lr=tag(log, interval(1e-4, 1e-1))'"
            " or use hparams_search=optuna's search space."
        )
    return space, fixed


# --- the search -------------------------------------------------------------------------------
