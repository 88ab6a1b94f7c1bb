"""Hyperparameter search with Optuna (hparams_search=optuna): mnistx's own sweeper on
Hydra's launchers, with pruning and studies that several workers share.

    settings   hydra.sweeper.* checked, and the sampler and pruner they name
    study      the stored study: storage, the shared trial budget, dead workers' trials
    search     the sweep: search space, ask -> launch -> tell (OptunaSweeper calls it)
    trial      a trial's job: val/acc to its trial every epoch, stopping when pruned
    results    best.yaml, pareto.yaml
"""
