"""A table model exported to take raw columns: the graph holds the saved preprocessing.

One input per feature column, named after it, shape (batch,): numeric columns as float32 (NaN
for a gap, filled with the training fill when the run imputed), categorical columns as int64
codes from `categories.json` (written beside the model: column -> {level: code}); a code
outside the map (an unseen level: e.g. the map's size) takes the column's "other" slot, and -1
(a gap) the fill when the run imputed (else "other" too). The graph imputes, standardises and
one-hot encodes exactly as `TablePreprocessing.transform` does, then runs the model:
classifiers return logits, regressors values in the target's own units. The export is checked
with the runtime against the model run through the ordinary prediction preprocessing on the same
raw rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from dlrun.data.table_prep import TablePreprocessing

CATEGORIES_JSON = "categories.json"


def category_codes(table: TablePreprocessing) -> dict[str, dict[str, int]]:
    """categories.json: each categorical column's level -> the int64 code the graph takes."""
    return {
        col: {level: i for i, level in enumerate(levels)}
        for col, levels in table.categories.items()
    }


class RawColumns(nn.Module):
    """The model behind the table's preprocessing, taking one (batch,) tensor per column."""

    def __init__(self, model: nn.Module, table: TablePreprocessing) -> None:
        super().__init__()
        self.model, self.features = model, list(table.features)
        numeric = table.numeric
        self.levels = {c: len(v) for c, v in table.categories.items()}
        self.fill = {c: _fill_code(table, c) for c in table.features}
        self.register_buffer("mean", torch.tensor(table.mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(table.std, dtype=torch.float32))
        self.position = {c: i for i, c in enumerate(numeric)}
        regression = table.task == "regression" and table.target_mean is not None
        self.unscale = (
            (torch.tensor(table.target_mean), torch.tensor(table.target_std))
            if regression
            else None
        )

    def forward(self, *columns: Tensor) -> Tensor:
        parts = []
        for name, column in zip(self.features, columns, strict=True):
            if name in self.levels:
                parts.append(self._one_hot(name, column))
                continue
            i, x = self.position[name], column.float()
            if self.fill[name] is not None:
                x = torch.where(torch.isnan(x), torch.full_like(x, self.fill[name]), x)
            parts.append(((x - self.mean[i]) / self.std[i]).unsqueeze(1))
        out = self.model(torch.cat(parts, dim=1))
        if self.unscale is not None:
            mean, std = self.unscale
            out = out * std.to(out.dtype) + mean.to(out.dtype)
        return out

    def _one_hot(self, name: str, codes: Tensor) -> Tensor:
        other = self.levels[name]
        codes = codes.long()
        if self.fill[name] is not None:
            codes = torch.where(codes == -1, torch.full_like(codes, int(self.fill[name])), codes)
        inside = (codes >= 0) & (codes < other)
        slot = torch.where(inside, codes, torch.full_like(codes, other))
        return nn.functional.one_hot(slot, other + 1).float()


def _fill_code(table: TablePreprocessing, column: str) -> float | None:
    """What a gap becomes: the numeric fill, or the fill level's code (its "other" slot when
    the fill is not a kept level); None when the run refused gaps."""
    if column not in table.fill:
        return None
    if column not in table.categories:
        return float(table.fill[column])
    levels = table.categories[column]
    fill = str(table.fill[column])
    return float(levels.index(fill) if fill in levels else len(levels))


def raw_rows(table: TablePreprocessing, n: int, seed: int = 0) -> tuple[tuple[Tensor, ...], Any]:
    """n random raw rows drawn from the saved statistics (numbers around each column's mean,
    codes of every level and "other"): the graph's inputs and the same rows as a DataFrame,
    as mode=predict would read them."""
    import pandas as pd

    gen = np.random.default_rng(seed)
    tensors, frame = [], {}
    numeric = {c: i for i, c in enumerate(table.numeric)}
    for col in table.features:
        if col in table.categories:
            levels = table.categories[col]
            codes = gen.integers(0, len(levels) + 1, n)  # len(levels): an unseen level
            frame[col] = [levels[c] if c < len(levels) else "<unseen>" for c in codes]
            tensors.append(torch.as_tensor(codes))
        else:
            i = numeric[col]
            values = (table.mean[i] + table.std[i] * gen.standard_normal(n)).astype(np.float32)
            frame[col] = values.astype(np.float64)
            tensors.append(torch.as_tensor(values))
    return tuple(tensors), pd.DataFrame(frame)


def reference(module: RawColumns, table: TablePreprocessing, frame: Any) -> np.ndarray:
    """The same rows through the prediction path: the saved preprocessing, then the model."""
    with torch.no_grad():
        out = module.model(table.transform(frame, "the check rows"))
        if module.unscale is not None:
            out = table.unscale_target(out)
    return out.numpy()
