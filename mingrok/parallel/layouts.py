"""The four changes of layout the parallel wrappers need, each one DTensor redistribution.

A rank's local tensor is one piece of a logical tensor; a DTensor placement says which piece:
``Replicate()`` (every rank holds all of it), ``Shard(0)`` (rank r holds the r-th block of rows,
in ``torch.chunk``'s blocks), ``Partial()`` (the logical tensor is the *sum* over ranks). Moving
between them is a collective, and DTensor also gives each move the right backward:

=========================  ==========================  =============================
function                   forward                     backward (gradient)
=========================  ==========================  =============================
:func:`sum_partials`       all-reduce (Partial → Rep)  identity (each rank's grad is whole)
:func:`sum_gradients`      identity                    all-reduce of the partial grads
:func:`rows_of_this_rank`  keep block r (Rep → Shard)  all-gather of the blocks' grads
:func:`all_rows`           all-gather (Shard → Rep)    keep block r
=========================  ==========================  =============================

The first two are Megatron-LM's *g* and *f* (Shoeybi et al. 2019).
"""

from __future__ import annotations

import torch
from torch.distributed.device_mesh import DeviceMesh
from torch.distributed.tensor import DTensor, Partial, Replicate, Shard


def sum_partials(partial: torch.Tensor, mesh: DeviceMesh) -> torch.Tensor:
    """Σ over ranks of each rank's ``partial`` (a row-sharded matmul's output), on every rank."""
    dtensor = DTensor.from_local(partial, mesh, [Partial()])
    return dtensor.redistribute(mesh, [Replicate()]).to_local()


def sum_gradients(replicated: torch.Tensor, mesh: DeviceMesh) -> torch.Tensor:
    """``replicated`` unchanged; its gradient summed over ranks, which each hold a part of it."""
    dtensor = DTensor.from_local(replicated, mesh, [Replicate()])
    return dtensor.to_local(grad_placements=[Partial()])


def rows_of_this_rank(replicated: torch.Tensor, mesh: DeviceMesh, dim: int = 0) -> torch.Tensor:
    """Block r along ``dim`` (the rows by default) of a tensor every rank holds (torch.chunk's
    blocks; may be empty)."""
    dtensor = DTensor.from_local(replicated, mesh, [Replicate()])
    return dtensor.redistribute(mesh, [Shard(dim)]).to_local()


def all_rows(rows: torch.Tensor, mesh: DeviceMesh, num_rows: int, dim: int = 0) -> torch.Tensor:
    """The inverse of :func:`rows_of_this_rank`: every rank's block along ``dim`` (of
    ``num_rows`` in all), concatenated, on every rank."""
    shape = (*rows.shape[:dim], num_rows, *rows.shape[dim + 1 :])
    stride = torch.empty(shape, device="meta").stride()
    dtensor = DTensor.from_local(rows, mesh, [Shard(dim)], shape=torch.Size(shape), stride=stride)
    return dtensor.full_tensor()
