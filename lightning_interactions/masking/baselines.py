"""Baselines: what a masked player becomes, resolved once and checked against the inputs."""

from __future__ import annotations

import torch
from torch import Tensor

from lightning_interactions.masking.base import Baseline

__all__ = ["resolve_baseline"]


def resolve_baseline(baseline: Baseline = "zeros", data: Tensor | None = None) -> Tensor:
    """Turn a baseline spec into a tensor that broadcasts to one sample.

    ``"zeros"`` gives a scalar zero, a number gives that scalar, a tensor is used as it is,
    and ``"mean"`` gives the mean over the first dimension of ``data`` (samples of the
    same shape as the inputs). The result lives on the CPU; maskers cast it to the inputs'
    device and dtype when they apply it.

    Example:
        >>> resolve_baseline("mean", torch.tensor([[0.0, 2.0], [2.0, 4.0]]))
        tensor([1., 3.], dtype=torch.float64)
    """
    if isinstance(baseline, str) and baseline == "mean":
        return _mean_of(data)
    if data is not None:
        raise ValueError("data is only used with baseline='mean'; drop it or set baseline='mean'")
    if isinstance(baseline, str):
        if baseline != "zeros":
            raise ValueError(f"baseline must be 'zeros', 'mean', a number or a tensor, got {baseline!r}")
        return torch.zeros(())
    if isinstance(baseline, Tensor):
        return baseline.detach().cpu().clone()
    if isinstance(baseline, bool) or not isinstance(baseline, (int, float)):
        raise TypeError(
            f"baseline must be 'zeros', 'mean', a number or a tensor, got {type(baseline).__name__}"
        )
    return torch.tensor(float(baseline))


def _mean_of(data: Tensor | None) -> Tensor:
    if data is None:
        raise ValueError("baseline='mean' needs data: pass data=<samples of the inputs' shape>")
    if not isinstance(data, Tensor) or data.dim() < 2 or data.shape[0] == 0:
        shape = tuple(data.shape) if isinstance(data, Tensor) else type(data).__name__
        raise ValueError(f"data for baseline='mean' must be a tensor (N, ...) with N >= 1, got {shape}")
    # float64 so the mean of many samples stays exact; cast to the inputs' dtype when applied.
    return data.detach().cpu().double().mean(dim=0)


def _check_baseline(baseline: Tensor, sample_shape: torch.Size, who: str) -> None:
    try:
        shape = torch.broadcast_shapes(baseline.shape, sample_shape)
    except RuntimeError:
        shape = None
    if shape != sample_shape:
        raise ValueError(
            f"{who}: the baseline of shape {tuple(baseline.shape)} does not broadcast to one sample "
            f"of shape {tuple(sample_shape)}"
        )


def _baseline_on(baseline: Tensor, inputs: Tensor) -> Tensor:
    return baseline.to(device=inputs.device, dtype=inputs.dtype)
