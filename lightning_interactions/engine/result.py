"""The result of a measurement: :class:`InteractionResult`, what ``compute_interactions`` returns.

It holds the outputs ``v`` on every mask, the AND-OR interactions and their certificates for
each kept sample, and the strength by order (``docs/theory.md`` sections 3 and 4), with the
summaries a caller usually wants (``mean_strength``, ``strength_shape``, ``complexity``,
``max_gap``).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch
from torch import Tensor

from lightning_interactions.analysis.strength import complexity as _complexity
from lightning_interactions.analysis.strength import strength_shape as _strength_shape

__all__ = ["InteractionResult"]


@dataclass
class InteractionResult:
    """AND-OR interactions of the kept samples and their strength by order.

    Every tensor with a leading batch dimension has one row per *kept* sample (``K`` rows);
    ``sample_indices`` (``(K,)``, int64) gives each row's index among the inputs. Samples whose
    model outputs were not finite on some masked input are skipped (with a warning).
    ``players`` is the player selection of *all* inputs (the dict from ``select_players``,
    leading dimension ``B``), so it can be passed back as ``players=`` to measure the same
    inputs again with the same players.

    Attributes:
        v: ``(K, 2^n)`` float64 outputs on every mask.
        I_and, I_or: ``(K, 2^n)`` AND and OR interactions, indexed by mask.
        gamma, q: ``(K, 2^n)`` the split of ``v`` into AND and OR parts and the error term.
        tau: ``(K,)`` the error box ``q_ratio * |v(N) - v(empty)|``.
        objective: ``(K,)`` ``sum_{S nonempty} |I_and(S)| + |I_or(S)|``.
        gap: ``(K,)`` certified relative gap to the LP optimum, ``objective / lower_bound - 1``.
        strength: ``(K, n)`` per-sample strength by order ``k = 1..n``.
        players: player selection of all ``B`` inputs.
        sample_indices: ``(K,)`` indices of the kept samples among the inputs.
        num_players: ``n``.
        timings: wall-clock seconds of the stages (``forward_s``, ``extraction_s``, ``total_s``).

    Example:
        >>> import torch
        >>> from lightning_interactions.engine import compute_interactions
        >>> from lightning_interactions.masking import FeatureMasker
        >>> class Product(torch.nn.Module):  # v(T) = 1 when both players are present: one AND
        ...     def forward(self, x):
        ...         return x.prod(dim=1, keepdim=True)
        >>> result = compute_interactions(
        ...     Product(), torch.ones(1, 2), masker=FeatureMasker(num_features=2), output="regression",
        ...     q_ratio=0.0,
        ... )
        >>> [round(a, 6) for a in result.mean_strength.tolist()], round(result.complexity, 6)
        ([0.0, 1.0], 2.0)
    """

    v: Tensor
    I_and: Tensor
    I_or: Tensor
    gamma: Tensor
    q: Tensor
    tau: Tensor
    objective: Tensor
    gap: Tensor
    strength: Tensor
    players: dict[str, Tensor]
    sample_indices: Tensor
    num_players: int
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        """The number of kept samples ``K``."""
        return int(self.v.shape[0])

    @property
    def mean_strength(self) -> Tensor:
        """``A(k)``, ``k = 1..n``: the strength by order averaged over the kept samples.

        NaN when no sample was kept.
        """
        if self.num_samples == 0:
            return self.strength.new_full((self.num_players,), float("nan"))
        return self.strength.mean(dim=0)

    @property
    def strength_shape(self) -> Tensor:
        """``A(k) / sum_j A(j)``: the distribution of strength over orders ``1..n``."""
        return _strength_shape(self.mean_strength)

    @property
    def complexity(self) -> float:
        """The mean order ``sum_k k * strength_shape(k)`` (NaN when no sample was kept)."""
        return float(_complexity(self.strength_shape))

    @property
    def max_gap(self) -> float:
        """The largest certified gap over the kept samples (NaN when none was kept)."""
        return float(self.gap.max()) if self.num_samples else float("nan")

    def to(self, device: torch.device | str) -> InteractionResult:
        """Return a copy with every tensor (and the players) on ``device``."""
        values: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor):
                value = value.to(device)
            elif f.name == "players":
                value = {key: tensor.to(device) for key, tensor in value.items()}
            elif f.name == "timings":
                value = dict(value)
            values[f.name] = value
        return InteractionResult(**values)

    def cpu(self) -> InteractionResult:
        """Return a copy on the CPU."""
        return self.to("cpu")
