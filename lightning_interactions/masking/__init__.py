"""Players and maskers: which input variables are players, and what a masked player becomes.

A coalition ``T`` is an integer mask: bit ``i`` set means player ``i`` is present (see
``docs/theory.md`` section 1). The masked sample ``x_T`` keeps the players in ``T`` and
replaces every other player by its baseline value; input variables that are not players keep
their original value in every masked sample.

Every masker follows one contract (:class:`Masker`):

* ``num_players``: the number of players ``n``;
* ``validate(inputs)``: a cheap check that raises a clear ``ValueError`` for inputs that do not fit;
* ``select_players(inputs, seed)``: the players of every sample, as a dict of tensors with
  leading dimension ``B``; seeded, deterministic, and it never touches the global RNG;
* ``apply(inputs, players, masks, out=None)``: the masked inputs ``(B, M, ...)`` for ``M`` masks,
  built without a Python loop over masks or samples; a masker with ``supports_out = True``
  writes them into ``out`` (a preallocated buffer of that shape) when given one.

A measurement runs ``2^n`` masked forward passes per sample, so every masker refuses more than
:data:`MAX_PLAYERS` = 20 players (:func:`check_num_players`).

The modules: ``base`` (the contract, the player limit, :func:`presence`), ``baselines``,
``callable`` (maskers from functions), ``patches``, ``feature_maps`` (regions of a hidden
layer's output), ``features``, ``tokens``, ``point_clouds``.

Example:
    >>> import torch
    >>> images = torch.ones(2, 3, 8, 8)
    >>> masker = PatchMasker(patch_size=4, num_players=2)
    >>> players = masker.select_players(images, seed=0)
    >>> masked = masker.apply(images, players, torch.arange(2**masker.num_players))
    >>> masked.shape
    torch.Size([2, 4, 3, 8, 8])
    >>> bool((masked[:, -1] == images).all())  # all players present: the sample itself
    True
"""

from lightning_interactions.masking.base import MAX_PLAYERS, Baseline, Masker, MaskFn, presence
from lightning_interactions.masking.baselines import resolve_baseline
from lightning_interactions.masking.callable import CallableMasker, as_masker
from lightning_interactions.masking.feature_maps import FeatureMapMasker
from lightning_interactions.masking.features import FeatureMasker, contiguous_segments
from lightning_interactions.masking.patches import PatchMasker
from lightning_interactions.masking.point_clouds import PointCloudMasker
from lightning_interactions.masking.tokens import TokenMasker

__all__ = [
    "Baseline",
    "MaskFn",
    "MAX_PLAYERS",
    "presence",
    "resolve_baseline",
    "contiguous_segments",
    "Masker",
    "CallableMasker",
    "as_masker",
    "PatchMasker",
    "FeatureMapMasker",
    "FeatureMasker",
    "TokenMasker",
    "PointCloudMasker",
]
