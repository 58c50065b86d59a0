"""Data-parallel training under torchrun: `torchrun --nproc_per_node=N -m dlrun ...`.

Every rank builds the same job (same seed, same data). The one training loop stays as it is and
calls the small hooks below, which are identities in a plain single-process run:
- `shard_order`: each rank takes its own slice of every global batch of the epoch's order, so
  `trainer.batch_size` stays the GLOBAL batch size and the ranks together see each sample once;
- DistributedDataParallel averages the gradients; `mean_over_ranks` averages the epoch's train logs;
- `on_main`: validation and test metrics are computed over the WHOLE split on rank 0 (on the bare
  module, no collective inside) and broadcast, so every rank takes the same best-epoch and
  early-stopping decisions;
- only rank 0 writes checkpoints, logs and metrics.json, into the one run folder all ranks agreed
  on (`setup` shares rank 0's start time and id before Hydra names the folder).

Backends: gloo for CPU tensors, nccl for CUDA tensors (one process group with both).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from dlrun import clock
from dlrun.errors import ConfigError

if TYPE_CHECKING:  # torch is imported only when a job runs (cli.py stays light)
    import torch
    from torch import Tensor, nn

T = TypeVar("T")


def launched() -> bool:
    """True in a process started by torchrun with more than one rank (no torch import)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    if not launched():
        return False
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return int(os.environ.get("RANK", "0")) if active() else 0


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1")) if active() else 1


def is_main() -> bool:
    return rank() == 0


def setup() -> None:
    """Join the process group and agree on the run folder's time and id (before Hydra runs)."""
    import torch
    import torch.distributed as dist

    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    stamp = [{"time": time.time(), "uid": uuid.uuid4().hex[:6]}]
    dist.broadcast_object_list(stamp, src=0, device=torch.device("cpu"))
    clock.share(stamp[0]["time"], stamp[0]["uid"])
    if dist.get_rank() > 0:
        sys.argv.append("hydra.output_subdir=null")  # rank 0 alone saves .hydra/


def teardown() -> None:
    if active():
        import torch.distributed as dist

        dist.barrier()  # rank 0 may still be writing; leaving early aborts gloo's threads
        dist.destroy_process_group()


# --- hooks called by run.py and loop.py --------------------------------------------------------
def device(chosen: torch.device) -> torch.device:
    """Each rank on a node takes its own GPU (LOCAL_RANK)."""
    import torch

    if active() and chosen.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return chosen


def wrap(model: nn.Module, device: torch.device, batch_size: int) -> nn.Module:
    """DistributedDataParallel around the model, and quiet logs on ranks other than 0."""
    if not active():
        return model
    if batch_size % world_size():
        raise ConfigError(
            f"trainer.batch_size={batch_size} is the global batch size and must divide evenly "
            f"over {world_size()} ranks: use a multiple of {world_size()}"
        )
    if not is_main():
        logging.getLogger("dlrun").setLevel(logging.WARNING)
    from torch.nn.parallel import DistributedDataParallel

    logging.getLogger("dlrun").info(
        f"torchrun: {world_size()} ranks ({device.type}), global batch {batch_size} = "
        f"{world_size()} x {batch_size // world_size()}; rank 0 writes the run folder"
    )

    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def unwrap(model: nn.Module) -> nn.Module:
    """The bare module (for state dicts and single-rank evaluation)."""
    return (
        getattr(model, "module", model)
        if type(model).__name__ == "DistributedDataParallel"
        else model
    )


@contextlib.contextmanager
def bare_model(task: Any) -> Iterator[None]:
    """Run the task on its bare module: DDP's forward may sync buffers with the other ranks."""
    wrapped = task.model
    task.model = unwrap(wrapped)
    try:
        yield
    finally:
        task.model = wrapped


def shard_order(order: Tensor, batch_size: int) -> tuple[Tensor, int]:
    """This rank's share of the epoch's order and the per-rank batch size
    (as is without torchrun)."""
    if world_size() == 1:
        return order, batch_size
    return shard(order, batch_size, rank(), world_size())


def shard(order: Tensor, batch_size: int, rank: int, world: int) -> tuple[Tensor, int]:
    """Rank `rank`'s part of every global batch of `order`, and the per-rank batch size.

    Global batch k is order[k*B:(k+1)*B]; rank r takes its r-th slice of B/world samples. The last,
    partial batch is split evenly too (a remainder of fewer than `world` samples is left out), so
    every rank runs the same number of steps and DDP's gradient mean is the global batch's mean.
    """
    import torch

    local = batch_size // world
    full = len(order) // batch_size * batch_size
    parts = [order[:full].view(-1, world, local)[:, rank].reshape(-1)]
    share = (len(order) - full) // world
    if share:
        parts.append(order[full + rank * share : full + (rank + 1) * share])
    return torch.cat(parts), local


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """Average per-rank epoch logs (every rank ran the same number of equal-sized steps)."""
    if world_size() == 1 or not values:
        return values
    import torch
    import torch.distributed as dist

    names = sorted(values)
    packed = torch.tensor([values[n] for n in names], dtype=torch.float64)
    dist.all_reduce(packed)  # on the CPU: the gloo half of the process group
    return {n: float(v) / world_size() for n, v in zip(names, packed.tolist(), strict=True)}


def max_over_ranks(value: int) -> int:
    """The largest `value` of all ranks, on every rank (a stop signal's number: every rank stops
    at the same step, for the same signal)."""
    if world_size() == 1:
        return value
    import torch
    import torch.distributed as dist

    packed = torch.tensor([value])
    dist.all_reduce(packed, op=dist.ReduceOp.MAX)  # a CPU int: gloo, no device sync
    return int(packed.item())


def on_main(compute: Callable[[], T], task: Any) -> T:
    """`compute` (an evaluation over a whole split) on rank 0 with the bare model; its result is
    broadcast to every rank."""
    if world_size() == 1:
        return compute()
    import torch
    import torch.distributed as dist

    result: list[Any] = [None]
    if is_main():
        with bare_model(task):
            result[0] = compute()
    dist.broadcast_object_list(result, src=0, device=torch.device("cpu"))
    return result[0]
