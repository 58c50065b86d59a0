"""dlrun's Optuna sweeper as a Hydra plugin (`hydra/sweeper=dlrun_optuna`, chosen by
`hparams_search=optuna`). The work is done in dlrun.search; this package only registers it."""
