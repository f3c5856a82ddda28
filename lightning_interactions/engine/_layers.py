"""Masking a hidden layer's output (:class:`~lightning_interactions.masking.FeatureMapMasker`).

The layer's output on each sample is computed once (:func:`feature_maps`, for choosing the
players); during the measurement a forward hook replaces the layer's output ``(b, C, H, W)`` by
its ``2^n`` masked copies ``(b * M, C, H, W)`` (:func:`masked_layer`), so the layers before it
run on ``b`` inputs and the layers after it on ``b * M``. Also here: :class:`EvalMode`, the
evaluation mode every forward pass of a measurement runs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from lightning_interactions.engine.structured import ForwardFn, SampleSet, call_model
from lightning_interactions.masking import FeatureMapMasker, Masker

__all__ = ["EvalMode", "resolve_layer", "layer_of", "feature_maps", "masked_layer", "SKIP_HINT"]


class EvalMode:
    """Put a module in eval mode and restore every submodule's own ``training`` flag afterwards.

    As Lightning's evaluation loop does (``_ModuleMode``): capture the flags, call ``eval()``
    (so a module's own ``train()`` override still runs), then set each flag back as it was.
    """

    def __init__(self, model: Any) -> None:
        self.model = model if isinstance(model, torch.nn.Module) else None
        self.modules = list(model.modules()) if self.model is not None else []
        self.flags: list[bool] = []

    def __enter__(self) -> None:
        self.flags = [m.training for m in self.modules]
        if self.model is not None:
            self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for m, flag in zip(self.modules, self.flags):
            m.training = flag


def resolve_layer(model: Any, layer: str | nn.Module) -> nn.Module:
    """The submodule of ``model`` that ``layer`` names (or is); a clear error when there is none.

    Example:
        >>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
        >>> resolve_layer(model, "1")
        ReLU()
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"FeatureMapMasker needs the model as an nn.Module, got {type(model).__name__}")
    if isinstance(layer, nn.Module):
        if not any(module is layer for module in model.modules()):
            raise ValueError(
                f"FeatureMapMasker: the layer {type(layer).__name__} is not a submodule of the model"
            )
        return layer
    names = dict(model.named_modules())
    if layer not in names:
        tail = layer.rsplit(".", 1)[-1]
        near = [name for name in names if name and (name.rsplit(".", 1)[-1] == tail or layer in name)][:8]
        choices = near or [name for name in names if name][:8]
        raise ValueError(
            f"FeatureMapMasker: the model has no submodule {layer!r}; some of its names: {choices} "
            "(model.named_modules() lists them all)"
        )
    return names[layer]


def layer_of(masker: Masker, model: Any) -> nn.Module | None:
    """The layer a :class:`FeatureMapMasker` masks in ``model``; None for a masker of the inputs."""
    return resolve_layer(model, masker.layer) if isinstance(masker, FeatureMapMasker) else None


def _output_tensor(output: object) -> Tensor:
    if not isinstance(output, Tensor):
        raise TypeError(
            f"FeatureMapMasker: the layer returns {type(output).__name__}, not a tensor; choose a "
            "layer whose output is one feature map tensor (B, C, H, W)"
        )
    return output


def feature_maps(
    model: Any, layer: nn.Module, samples: SampleSet, forward_fn: ForwardFn | None
) -> list[Tensor]:
    """The layer's output on every group of samples (one forward pass each, in eval and inference mode)."""
    maps: list[Tensor] = []
    seen: list[Tensor] = []
    handle = layer.register_forward_hook(lambda _module, _inputs, output: seen.append(_output_tensor(output)))
    try:
        with EvalMode(model), torch.inference_mode():
            for group in samples.groups:
                seen.clear()
                call_model(model, group.model_inputs(group.main, group.companions()), forward_fn)
                if len(seen) != 1:
                    raise ValueError(
                        f"FeatureMapMasker: the layer ran {len(seen)} times in one forward pass; choose "
                        "a layer that runs exactly once"
                    )
                maps.append(seen[0].clone())
    finally:
        handle.remove()
    return maps


# Added to a model's error when the layers after the masked layer meet a tensor of the batch size
# before it: the masked copies outnumber the samples there.
SKIP_HINT = (
    "With FeatureMapMasker the layers after the masked layer get 2^n masked copies per sample and "
    "the layers before it ran once per sample: a model that adds something computed before the "
    "layer to what comes after it (a skip connection around it) cannot be masked there; choose a "
    "layer that no skip connection crosses (the output of a whole residual block)"
)


@contextmanager
def masked_layer(
    layer: nn.Module | None, masker: Masker, players: dict[str, Tensor], masks: Tensor
) -> Iterator[None]:
    """While active, ``layer`` returns the masked copies of its output for ``masks`` (nothing for None)."""
    if layer is None:
        yield
        return
    calls = 0

    def mask(_module: nn.Module, _inputs: object, output: object) -> Tensor:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise ValueError(
                "FeatureMapMasker: the layer ran more than once in one forward pass; choose a layer "
                "that runs exactly once"
            )
        output = _output_tensor(output)
        masked = masker.apply(output, players, masks)
        if tuple(masked.shape[:2]) != (output.shape[0], masks.shape[0]):
            raise ValueError(f"the masker returned shape {tuple(masked.shape)} for the layer's output")
        return masked.flatten(0, 1)

    handle = layer.register_forward_hook(mask)
    try:
        yield
    finally:
        handle.remove()
