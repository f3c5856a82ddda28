"""The demo's run as ``analyze`` sees it: its MLP's checkpoints and its digits split.

Example:
    >>> import torch
    >>> state = {"net.1.weight": torch.zeros(4, 64), "epoch": torch.tensor(3)}
    >>> sorted(demo_state_dict({"state_dict": state}))
    ['1.weight', 'epoch']
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor, nn

from lightning_interactions.demos.digits import load_digits_split
from lightning_interactions.demos.models import build_mlp
from lightning_interactions.engine.samples import draw_samples

__all__ = ["demo_state_dict", "load_demo_mlp", "digits_source"]


class DemoCheckpointError(ValueError):
    """A file given to ``analyze`` without ``--module`` is not a checkpoint of the demo's MLP."""


def demo_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """A plain state dict of the demo's MLP from a saved one (Lightning checkpoint, ``net.`` prefix)."""
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    return {key[4:] if key.startswith("net.") else key: value for key, value in state.items()}


def load_demo_mlp(path: Path) -> nn.Module:
    """The demo's MLP with the weights of ``path`` (a state dict; its hidden width is read off it)."""
    state = demo_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    if "1.weight" not in state:
        raise DemoCheckpointError(
            f"{path} is not a state dict of the demo's MLP (no '1.weight'); pass --module"
        )
    model = build_mlp(int(state["1.weight"].shape[0]))
    model.load_state_dict(state)
    return model.eval()


def _cross_entropy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def digits_source(
    num_samples: int, seed: int, train_size: int, val_size: int, label_noise: float
) -> tuple[Tensor, Tensor, Callable[[nn.Module], tuple[float | None, float | None]]]:
    """The demo's digits split: measured samples, their labels, and a loss function on the full split."""
    data = load_digits_split(train_size, val_size, label_noise, seed)
    inputs, targets = draw_samples(data["x_val"], data["y_val"], num_samples, seed)

    def losses(model: nn.Module) -> tuple[float | None, float | None]:
        train = _cross_entropy(model, data["x_train"], data["y_train"])
        return train, _cross_entropy(model, data["x_val"], data["y_val"])

    return inputs, targets, losses
