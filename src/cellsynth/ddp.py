"""Data-parallel training across processes (``torchrun``) with DistributedDataParallel.

Under ``torchrun --nproc_per_node N ...`` (which sets ``RANK``, ``WORLD_SIZE``,
``MASTER_ADDR``/``MASTER_PORT``) a trainer calls :func:`setup` once: the process group
starts (gloo on CPU, NCCL on CUDA), each process trains on its own random patches
(seeded by its rank), DDP averages the gradients so every process holds the same
weights, and only rank 0 writes outputs. Without torchrun everything is a no-op.
"""
from __future__ import annotations

import logging
import os

import torch

log = logging.getLogger(__name__)


def world_size() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True in the process that writes outputs (rank 0, or the only process)."""
    return rank() == 0


def setup(device: torch.device) -> bool:
    """Start the process group when launched by torchrun (WORLD_SIZE > 1); True if distributed."""
    if world_size() <= 1:
        return False
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend=backend)
        log.info("process %d of %d (%s)", rank(), world_size(), backend)
    return True


def wrap(net: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``net`` in DistributedDataParallel when distributed (its gradients averaged over processes)."""
    if world_size() <= 1:
        return net
    from torch.nn.parallel import DistributedDataParallel
    ids = [device.index] if device.type == "cuda" and device.index is not None else None
    return DistributedDataParallel(net, device_ids=ids)


def barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()
