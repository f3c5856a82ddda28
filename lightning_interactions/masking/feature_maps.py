"""Regions of a hidden layer's feature map as players: :class:`FeatureMapMasker`.

The paper's convention for images (Ren et al. 2024, appendix): the players are regions of a
feature map after a ReLU, and a masked region takes a baseline of zero, rather than patches of
pixels. The masker names the layer (a submodule of the model, by name or as the module); the
engine runs the model once per sample up to that layer and hands the layer's output, ``2^n``
masked copies per sample, to the layers after it (a forward hook). The layers before it
therefore run once per sample instead of ``2^n`` times (once per chunk of masks when the
engine's ``batch_size`` is below ``2^n``). The engine's memory estimate counts the feature map's
size (one forward pass of the first sample tells it).

Every method of the masker contract sees the layer's output ``(B, C, H, W)``, not the model's
inputs: :meth:`FeatureMapMasker.select_players` chooses patches of the feature map's grid, and
:meth:`FeatureMapMasker.apply` masks them, exactly as :class:`PatchMasker` does on images.

Example:
    >>> import torch
    >>> masker = FeatureMapMasker("features.1", patch_size=2, num_players=3)
    >>> feature_map = torch.ones(1, 4, 4, 4)  # what the layer gives for one sample
    >>> masked = masker.apply(feature_map, masker.select_players(feature_map), torch.arange(8))
    >>> masked.shape, float(masked[0, 0].sum()), float(masked[0, -1].sum())
    (torch.Size([1, 8, 4, 4, 4]), 16.0, 64.0)
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from lightning_interactions.masking.base import Baseline
from lightning_interactions.masking.patches import PatchMasker

__all__ = ["FeatureMapMasker"]


class FeatureMapMasker(PatchMasker):
    """Patches of the feature map ``(B, C, H, W)`` that ``layer`` outputs, as players.

    Args:
        layer: the submodule whose output is masked: its name in ``model.named_modules()``
            (``"features.3"``; for a LightningModule the attribute path from the module, e.g.
            ``"net.features.3"``), or the module itself. Choose a layer after a ReLU, as the
            paper does, and one that no skip connection crosses: the layers after it get ``2^n``
            masked copies of its output per sample, the layers before it ran once.
        patch_size: the size of a region of the feature map, an int or ``(h, w)``.
        num_players: regions chosen at random (seeded) per sample; defaults to ``len(players)``,
            or 10.
        players: fixed region indices (row-major over the feature map's patch grid) instead.
        baseline: what a masked region becomes: zeros (the paper's, the default), a number, or a
            tensor that broadcasts to one feature map ``(C, H, W)``.
    """

    def __init__(
        self,
        layer: str | nn.Module,
        patch_size: int | tuple[int, int],
        num_players: int | None = None,
        players: Sequence[int] | None = None,
        baseline: Baseline = "zeros",
    ) -> None:
        if not isinstance(layer, (str, nn.Module)) or (isinstance(layer, str) and not layer):
            raise TypeError(
                "FeatureMapMasker: layer must be a submodule's name (e.g. 'features.3') or the "
                f"module itself, got {layer!r}"
            )
        if isinstance(baseline, str) and baseline == "mean":
            raise ValueError(
                "FeatureMapMasker: baseline='mean' needs the layer's outputs on data; pass zeros "
                "(the default), a number or a tensor of the feature map's shape (C, H, W)"
            )
        super().__init__(patch_size, num_players=num_players, players=players, baseline=baseline)
        self.layer = layer

    def validate(self, inputs: Tensor) -> None:
        """Check that the layer's output is feature maps ``(B, C, H, W)`` that the regions fit."""
        if isinstance(inputs, Tensor) and inputs.dim() != 4:
            raise ValueError(
                f"FeatureMapMasker: the layer {self._layer_name()} outputs shape {tuple(inputs.shape)}, not "
                "feature maps (B, C, H, W): choose a layer before the network flattens them (a "
                "convolution's output or the ReLU after it)"
            )
        super().validate(inputs)

    def _layer_name(self) -> str:
        return repr(self.layer) if isinstance(self.layer, str) else type(self.layer).__name__

    def __repr__(self) -> str:
        name = self.layer if isinstance(self.layer, str) else type(self.layer).__name__
        return f"FeatureMapMasker(layer={name!r}, num_players={self.num_players})"
