"""The unlearning loop of the language-model methods, with gradient accumulation and training
under ``accelerate`` (DDP, FSDP) on one or several processes.

A method's ``batch_size`` is the effective batch: the rows behind one optimizer step, over all
processes (OpenUnlearning's 32 is 4 per device x 8 accumulation steps on one GPU, or 4 x 4 on
two). Each process takes its share of every batch (the batches are drawn from the same seeded
order on every process), cuts it into micro-batches of at most ``micro_batch`` rows, and weights
each micro-batch's loss by its share of the rows. For losses that average over rows (NPO,
DPO-style, SimNPO) this gives the gradient of the whole batch exactly, up to float rounding, on
any number of processes and micro-batches; losses that average over tokens (the NLL terms)
weight each micro-batch by its rows rather than its tokens, as HF's Trainer does.

Without accumulation or accelerate this is :func:`obliviate.train.run_loop`, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn

from obliviate.train import check_finite, check_finite_weights, run_loop


def split_rows(batch: Any, k: int) -> list[Any]:
    """``batch`` (tensors nested in tuples/lists, or None) cut into ``k`` parts along rows."""
    if batch is None:
        return [None] * k
    if isinstance(batch, torch.Tensor):
        return list(torch.tensor_split(batch, k))
    parts = [split_rows(b, k) for b in batch]
    return [type(batch)(p[i] for p in parts) for i in range(k)]


def n_rows(batch: Any) -> int:
    """Rows of the first tensor in ``batch`` (the forget rows of a method's pair)."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    return n_rows(next(b for b in batch if b is not None))


def _optimizer_for(optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
    """``optimizer`` over ``model``'s trainable parameters, rebuilt with the same settings when
    wrapping changed the parameter objects (FSDP flattens them)."""
    mine = {id(p) for g in optimizer.param_groups for p in g["params"]}
    params = [p for p in model.parameters() if p.requires_grad]
    if {id(p) for p in params} == mine:
        return optimizer
    return type(optimizer)(params, **optimizer.defaults)


def lm_loop(model: nn.Module, batches: Callable[[int], Iterable[Any]], loss_fn: Callable,
            optimizer: torch.optim.Optimizer, epochs: int, *, owner: str,
            micro_batch: int | None = None, accelerator: Any = None) -> nn.Module:
    """Run ``epochs`` of ``loss_fn`` over ``batches(epoch)``, one optimizer step per batch,
    accumulated over micro-batches of ``micro_batch`` rows and ``accelerator``'s processes."""
    if accelerator is None and not micro_batch:
        return run_loop(model, batches, loss_fn, optimizer, epochs, owner=owner)
    world, rank = 1, 0
    trained = model
    if accelerator is not None:
        world, rank = accelerator.num_processes, accelerator.process_index
        trained = accelerator.prepare_model(model)
        optimizer = accelerator.prepare_optimizer(_optimizer_for(optimizer, trained))
    trained.train()
    step = 0
    for epoch in range(epochs):
        for batch in batches(epoch):
            optimizer.zero_grad(set_to_none=True)
            total = n_rows(batch)
            share = split_rows(batch, world)[rank]
            mine = n_rows(share)
            if mine == 0:  # fewer rows than processes: join the step with a zero-weight row
                chunks = [(split_rows(batch, total)[0], 0.0)]
            else:
                k = -(-mine // micro_batch) if micro_batch else 1
                chunks = [(c, world * n_rows(c) / total) for c in split_rows(share, k)]
            for j, (chunk, weight) in enumerate(chunks):
                last = j == len(chunks) - 1
                sync = accelerator.no_sync(trained) if accelerator is not None and not last \
                    else nullcontext()
                with sync:
                    loss = loss_fn(trained, chunk)
                    check_finite(loss, owner, epoch, step)
                    if accelerator is not None:
                        accelerator.backward(loss * weight)
                    else:
                        (loss * weight).backward()
            optimizer.step()
            step += 1
    trained.eval()
    if accelerator is not None:
        model = accelerator.unwrap_model(trained)
    model.eval()
    check_finite_weights(model, owner)
    return model
