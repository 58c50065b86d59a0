"""dlrun's hyper-parameter search on Optuna: the search space in Hydra's sweep syntax (space),
the study, sampler and pruner (study), the sweep loop (sweeper) and the per-epoch report a
trial makes so that poor trials stop early (pruning). Only a search imports optuna."""
