"""The registry: built-ins by exact name, plugin code by module, files by built-ins only."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from dlrun import registry
from dlrun.errors import ConfigError
from tests.conftest import REPO, dlrun_env


@pytest.fixture
def fresh_registry(monkeypatch, tmp_path):
    """No plugins loaded; plugin modules written to tmp_path are importable."""
    for name in ("_PLUGINS", "_REGISTERED", "_OBJECTS"):
        monkeypatch.setattr(registry, name, {})
    monkeypatch.setattr(registry, "_ENTRY_POINTS", {})
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _plugin(folder: Path, name: str) -> str:
    (folder / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import os
            from pathlib import Path

            import dlrun


            class Net:
                def __init__(self, in_features: int, num_classes: int, width: int = 8) -> None:
                    self.shape = (in_features, num_classes, width)


            @dlrun.register("model", "NAME_net")
            class Registered(Net):
                pass


            def _private():
                return None
            """
        ).replace("NAME", name)
    )
    return name


def test_every_builtin_is_a_class_or_function_that_lives_where_it_is_named():
    for target in registry.BUILTIN_TARGETS | set(registry.BUILTINS["task"]):
        obj = registry.locate(target)
        assert inspect.isclass(obj) or inspect.isfunction(obj), target
        assert (obj.__module__ + ".").startswith(target.split(".")[0] + "."), target


def test_every_target_in_conf_is_a_registered_builtin():
    targets = {
        line.split(":", 1)[1].split("#")[0].strip()
        for yaml in (REPO / "conf").rglob("*.yaml")
        for line in yaml.read_text().splitlines()
        if line.strip().startswith("_target_:")
    }
    assert targets and targets <= registry.BUILTIN_TARGETS, targets - registry.BUILTIN_TARGETS


def test_the_registry_and_the_cli_import_no_torch():
    code = "import sys, dlrun.cli, dlrun.registry; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], env=dlrun_env(), capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "target",
    [
        "os.system",
        "builtins.eval",
        "pathlib.Path.write_text",
        "torch.save",
        "torch.hub.load",
        "torch.utils.cpp_extension.load",
        "torchvision.datasets.utils.download_url",
        "torchvision.datasets.utils.extract_archive",
        "torch.nn.modules.module.torch.load",
        "torch.nn.Module.__subclasses__",
        "dlrun.checkpoint.save_atomic",
        "dlrun.checkpoint.os.system",
        "sklearn.datasets.make_moons",
        "torch.nn.Linear",
        "torch.optim.LBFGS",
        "",
        None,
        3,
        ["dlrun.models.mlp.MLP"],
    ],
)
def test_what_is_not_registered_is_refused(fresh_registry, target):
    with pytest.raises(ConfigError, match="is not allowed"):
        registry.check(target, "model")


FORBIDDEN = {"_target_": "pathlib.Path.touch", "_args_": ["/tmp/never"]}


@pytest.mark.parametrize(
    "config",
    [
        {"model": {"_target_": "dlrun.models.mlp.MLP", "act": FORBIDDEN}},
        {"model": {"_target_": "dlrun.models.mlp.MLP", "hydra": FORBIDDEN}},
        {"hydra": {"callbacks": {"x": FORBIDDEN}}},
        {"loss": {"_target_": "torch.nn.MSELoss", "_args_": [FORBIDDEN]}},
        {"loss": {"_target_": "torch.nn.MSELoss", "_recursive_": False, "x": [[FORBIDDEN]]}},
        {"optimizer": {**FORBIDDEN, "_partial_": True}},
        {"loss": {"_target_": "torch.nn.MSELoss", "_convert_": "all", "w": FORBIDDEN}},
        {"loss": {"_target_": "torch.nn.MSELoss", "w": "${oc.create:{_target_: os.system}}"}},
        {"loss": {"_target_": "${oc.env:NO_SUCH_VARIABLE_HERE,os.system}"}},
    ],
)
def test_a_target_is_found_at_any_depth_under_any_key(fresh_registry, config):
    with pytest.raises(ConfigError, match="is not allowed"):
        registry.check_config(OmegaConf.create(config))


def test_plugin_code_is_allowed_but_not_what_the_plugin_imported(fresh_registry):
    name = _plugin(fresh_registry, "plug_a")
    with pytest.raises(ConfigError, match="is not allowed"):
        registry.check(f"{name}.Net", "model")  # not listed: not trusted
    registry.load_plugins([name], "plugins=")
    registry.check(f"{name}.Net", "model")
    registry.check(f"{name}.Registered", "model")
    for alias in (f"{name}.os.system", f"{name}.Path", f"{name}.Path.write_text"):
        with pytest.raises(ConfigError, match="not code of plugin|not a class or function of"):
            registry.check(alias, "model")
    with pytest.raises(ConfigError, match="is not allowed"):
        registry.check(f"{name}._private", "model")
    with pytest.raises(ConfigError, match="is not a class or function of plugin"):
        registry.check(f"{name}.Nett", "model")


def test_a_file_may_name_plugin_code_only_of_plugins_the_command_lists(fresh_registry):
    name = _plugin(fresh_registry, "plug_b")
    registry.load_plugins([name], "entry point of plug-b")  # installed: trusted when typed
    registry.check(f"{name}.Net", "model")
    with pytest.raises(ConfigError, match=rf"pass its plugin yourself \(plugins=\[{name}\]\)"):
        registry.check(f"{name}.Net", "model", from_file="x.pt")
    registry.check(f"{name}.Net", "model", from_file="x.pt", typed_plugins=[name])
    registry.check("dlrun.models.mlp.MLP", "model", from_file="x.pt")


def test_a_registered_short_name_is_a_config_option(fresh_registry, compose):
    name = _plugin(fresh_registry, "plug_c")
    registry.load_plugins([name], "plugins=")
    assert registry.registered("model") == {f"{name}_net": f"{name}.Registered"}
    cfg = compose(f"model={name}_net", "model.width=16")
    assert cfg.model == {"_target_": f"{name}.Registered", "width": 16}


def test_register_refuses_an_unknown_group_and_a_local_class(fresh_registry):
    with pytest.raises(ValueError, match="unknown group"):
        registry.register("modle", "x")

    class Local:
        pass

    with pytest.raises(ValueError, match="module level"):
        registry.register("model", "local")(Local)


def test_a_plugin_that_cannot_be_imported_is_one_line(fresh_registry):
    with pytest.raises(ConfigError, match="plugin no_such_plugin_mod .* cannot be imported"):
        registry.load_plugins(["no_such_plugin_mod"], "plugins=")
    with pytest.raises(ConfigError, match="is not a module name"):
        registry.load_plugins(["os; rm"], "plugins=")


def test_the_command_lines_plugins_are_read_before_hydra_composes():
    from dlrun.cli import argv_plugins

    args = ["plugins=[a,b.c]", "model=x", "+plugins=d", "plugins=[e],[f]", "plugins=[broken"]
    assert argv_plugins(args) == ["a", "b.c", "d", "e", "f"]


def test_dlrun_list_shows_builtins_and_a_plugins_short_names(fresh_registry):
    from dlrun.help import render_registry

    name = _plugin(fresh_registry, "plug_d")
    shown = render_registry([name])
    assert "dlrun.models.mlp.MLP" in shown and "torch.optim.AdamW" in shown
    assert f"{name} (plugins=)" in shown
    assert f"model {name}_net: {name}.Registered  (model={name}_net)" in shown
