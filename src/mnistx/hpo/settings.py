"""The `hydra.sweeper.*` settings of an Optuna search, checked and turned into Optuna's
objects: the objectives and their directions, the sampler and the pruner, by name."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from mnistx.errors import UserError

SAMPLERS = ("tpe", "random", "cmaes", "gp", "qmc", "nsgaii")
PRUNERS = ("median", "hyperband", "successive_halving", "none")
# Values a trial can be judged by: numbers every finished run writes to metrics.json.
OBJECTIVES = (
    "val/acc_best",
    "test/acc",
    "test/loss",
    "val/loss",
    "val/acc",
    "train/loss",
    "train/acc",
    "params",
    "train_seconds",
    "seconds_per_epoch",
)


def as_list(value: Any) -> list[Any]:
    if OmegaConf.is_list(value) or isinstance(value, list | tuple):
        return list(value)
    return [value]


def objectives(sweeper: DictConfig) -> list[str]:
    return [str(o) for o in as_list(sweeper.objective)]


def directions(sweeper: DictConfig) -> list[str]:
    return [str(d) for d in as_list(sweeper.direction)]


def check_settings(sweeper: DictConfig) -> None:
    """Every hydra.sweeper.* value an Optuna search reads, before anything is run."""
    names = objectives(sweeper)
    ways = directions(sweeper)
    for name in names:
        if name not in OBJECTIVES:
            raise UserError(
                f"hydra.sweeper.objective={name} is not a value a run reports. Choose from "
                f"{', '.join(OBJECTIVES)} (a list for a multi-objective search, e.g. "
                "hydra.sweeper.objective=[val/acc_best,params])."
            )
    for way in ways:
        if way not in ("maximize", "minimize"):
            raise UserError(
                f"hydra.sweeper.direction={way} must be maximize or minimize (a list, one per "
                "objective, for a multi-objective search)."
            )
    if len(ways) != len(names):
        raise UserError(
            f"hydra.sweeper.direction has {len(ways)} value(s) for {len(names)} objective(s) "
            f"({', '.join(names)}): give one direction per objective, e.g. "
            "hydra.sweeper.direction=[maximize,minimize]."
        )
    if str(sweeper.sampler) not in SAMPLERS:
        raise UserError(
            f"hydra.sweeper.sampler={sweeper.sampler} is not a sampler mnistx knows. Choose "
            f"one of {', '.join(SAMPLERS)} (hydra.sweeper.sampler_args passes its options)."
        )
    if str(sweeper.pruner) not in PRUNERS:
        raise UserError(
            f"hydra.sweeper.pruner={sweeper.pruner} is not a pruner mnistx knows. Choose one "
            f"of {', '.join(PRUNERS)} (hydra.sweeper.pruner_args passes its options)."
        )
    if len(names) > 1 and str(sweeper.pruner) != "none":
        raise UserError(
            f"hydra.sweeper.pruner={sweeper.pruner} cannot judge a multi-objective search "
            f"({', '.join(names)}): Optuna prunes single-objective studies only. Add "
            "hydra.sweeper.pruner=none."
        )
    if len(names) > 1 and str(sweeper.sampler) == "cmaes":
        raise UserError(
            "hydra.sweeper.sampler=cmaes optimizes one objective; a multi-objective search "
            "needs tpe, nsgaii, gp or random."
        )
    for key in ("n_trials", "n_jobs"):
        value = sweeper.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < (key == "n_jobs"):
            raise UserError(
                f"hydra.sweeper.{key}={value} must be a whole number "
                f"{'>= 1' if key == 'n_jobs' else '>= 0'}."
            )
    seed = sweeper.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
        raise UserError(
            f"hydra.sweeper.seed={seed} must be a whole number (the sampler's seed; null for "
            "an unseeded search)."
        )
    for key in ("sampler_args", "pruner_args"):
        if sweeper.get(key) is not None and not OmegaConf.is_dict(sweeper.get(key)):
            raise UserError(
                f"hydra.sweeper.{key} must be a mapping of options, e.g. "
                f"hydra.sweeper.{key}={{n_startup_trials:5}}."
            )
    if not sweeper.get("storage"):
        raise UserError(
            "hydra.sweeper.storage is empty: give an Optuna storage URL, e.g. "
            "sqlite:///outputs/optuna/mnistx/optuna.db or postgresql://user:pw@host/db."
        )


def _options(sweeper: DictConfig, key: str) -> dict[str, Any]:
    options = sweeper.get(key)
    plain = OmegaConf.to_container(options, resolve=True) if options else {}
    return {str(k): v for k, v in plain.items()} if isinstance(plain, dict) else {}


def make_sampler(sweeper: DictConfig, seed: int | None) -> Any:
    """The named sampler, seeded with `seed` (each trial's own, see Search)."""
    import optuna

    name = str(sweeper.sampler)
    classes = {
        "tpe": optuna.samplers.TPESampler,
        "random": optuna.samplers.RandomSampler,
        "cmaes": optuna.samplers.CmaEsSampler,
        "gp": optuna.samplers.GPSampler,
        "qmc": optuna.samplers.QMCSampler,
        "nsgaii": optuna.samplers.NSGAIISampler,
    }
    needs = {"cmaes": "cmaes", "gp": "scipy"}.get(name)
    if needs:
        try:
            __import__(needs)
        except ImportError:
            raise UserError(
                f"hydra.sweeper.sampler={name} needs the `{needs}` package, which is not "
                "installed: pip install 'mnistx[samplers]'."
            ) from None
    # TPE: trials running in parallel are taken as "constant liars" (their worst value), so
    # a batch of n_jobs spreads out (Optuna 5's default; Optuna 4's was off).
    defaults = {"tpe": {"constant_liar": True}}.get(name, {})
    try:
        return classes[name](seed=seed, **{**defaults, **_options(sweeper, "sampler_args")})
    except TypeError as e:
        raise UserError(
            f"hydra.sweeper.sampler_args do not fit the {name} sampler: {e}. See "
            f"optuna.samplers.{classes[name].__name__} for its options."
        ) from None


def make_pruner(sweeper: DictConfig, max_epochs: int | None) -> Any:
    """The named pruner; its defaults fit mnistx's few-epoch trials (README, Optuna)."""
    import optuna

    name = str(sweeper.pruner)
    defaults: dict[str, dict[str, Any]] = {
        # The median of 4 finished trials is the bar from the first epoch on.
        "median": {"n_startup_trials": 4, "n_warmup_steps": 0},
        "hyperband": {
            "min_resource": 1,
            "max_resource": max_epochs or "auto",
            "reduction_factor": 3,
        },
        "successive_halving": {"min_resource": 1, "reduction_factor": 3},
    }
    classes: dict[str, Any] = {
        "median": optuna.pruners.MedianPruner,
        "hyperband": optuna.pruners.HyperbandPruner,
        "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    }
    if name == "none":
        return optuna.pruners.NopPruner()
    try:
        return classes[name](**{**defaults[name], **_options(sweeper, "pruner_args")})
    except (TypeError, ValueError) as e:
        raise UserError(
            f"hydra.sweeper.pruner_args do not fit the {name} pruner: {e}. See "
            f"optuna.pruners.{classes[name].__name__} for its options."
        ) from None
