"""A dataset of your own: a function returning dlrun's DataBundle (conf/data/blobs.yaml names it).

dlrun passes `seed` (the run's seed: it decides the validation split) by name; every other
argument comes from the YAML or the command line (data.n=1000).
"""

import torch

from dlrun.data.bundle import DataBundle, InMemorySplit, carve_validation


def blobs(seed: int, n: int = 1000, classes: int = 3, val_fraction: float = 0.1) -> DataBundle:
    """`classes` Gaussian blobs in 4 dimensions; the test split is fixed
    (it never moves with seed)."""
    if n < 10 * classes:
        raise ValueError(f"n={n} is too small for {classes} classes")
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % classes
    x = torch.randn(n, 4, generator=g) + 4 * torch.randn(classes, 4, generator=g)[y]
    split = InMemorySplit({"x": x.float(), "y": y})
    test = split.subset(torch.arange(n)[n * 4 // 5 :])
    train, val = carve_validation(split.subset(torch.arange(n)[: n * 4 // 5]), val_fraction, seed)
    return DataBundle(
        train=train,
        val=val,
        test=test,
        task="classification",
        input_shape=(4,),
        num_classes=classes,
        class_names=[f"blob{i}" for i in range(classes)],
    )
