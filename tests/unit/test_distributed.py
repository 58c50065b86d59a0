"""Sharding an epoch's order over torchrun ranks (dlrun/distributed.py), in-process."""

import os
import signal
import time

import torch

from dlrun import distributed
from dlrun.data.bundle import num_batches


def global_batches(order, batch_size):
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def test_ranks_split_every_global_batch_into_disjoint_equal_parts():
    order = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    shards = [distributed.shard(order, 8, r, 2) for r in range(2)]
    assert {local for _, local in shards} == {4}
    a, b = (s for s, _ in shards)
    assert len(a) == len(b) == 50 and not set(a.tolist()) & set(b.tolist())
    # step k of rank 0 + step k of rank 1 = the single process's batch k (as sets)
    for k, batch in enumerate(global_batches(order, 8)):
        both = a[k * 4 : (k + 1) * 4].tolist() + b[k * 4 : (k + 1) * 4].tolist()
        assert sorted(both) == sorted(batch.tolist()), k


def test_the_last_partial_batch_is_split_evenly_and_every_rank_runs_the_same_steps():
    order = torch.arange(99)  # 12 full batches of 8, then 3 left over for 2 ranks
    a, _ = distributed.shard(order, 8, 0, 2)
    b, _ = distributed.shard(order, 8, 1, 2)
    assert a[-1:].tolist() == [96] and b[-1:].tolist() == [97]  # sample 98 is left out
    assert num_batches(len(a), 4) == num_batches(len(b), 4) == 13
    three = [distributed.shard(torch.arange(50), 12, r, 3)[0] for r in range(3)]
    assert [len(s) for s in three] == [16, 16, 16]


def test_without_torchrun_the_hooks_change_nothing(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    order = torch.arange(10)
    assert not distributed.launched() and distributed.is_main()
    assert distributed.shard_order(order, 4) == (order, 4)
    assert distributed.mean_over_ranks({"loss": 0.5}) == {"loss": 0.5}
    model = torch.nn.Linear(2, 1)
    assert distributed.wrap(model, torch.device("cpu"), 64) is model
    assert distributed.unwrap(model) is model


def test_a_rank_stopped_for_a_peers_signal_takes_its_own_copy_as_the_same_stop():
    """torchrun sends each rank its own SIGTERM; the rank that stopped first for a peer's copy
    (at the step boundary's all-reduce) must say SIGTERM and exit 143, and its own copy arriving
    after the loop ended must not kill it before its exit line (seen once in CI)."""
    from dlrun.runtime import StopFlag

    seen: list[int] = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
    try:
        with StopFlag() as stop:
            stop.adopt(0)  # no rank was signalled
            assert not stop.requested
            stop.adopt(signal.SIGTERM)
        assert (stop.name, stop.exit_code) == ("SIGTERM", 143)
        os.kill(os.getpid(), signal.SIGTERM)  # the rank's own copy, after the loop
        time.sleep(0.01)
        assert seen == []  # taken by the stop it belongs to
        os.kill(os.getpid(), signal.SIGTERM)  # a later one is handled as before the run
        time.sleep(0.01)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
