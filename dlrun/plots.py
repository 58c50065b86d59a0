"""plots/*.png at the end of a run (and on interrupt), from the epoch history and test results.

loss.png (train and validation losses), val_<monitor>.png (the monitored validation metric, best
epoch marked), lr.png; classification: confusion_matrix.png (test split, class names on the
axes); regression: predicted_vs_true.png (test split). matplotlib is imported here only, when
plotting, through its object API with the Agg canvas: no pyplot state, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from dlrun.artifacts import RunArtifacts

_ANNOTATE_MAX = 20  # classes up to which confusion-matrix cells show their counts
_LABELS_MAX = 50  # classes up to which every class name is written on the axes
_SCATTER_MAX = 5000  # points drawn in predicted-vs-true (a fixed, evenly spaced subsample)


def _figure(width: float = 6.0, height: float = 4.0, fit: bool = True) -> Any:
    """A figure on the Agg canvas. `fit` lays it out to its labels (constrained layout draws it
    twice: ~40% of a plot's time); curves use fixed margins that fit their short labels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained" if fit else None)
    if not fit:
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.12, top=0.92)
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    rows = [r for r in history if isinstance(r.get(key), int | float)]
    return [int(r["epoch"]) for r in rows], [float(r[key]) for r in rows]


def _curves(
    history: Sequence[dict[str, Any]],
    keys: list[str],
    title: str,
    ylabel: str,
    best: int | None = None,
) -> bytes:
    fig = _figure(fit=False)
    ax = fig.add_subplot()
    for key in keys:
        epochs, values = _series(history, key)
        ax.plot(epochs, values, marker="o", markersize=3, label=key)
    if best is not None:
        ax.axvline(best, color="grey", linestyle="--", linewidth=1, label=f"best epoch {best}")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def confusion_png(matrix: list[list[int]], class_names: list[str] | None) -> bytes:
    """Rows are true classes, columns predicted (the layout of metrics.json)."""
    import numpy as np

    cm = np.asarray(matrix)
    n = len(cm)
    names = class_names if class_names and len(class_names) == n else [str(i) for i in range(n)]
    side = min(4.0 + 0.35 * n, 16.0)
    fig = _figure(side, side)
    ax = fig.add_subplot()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8)
    if n <= _LABELS_MAX:
        ax.set_xticks(range(n), names, rotation=90 if n > 10 else 0)
        ax.set_yticks(range(n), names)
    if n <= _ANNOTATE_MAX:
        for (i, j), count in np.ndenumerate(cm):
            dark = count > cm.max() / 2
            ax.text(j, i, str(count), ha="center", va="center", color="white" if dark else "black")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set(
        title=f"test confusion matrix (accuracy {accuracy:.3f})", xlabel="predicted", ylabel="true"
    )
    return _png(fig)


def scatter_png(pred: Any, target: Any) -> bytes:
    """Predicted against true values of every target column, with the identity line."""
    import numpy as np

    pred = np.asarray(pred, dtype=float).reshape(len(pred), -1)
    target = np.asarray(target, dtype=float).reshape(len(target), -1)
    keep = np.linspace(0, len(pred) - 1, min(len(pred), _SCATTER_MAX)).astype(int)
    fig = _figure(5.0, 5.0)
    ax = fig.add_subplot()
    for col in range(pred.shape[1]):
        label = f"target {col}" if pred.shape[1] > 1 else None
        ax.scatter(target[keep, col], pred[keep, col], s=8, alpha=0.5, label=label)
    low, high = float(min(target.min(), pred.min())), float(max(target.max(), pred.max()))
    ax.plot([low, high], [low, high], color="black", linewidth=1, label="predicted = true")
    ax.set(title="test: predicted vs true", xlabel="true", ylabel="predicted")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def write_plots(
    artifacts: RunArtifacts,
    history: Sequence[dict[str, Any]],
    monitor: str,
    best_epoch: int | None,
    test: dict[str, Any] | None = None,
    class_names: list[str] | None = None,
    predictions: Any = None,
) -> list[str]:
    """Write every plot the run has data for; returns the written names (plots/<name>)."""
    written: list[str] = []

    def put(name: str, png: bytes) -> None:
        artifacts.write_plot(name, png)
        written.append(name)

    if history:
        columns = list(dict.fromkeys(k for row in history for k in row))
        losses = [k for k in columns if k.startswith(("train_", "val_")) and k.endswith("loss")]
        put("loss.png", _curves(history, losses, "loss per epoch", "loss"))
        metric = f"val_{monitor}"
        put(
            f"{metric}.png",
            _curves(history, [metric], f"{metric} per epoch", monitor, best=best_epoch),
        )
        put("lr.png", _curves(history, ["lr"], "learning rate (end of each epoch)", "lr"))
    if test and "confusion_matrix" in test:
        put("confusion_matrix.png", confusion_png(test["confusion_matrix"], class_names))
    elif test and predictions is not None:
        put("predicted_vs_true.png", scatter_png(*predictions))
    return written
