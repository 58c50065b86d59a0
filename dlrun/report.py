"""What a run says about itself on the console: a model line at the start, a table at the end."""

from __future__ import annotations

from typing import Any

from torch import nn


def model_size_mb(model: nn.Module) -> float:
    """Bytes of parameters and buffers (what a checkpoint of the weights holds), in MiB."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors) / 2**20


def model_line(task: str, target: str, model: nn.Module, device: Any, precision: str) -> str:
    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
    return (
        f"{task}: {target}: {trainable:,} trainable / {total:,} parameters, "
        f"{model_size_mb(model):.2f} MB; device {device}, precision {precision}"
    )


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def summary_table(record: dict[str, Any], wall_seconds: float) -> str:
    """The end-of-run table from a metrics.json record: val/test metrics, time, throughput,
    folder."""
    val, test = record.get("best_val") or {}, record.get("test") or {}
    monitor = (record.get("monitor") or {}).get("metric", "")
    names = [
        k
        for k in dict.fromkeys([monitor, *val, *test])
        if isinstance(val.get(k, test.get(k)), int | float)
    ]
    width = max([len(n) for n in names] + [12])
    speed = record.get("samples_per_second")
    lines = [
        f"run summary: test (best epoch {record.get('best_epoch')} of {record.get('epochs_run')}, "
        f"by val {monitor})",
        f"  {'metric':<{width}}  {'val':>10}  {'test':>10}",
        *[f"  {n:<{width}}  {_number(val.get(n)):>10}  {_number(test.get(n)):>10}" for n in names],
        f"  {'wall time':<{width}}  {_wall(wall_seconds, record.get('train_seconds') or 0.0)}",
        f"  {'samples/s':<{width}}  {f'{speed:,.0f}' if speed else '-'}",
        f"  {'run folder':<{width}}  {record.get('run_dir')}",
    ]
    return "\n".join(lines)


def _wall(wall_seconds: float, train_seconds: float) -> str:
    """This process's wall time beside the run's training time (which a resumed run sums over
    every session, so it can exceed this session's wall time)."""
    if train_seconds > wall_seconds:
        return (
            f"{wall_seconds:.1f} s this session (training {train_seconds:.1f} s over the whole run)"
        )
    return f"{wall_seconds:.1f} s (training {train_seconds:.1f} s)"
