"""The Task protocol that the one training loop calls."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from torch import Tensor, nn

from dlrun.data.bundle import Batch, DataBundle
from dlrun.errors import ConfigError
from dlrun.picture import Picture


@dataclass
class Step:
    """One optimizer's share of a training step: the loop runs backward and steps `optimizer`."""

    optimizer: str
    loss: Tensor
    logs: dict[str, Tensor] = field(
        default_factory=dict
    )  # extra per-step values, averaged per epoch


class Task:
    """Base class: one model, one optimizer named "model", loss from the config."""

    name: ClassVar[str]
    default_loss: ClassVar[str]  # the loss option `loss=auto` resolves to
    allowed_losses: ClassVar[tuple[str, ...]]  # loss class names this task can train with
    default_monitor: ClassVar[str]
    metric_names: ClassVar[tuple[str, ...]]
    # Each metric's direction of improvement, "max" or "min": it picks the best epoch and drives
    # early stopping. A task of your own declares its own (a metric without one is refused).
    metric_modes: ClassVar[dict[str, str]] = {}
    needs_images: ClassVar[bool] = False  # data that can be served as images should be (digits)
    # A generator: mode=predict draws `samples` from noise; no per-input answer, no test CSV.
    samples_from_noise: ClassVar[bool] = False
    # An export of a model trained on a table takes the raw columns, preprocessing in the graph.
    exports_raw_columns: ClassVar[bool] = False

    def __init__(self, model: nn.Module, loss_fn: nn.Module, data: DataBundle) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.data = data

    # --- set-up -------------------------------------------------------------------------
    @classmethod
    def check_loss(cls, loss_fn: nn.Module, data: DataBundle) -> None:
        """Refuse a loss that cannot fit this task, before any training."""
        loss_name = type(loss_fn).__name__
        if loss_name not in cls.allowed_losses:
            article = "an" if cls.name[0] in "aeiou" else "a"
            raise ConfigError(
                f"loss {loss_name} cannot train {article} {cls.name} task: use "
                f"loss={cls.default_loss} (or loss=auto)"
            )

    @classmethod
    def check_data(cls, data: DataBundle) -> None:
        """Refuse data this task cannot learn from, before the model is built."""

    @classmethod
    def output_facts(cls, loss_fn: nn.Module, data: DataBundle) -> dict[str, Any]:
        """Model constructor values that depend on the task (e.g. out_features)."""
        return {}

    @classmethod
    def class_weight_kwargs(cls, weights: Any, loss_cls: type, data: DataBundle) -> dict[str, Any]:
        """The loss constructor's arguments for `loss.class_weights` (classification only)."""
        raise ConfigError(
            f"loss.class_weights is for classification, not a {cls.name} task: remove it"
        )

    def param_groups(self) -> dict[str, Iterable[nn.Parameter]]:
        """Optimizer name -> the parameters it updates."""
        return {"model": self.model.parameters()}

    def compiled_modules(self) -> list[nn.Module]:
        """The modules this task calls directly (what trainer.compile compiles)."""
        return [self.model]

    # --- training and evaluation ----------------------------------------------------------
    def forward(self, batch: Batch) -> Tensor:
        """Call the model on every batch entry except the target (e.g. x, and lengths for text)."""
        return self.model(**{k: v for k, v in batch.items() if k != "y"})

    def train_step(self, batch: Batch) -> Iterator[Step]:
        """Yield one Step per optimizer, in order; the loop steps each before asking for the
        next."""
        raise NotImplementedError

    def evaluate(self, batches: Iterable[Batch]) -> dict[str, Any]:
        """Metrics over a whole split (called under no_grad with the model in eval mode)."""
        raise NotImplementedError

    def _model_metric_modes(self) -> dict[str, str]:
        """A model's own metrics and their directions: `dlrun_metric_modes = {"name": "max"}`
        on its class, computed by its `dlrun_metrics(outputs, targets) -> {name: value}`."""
        model = getattr(self.model, "module", self.model)  # under DDP, the wrapped model
        return {
            str(k): str(v) for k, v in (getattr(model, "dlrun_metric_modes", None) or {}).items()
        }

    def model_metrics(self, outputs: Tensor, targets: Tensor) -> dict[str, float]:
        """The model's own metrics over a whole split (see _model_metric_modes), if it has any.
        `outputs` is what the task scores with (classification: class probabilities)."""
        model = getattr(self.model, "module", self.model)
        compute = getattr(model, "dlrun_metrics", None)
        if compute is None:
            return {}
        return {str(k): float(v) for k, v in compute(outputs, targets).items()}

    def monitor_mode(self, metric: str, key: str = "trainer.monitor") -> str:
        """ "max" or "min" for one of this task's metrics; `key` names the setting in errors."""
        own = self._model_metric_modes()
        names = [*self.metric_names, *(n for n in own if n not in self.metric_names)]
        if metric not in names:
            raise ConfigError(
                f"{key}={metric!r} is not a {self.name} metric: choose one of {names}"
            )
        # a model's own metric carries its direction; the task declares the rest
        mode = own.get(metric) or self.metric_modes.get(metric)
        if mode not in ("max", "min"):
            raise ConfigError(
                f"{key}={metric!r}: the {self.name} task does not say whether higher or lower is "
                f'better: its class declares metric_modes = {{"{metric}": "max" or "min"}}'
            )
        return mode

    # --- use: what prediction and export ask of the task ------------------------------------
    def answers(self, batch: Batch) -> dict[str, Tensor]:
        """What the model says about a batch of inputs (no targets in it), as named tensors:
        `probabilities` and `index` (classes), `values` (regression, in the model's own units),
        `images` and `errors` (reconstructions). Called under no_grad, model in eval mode."""
        raise ConfigError(f"the {self.name} task does not predict per input (it has no answers())")

    def exported_module(self, model: nn.Module) -> tuple[nn.Module, str]:
        """The module an export saves, given the bare model, and what it takes: "inputs" (the
        preprocessed inputs), "images" or "noise"."""
        return model, "inputs"

    # --- pictures: the run calls these in eval mode without gradients, writes what they return
    def epoch_pictures(self) -> dict[str, Picture]:
        """Pictures after each epoch by name (a GAN's "samples"): the run writes
        <name>/epoch_NNN.png and shows the same pictures to loggers that show images."""
        return {}

    def final_pictures(self, test_batches: Iterable[Batch]) -> dict[str, Picture]:
        """Pictures of the best weights at the end of a run by name: the run writes <name>.png."""
        return {}
