"""Seeded hold-out splits by index, stratified by class when asked.

A seeded torch.randperm per class (no sklearn.model_selection: importing it pulls in scipy.stats,
~1.9 s here). Each class gives round(fraction * its size) rows to the held-out part, so the
held-out and kept parts keep the class ratios of the whole; the held-out total is then trimmed
or topped up to round(fraction * n) so its size does not depend on stratification.
"""

from __future__ import annotations

import torch
from torch import Tensor


def holdout(
    n: int, fraction: float, seed: int, labels: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(kept, held_out) sorted index tensors; `labels` (n,) stratifies the split by class."""
    n_held = max(1, int(round(n * fraction)))
    gen = torch.Generator().manual_seed(seed)
    if labels is None:
        perm = torch.randperm(n, generator=gen)
        return perm[n_held:].sort().values, perm[:n_held].sort().values
    held, rest = [], []
    for cls in torch.unique(labels).tolist():  # ascending: the same order every time
        members = (labels == cls).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=gen)]
        k = int(round(len(members) * fraction))
        held.append(members[:k])
        rest.append(members[k:])
    held_idx, rest_idx = torch.cat(held), torch.cat(rest)
    # Rounding per class may miss the total by a few rows: move random ones across.
    if len(held_idx) > n_held:
        extra = torch.randperm(len(held_idx), generator=gen)
        rest_idx = torch.cat([rest_idx, held_idx[extra[n_held:]]])
        held_idx = held_idx[extra[:n_held]]
    elif len(held_idx) < n_held:
        extra = torch.randperm(len(rest_idx), generator=gen)
        need = n_held - len(held_idx)
        held_idx = torch.cat([held_idx, rest_idx[extra[:need]]])
        rest_idx = rest_idx[extra[need:]]
    return rest_idx.sort().values, held_idx.sort().values


def kfold(
    n: int, k: int, fold: int, seed: int, labels: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(kept, held_out) for fold `fold` of `k`: each row is held out in exactly one fold; with
    `labels`, each class is dealt round the folds in a seeded order (stratified)."""
    gen = torch.Generator().manual_seed(seed)
    assigned = torch.empty(n, dtype=torch.long)
    groups = (
        [torch.arange(n)]
        if labels is None
        else [(labels == c).nonzero().flatten() for c in torch.unique(labels).tolist()]
    )
    offset = 0
    for members in groups:  # one class after another, so every fold gets its share of each
        members = members[torch.randperm(len(members), generator=gen)]
        assigned[members] = (torch.arange(len(members)) + offset) % k
        offset += len(members)
    held = (assigned == fold).nonzero().flatten()
    kept = (assigned != fold).nonzero().flatten()
    return kept, held


def across_classes(labels: Tensor, count: int) -> Tensor:
    """Positions of `count` samples taken from each class in turn (in storage order within a
    class): the few batches a limited evaluation sees (debug=smoke) hold every class, instead
    of whatever classes the split stores first."""
    labels = labels.cpu().long()
    members = [(labels == c).nonzero().flatten() for c in torch.unique(labels).tolist()]
    depth = max(len(m) for m in members)
    grid = torch.full((depth, len(members)), -1, dtype=torch.long)  # row r: each class's r-th
    for col, m in enumerate(members):
        grid[: len(m), col] = m
    flat = grid.flatten()
    return flat[flat >= 0][:count]
