"""Every documented way into dlrun, run as a real process: where a process is the point (the
console script's exit path, launchers' worker processes, a fresh interpreter's global state).

Here: the `dlrun` command and `python -m dlrun`, a basic-launcher sweep's exit (test_command.py;
joblib and submitit-local sweeps run as processes in tests/smoke/test_launchers.py),
`dlrun.train` with plugins and a config dir and `dlrun.load(run, plugins=...)` (test_api.py),
mode=eval|predict|export with plugins (test_modes.py). Elsewhere, not repeated here: torchrun
(tests/smoke/test_ddp.py), Optuna (tests/smoke/test_optuna.py), an installed plugin's entry point
(tests/smoke/test_plugins.py), a wheel outside the repository (tests/smoke/test_packaging.py).
"""
