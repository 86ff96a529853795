"""Data-parallel training over processes, GPUs and machines: ``train --nproc N`` on one machine, or
``torchrun --nproc-per-node N --nnodes M ... -m talkinghead.train ...`` on a cluster.

Every rank builds the same model from the same seed (then rank 0's weights are broadcast, so they start equal
whatever the engine did), draws its own batches, and after each backward pass the gradients of every
optimiser are averaged over the ranks before its step: what ``DistributedDataParallel`` does, here for any
engine's loss dictionaries (several optimisers, a GAN's alternating passes through one module) without
wrapping the engine's modules. Rank 0 alone writes the model directory (checkpoints, ``train_log.csv``,
previews, weights); every rank resumes from its checkpoint; a phase ends on all ranks at the same step, when
any rank has spent the budget (so a time budget is wall-clock time for the whole job). NCCL on CUDA, gloo
on the CPU.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..progress import native_logs_hidden

__all__ = ["World", "average_gradients", "broadcast_modules", "from_main", "launch", "same_everywhere", "setup", "stop_together"]


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls) -> "World":
        """The ranks torchrun (or ``launch``) set in the environment; one process without them."""
        return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                   int(os.environ.get("LOCAL_RANK", 0)))


def setup(device: str) -> tuple[World, str]:
    """Join the process group of the environment's world (if it has more than one rank) → (world, this rank's
    device: ``cuda:LOCAL_RANK`` for CUDA)."""
    world = World.from_env()
    if not world.active:
        return world, device
    if not world.main:
        os.environ["TALKINGHEAD_QUIET"] = "1"  # one progress bar: rank 0's
    if device.startswith("cuda"):
        device = f"cuda:{world.local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return world, device


def from_main(obj, world: World):
    """Rank 0's ``obj`` (any picklable thing) on every rank."""
    box = [obj]
    dist.broadcast_object_list(box, 0)
    return box[0]


def average_gradients(params: list[torch.Tensor], world: World) -> None:
    """Average the gradients of ``params`` over the ranks, in place (one all-reduce of them all, flattened).
    Every rank must hold gradients for the same parameters (the same code path on every rank)."""
    grads = [p.grad for p in params if p.grad is not None]
    count = torch.tensor([len(grads), -len(grads)], dtype=torch.float64)
    dist.all_reduce(count, op=dist.ReduceOp.MAX)
    if count[0] != -count[1]:
        raise RuntimeError("ranks computed gradients for different parameters; an engine's step must take the "
                           "same path on every rank")
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world.size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def broadcast_modules(modules: dict[str, torch.nn.Module]) -> None:
    """Rank 0's parameters and buffers everywhere."""
    for name in sorted(modules):
        for t in list(modules[name].parameters()) + list(modules[name].buffers()):
            dist.broadcast(t.data, 0)


def stop_together(done: bool, world: World) -> bool:
    """True on every rank when any rank says ``done``."""
    if not world.active:
        return done
    flag = torch.tensor([float(done)])
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())


def same_everywhere(modules: dict[str, torch.nn.Module]) -> bool:
    """Whether every rank holds the same parameters (a checksum per module, compared by all-reduce)."""
    sums = torch.tensor([sum(float(p.detach().double().sum()) + float(p.detach().double().abs().sum())
                             for p in modules[k].parameters()) for k in sorted(modules)], dtype=torch.float64)
    lo, hi = sums.clone(), sums.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _child(local_rank: int, nproc: int, port: int, threads: int, fn, args) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(nproc),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    try:
        with native_logs_hidden():
            fn(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def launch(nproc: int, fn, *args) -> None:
    """Run ``fn(*args)`` in ``nproc`` processes of one world on this machine (what torchrun does for one
    node); the CPU's cores are shared out among them."""
    import torch.multiprocessing as mp

    threads = max(1, (os.cpu_count() or 1) // nproc)
    sys.stderr.flush()
    hidden = os.dup(2)  # the CLI may have sent descriptor 2 to /dev/null (native logs): the ranks get Python's
    os.dup2(sys.stderr.fileno(), 2)
    try:
        mp.spawn(_child, args=(nproc, _free_port(), threads, fn, args), nprocs=nproc, join=True)
    finally:
        os.dup2(hidden, 2)
        os.close(hidden)
