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
* ``apply(inputs, players, masks)``: the masked inputs ``(B, M, ...)`` for ``M`` masks, built
  without a Python loop over masks or samples.

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

from __future__ import annotations

import abc
import inspect
from collections.abc import Sequence
from typing import Callable, Union

import torch
from torch import Tensor

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
    "FeatureMasker",
    "TokenMasker",
    "PointCloudMasker",
]

# "zeros", "mean" (over the ``data`` given to the masker), a number, or a tensor that
# broadcasts to one sample.
Baseline = Union[str, float, Tensor]

# A user masking function: ``fn(inputs (B, ...), masks (M,)) -> (B, M, ...)``.
MaskFn = Callable[[Tensor, Tensor], Tensor]

# Masks are int64, so bit 62 is the last one that keeps every mask non-negative.
MAX_PLAYERS = 62

_DEFAULT_NUM_PLAYERS = 10

_INTEGER_DTYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


# ---------------------------------------------------------------------------------------------
# Masks
# ---------------------------------------------------------------------------------------------


def presence(masks: Tensor, num_players: int) -> Tensor:
    """Return ``(M, n)`` booleans: ``out[m, i]`` is True when player ``i`` is in ``masks[m]``.

    Raises a ``TypeError`` / ``ValueError`` for masks that are not a 1-D integer tensor with
    values in ``0 .. 2^n - 1``.

    Example:
        >>> presence(torch.tensor([0, 1, 6]), 3)
        tensor([[False, False, False],
                [ True, False, False],
                [False,  True,  True]])
    """
    _check_num_players(num_players, "presence")
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be a tensor of integer masks, got {type(masks).__name__}")
    if masks.dtype not in _INTEGER_DTYPES:
        raise TypeError(f"masks must be an integer tensor (int64), got dtype {masks.dtype}")
    if masks.dim() != 1:
        raise ValueError(f"masks must be a 1-D tensor of M masks, got shape {tuple(masks.shape)}")
    masks = masks.long()
    if masks.numel() and (int(masks.min()) < 0 or int(masks.max()) >= 2**num_players):
        raise ValueError(
            f"masks must lie in 0 .. 2^{num_players} - 1 = {2**num_players - 1} for {num_players} "
            f"players, got values from {int(masks.min())} to {int(masks.max())}"
        )
    bits = torch.arange(num_players, device=masks.device)
    return ((masks[:, None] >> bits) & 1).bool()


# ---------------------------------------------------------------------------------------------
# Baselines (shared by every masker)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Small shared helpers
# ---------------------------------------------------------------------------------------------


def _check_num_players(num_players: object, who: str) -> int:
    if isinstance(num_players, bool) or not isinstance(num_players, int):
        raise TypeError(f"{who}: num_players must be an int, got {type(num_players).__name__}")
    if not 1 <= num_players <= MAX_PLAYERS:
        raise ValueError(f"{who}: num_players must be in 1 .. {MAX_PLAYERS}, got {num_players}")
    return num_players


def _check_tensor(inputs: object, who: str) -> Tensor:
    if not isinstance(inputs, Tensor):
        raise TypeError(f"{who}: inputs must be a tensor, got {type(inputs).__name__}")
    return inputs


def _fixed_indices(indices: Sequence[int] | None, who: str) -> tuple[int, ...] | None:
    """Check a user list of player indices: non-empty, non-negative ints, no repeats."""
    if indices is None:
        return None
    if not isinstance(indices, (Sequence, Tensor)) or isinstance(indices, str):
        raise TypeError(f"{who}: players must be a sequence of indices, got {type(indices).__name__}")
    values = indices.tolist() if isinstance(indices, Tensor) else list(indices)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        raise ValueError(f"{who}: players must be a non-empty sequence of ints, got {indices!r}")
    if min(values) < 0 or len(set(values)) != len(values):
        raise ValueError(f"{who}: players must be distinct non-negative indices, got {values}")
    return tuple(values)


def _resolve_count(num_players: int | None, fixed: tuple[int, ...] | None, who: str) -> int:
    """``num_players`` defaults to the fixed players' count, or to 10 for random players."""
    if fixed is None:
        return _check_num_players(_DEFAULT_NUM_PLAYERS if num_players is None else num_players, who)
    if num_players is not None and num_players != len(fixed):
        raise ValueError(f"{who}: num_players={num_players} but {len(fixed)} fixed players were given")
    return _check_num_players(len(fixed), who)


def _generator(seed: int) -> torch.Generator:
    # A local CPU generator: the same players on every device, and the global RNG is untouched.
    return torch.Generator(device="cpu").manual_seed(int(seed))


def _random_choice(allowed: Tensor, n: int, seed: int) -> Tensor:
    """Choose ``n`` allowed units per row of ``allowed`` (B, U) at random; returns sorted (B, n)."""
    scores = torch.rand(allowed.shape, generator=_generator(seed))
    # Disallowed units score above every random number, so they come last.
    scores = scores.masked_fill(~allowed, 2.0)
    chosen = scores.argsort(dim=1)[:, :n]
    return chosen.sort(dim=1).values


def _fixed_choice(fixed: tuple[int, ...], batch: int) -> Tensor:
    return torch.tensor(fixed, dtype=torch.long).expand(batch, len(fixed)).clone()


def _player_tensor(
    players: dict[str, Tensor], key: str, shape: tuple[int, ...], limit: int, inputs: Tensor, who: str
) -> Tensor:
    """Fetch ``players[key]``, check its shape and index range, and move it to the inputs' device."""
    if not isinstance(players, dict) or key not in players:
        raise ValueError(f"{who}: players must be the dict from select_players, with a {key!r} entry")
    value = players[key]
    if not isinstance(value, Tensor) or tuple(value.shape) != shape:
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"{who}: players[{key!r}] must have shape {shape}, got {got}")
    _check_index_range(value, limit, f"players[{key!r}]", who)
    return value.to(device=inputs.device, dtype=torch.long)


def _check_index_range(index: Tensor, limit: int, what: str, who: str) -> None:
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= limit):
        raise ValueError(
            f"{who}: {what} must lie in 0 .. {limit - 1}, got values from {int(index.min())} "
            f"to {int(index.max())}"
        )


def _owner(choice: Tensor, units: int) -> Tensor:
    """Per-unit player id from chosen units: ``(B, n)`` -> ``(B, units)``, -1 for non-players."""
    ordered = choice.sort(dim=1).values
    if bool((ordered[:, 1:] == ordered[:, :-1]).any()):
        raise ValueError("the players of a sample must be distinct units; one unit appears twice")
    owner = torch.full((choice.shape[0], units), -1, dtype=torch.long, device=choice.device)
    rank = torch.arange(choice.shape[1], device=choice.device).expand_as(choice)
    return owner.scatter(1, choice, rank)


def _keep(owner: Tensor, present: Tensor) -> Tensor:
    """Which units keep their value: ``owner`` (B, U) and ``present`` (M, n) -> (B, M, U) bools.

    A unit keeps its value when its player is present or when it is no player (owner -1).
    """
    n = present.shape[1]
    # Column n stands for "no player" and is always present.
    table = torch.cat([present, present.new_ones(present.shape[0], 1)], dim=1)
    index = torch.where(owner >= 0, owner, torch.full_like(owner, n))
    return table[:, index].transpose(0, 1)


def contiguous_segments(length: int, num_segments: int) -> list[list[int]]:
    """Split ``0 .. length - 1`` into ``num_segments`` contiguous runs whose sizes differ by <= 1.

    Example:
        >>> contiguous_segments(7, 3)
        [[0, 1, 2], [3, 4], [5, 6]]
    """
    if num_segments < 1 or num_segments > length:
        raise ValueError(f"num_segments must be in 1 .. length={length}, got {num_segments}")
    size, extra = divmod(length, num_segments)
    segments, start = [], 0
    for k in range(num_segments):
        stop = start + size + (1 if k < extra else 0)
        segments.append(list(range(start, stop)))
        start = stop
    return segments


# ---------------------------------------------------------------------------------------------
# The contract
# ---------------------------------------------------------------------------------------------


class Masker(abc.ABC):
    """Base class of all maskers: chooses the players of each sample and builds masked inputs.

    Subclasses set ``num_players`` and implement :meth:`validate`, :meth:`select_players` and
    :meth:`apply`. An ``apply`` that also takes ``out=`` (a preallocated ``(B, M, ...)`` tensor to
    write into) lets the engine reuse one buffer for every chunk, as the built-in maskers do. A
    custom masker needs only the three methods:

    Example:
        >>> class FirstFeatures(Masker):
        ...     num_players = 2
        ...     def validate(self, inputs):
        ...         if inputs.dim() != 2: raise ValueError("expected (B, F)")
        ...     def select_players(self, inputs, seed=0):
        ...         return {}
        ...     def apply(self, inputs, players, masks):
        ...         keep = presence(masks, 2)  # (M, 2): features 0 and 1 are the players
        ...         out = inputs[:, None].repeat(1, len(masks), 1)
        ...         out[:, :, :2] *= keep
        ...         return out
        >>> FirstFeatures().apply(torch.ones(1, 3), {}, torch.tensor([0, 3]))
        tensor([[[0., 0., 1.],
                 [1., 1., 1.]]])
    """

    num_players: int

    @abc.abstractmethod
    def validate(self, inputs: Tensor) -> None:
        """Raise a ``ValueError`` with a clear message if ``inputs`` (B, ...) do not fit."""

    @abc.abstractmethod
    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Choose the players of every sample; every value has leading dimension ``B``.

        Deterministic for given inputs and seed, and the global RNG is left untouched.
        """

    @abc.abstractmethod
    def apply(self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor) -> Tensor:
        """Return masked inputs ``(B, M, ...)``: ``out[b, m]`` is sample ``b`` with coalition ``masks[m]``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_players={self.num_players})"


class CallableMasker(Masker):
    """Wrap a function ``fn(inputs, masks) -> (B, M, ...)`` that masks a fixed set of players.

    There is no player selection: ``select_players`` returns an empty dict, and the function
    decides which input variables the ``num_players`` players are.

    Example:
        >>> def zero_first_two(inputs, masks):
        ...     keep = presence(masks, 2).to(inputs.dtype)  # (M, 2)
        ...     out = inputs[:, None].repeat(1, len(masks), 1)
        ...     out[:, :, :2] *= keep
        ...     return out
        >>> masker = CallableMasker(zero_first_two, num_players=2)
        >>> masker.apply(torch.ones(1, 3), {}, torch.tensor([1]))
        tensor([[[1., 0., 1.]]])
    """

    def __init__(self, fn: MaskFn, num_players: int) -> None:
        if not callable(fn):
            raise TypeError(f"CallableMasker needs a callable fn(inputs, masks), got {type(fn).__name__}")
        self.fn = fn
        self.num_players = _check_num_players(num_players, "CallableMasker")

    def validate(self, inputs: Tensor) -> None:
        """Check only that the inputs are a batched tensor; the function knows the rest."""
        inputs = _check_tensor(inputs, "CallableMasker")
        if inputs.dim() < 1:
            raise ValueError("CallableMasker: inputs must have a batch dimension, got a scalar")

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return an empty dict: the wrapped function fixes the players."""
        self.validate(inputs)
        return {}

    def apply(self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor) -> Tensor:
        """Call the function and check that it returned ``(B, M, ...)``."""
        presence(masks, self.num_players)  # clear errors for bad masks before calling user code
        out = self.fn(inputs, masks)
        expected = (inputs.shape[0], masks.shape[0])
        if not isinstance(out, Tensor) or tuple(out.shape[:2]) != expected:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ValueError(
                f"the masking function must return a tensor of shape (B, M, ...) = {expected + ('...',)}, "
                f"got {got}"
            )
        return out


def as_masker(obj: Masker | MaskFn, num_players: int | None = None) -> Masker:
    """Return ``obj`` if it is a :class:`Masker`, else wrap a callable in :class:`CallableMasker`.

    Example:
        >>> as_masker(lambda inputs, masks: inputs[:, None], num_players=3)
        CallableMasker(num_players=3)
    """
    if isinstance(obj, Masker):
        if num_players is not None and num_players != obj.num_players:
            raise ValueError(f"num_players={num_players} disagrees with the masker's {obj.num_players}")
        return obj
    if callable(obj):
        if num_players is None:
            raise ValueError("a masking function needs num_players: as_masker(fn, num_players=n)")
        return CallableMasker(obj, num_players)
    raise TypeError(f"expected a Masker or a callable fn(inputs, masks), got {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------


def _pair(patch_size: int | Sequence[int]) -> tuple[int, int]:
    size = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"patch_size must be a positive int or a pair of them, got {patch_size!r}")
    return size


class PatchMasker(Masker):
    """Image patches as players: inputs ``(B, C, H, W)`` cut into a grid of ``patch_size`` patches.

    Patches are numbered row-major over the grid. The players are ``num_players`` patches
    chosen at random (seeded) per sample, or the fixed patch indices ``players`` for every
    sample (player ``i`` is ``players[i]``). ``num_players`` defaults to ``len(players)``, or
    10 for random patches. Other patches keep their values. A masked patch takes the baseline:
    zeros, a tensor that broadcasts to ``(C, H, W)``, or ``"mean"`` over ``data`` (N, C, H, W).

    Example:
        >>> masker = PatchMasker(patch_size=2, players=[0, 3])
        >>> image = torch.ones(1, 1, 4, 4)
        >>> players = masker.select_players(image)
        >>> masker.apply(image, players, torch.tensor([1]))[0, 0, 0]  # player 1 (patch 3) masked
        tensor([[1., 1., 1., 1.],
                [1., 1., 1., 1.],
                [1., 1., 0., 0.],
                [1., 1., 0., 0.]])
    """

    def __init__(
        self,
        patch_size: int | tuple[int, int],
        num_players: int | None = None,
        players: Sequence[int] | None = None,
        baseline: Baseline = "zeros",
        data: Tensor | None = None,
    ) -> None:
        self.patch_size = _pair(patch_size)
        self.players = _fixed_indices(players, "PatchMasker")
        self.num_players = _resolve_count(num_players, self.players, "PatchMasker")
        self.baseline = resolve_baseline(baseline, data)

    def _grid(self, inputs: Tensor) -> tuple[int, int]:
        (height, width), (ph, pw) = inputs.shape[-2:], self.patch_size
        return height // ph, width // pw

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, C, H, W)`` images that the patch grid divides and holds the players."""
        inputs = _check_tensor(inputs, "PatchMasker")
        if inputs.dim() != 4:
            raise ValueError(f"PatchMasker expects images (B, C, H, W), got shape {tuple(inputs.shape)}")
        (height, width), (ph, pw) = inputs.shape[-2:], self.patch_size
        if height % ph or width % pw:
            raise ValueError(
                f"PatchMasker: image size {height}x{width} is not divisible by the patch size {ph}x{pw}"
            )
        rows, cols = self._grid(inputs)
        if rows * cols < self.num_players:
            raise ValueError(
                f"PatchMasker: the {rows}x{cols} patch grid has {rows * cols} patches, fewer than "
                f"num_players={self.num_players}; use smaller patches or fewer players"
            )
        if self.players is not None and max(self.players) >= rows * cols:
            raise ValueError(
                f"PatchMasker: fixed player patch {max(self.players)} is outside the {rows}x{cols} grid "
                f"(patches 0 .. {rows * cols - 1}, row-major)"
            )
        _check_baseline(self.baseline, inputs.shape[1:], "PatchMasker")

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"patches": (B, n)}``: the row-major patch index of every player."""
        self.validate(inputs)
        batch, (rows, cols) = inputs.shape[0], self._grid(inputs)
        if self.players is not None:
            patches = _fixed_choice(self.players, batch)
        else:
            patches = _random_choice(torch.ones(batch, rows * cols, dtype=torch.bool), self.num_players, seed)
        return {"patches": patches.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, C, H, W)``: masked patches take the baseline (written into ``out`` if given)."""
        batch, _, height, width = inputs.shape
        (rows, cols), (ph, pw) = self._grid(inputs), self.patch_size
        shape = (batch, self.num_players)
        patches = _player_tensor(players, "patches", shape, rows * cols, inputs, "PatchMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        keep = _keep(_owner(patches, rows * cols), present).reshape(batch, -1, rows, cols)
        # Blow each patch's flag up to its pixels: (B, M, 1, rows, ph, cols, pw) -> (B, M, 1, H, W).
        keep = keep[:, :, None, :, None, :, None].expand(-1, -1, 1, rows, ph, cols, pw)
        keep = keep.reshape(batch, -1, 1, height, width)
        return torch.where(keep, inputs[:, None], _baseline_on(self.baseline, inputs), out=out)


# ---------------------------------------------------------------------------------------------
# Tabular features and 1-D signals
# ---------------------------------------------------------------------------------------------


def _check_groups(groups: Sequence[Sequence[int]], num_features: int | None) -> tuple[tuple[int, ...], ...]:
    checked = []
    for k, group in enumerate(groups):
        members = group.tolist() if isinstance(group, Tensor) else group
        if (
            not isinstance(members, (list, tuple, range))
            or not members
            or any(isinstance(f, bool) or not isinstance(f, int) for f in members)
        ):
            raise ValueError(
                f"FeatureMasker: group {k} must be a non-empty list of feature indices, got {group!r}"
            )
        checked.append(tuple(members))
    if not checked:
        raise ValueError("FeatureMasker: groups must not be empty")
    flat = [f for group in checked for f in group]
    if min(flat) < 0 or (num_features is not None and max(flat) >= num_features):
        limit = "" if num_features is None else f" .. {num_features - 1}"
        raise ValueError(f"FeatureMasker: feature indices must lie in 0{limit}, got {min(flat)}..{max(flat)}")
    if len(set(flat)) != len(flat):
        repeated = sorted({f for f in flat if flat.count(f) > 1})
        raise ValueError(f"FeatureMasker: groups must be disjoint, features {repeated} are in more than one")
    return tuple(checked)


class FeatureMasker(Masker):
    """Features along the last axis as players: tabular ``(B, F)`` or signals ``(B, C, F)``.

    Each player is a group of feature indices (``groups``; disjoint); by default every feature
    is its own group. Features in no group are never masked. For inputs with middle
    dimensions (e.g. channels of a 1-D signal), a group masks its positions in all of them.
    ``num_players`` defaults to the number of groups; if smaller, that many groups are chosen
    at random (seeded) per sample. The number of features comes from ``num_features``, else
    from ``data``; it is required when ``groups`` is not given. The baseline is zeros, a tensor
    that broadcasts to one sample, or ``"mean"`` over ``data`` (N, ..., F).
    Use :meth:`segments` to make contiguous segments of a signal into players.

    Example:
        >>> masker = FeatureMasker(groups=[[0, 1], [3]], baseline=torch.tensor(-1.0))
        >>> x = torch.arange(1.0, 5.0)[None]  # one sample, 4 features
        >>> masker.apply(x, masker.select_players(x), torch.tensor([0, 1, 2, 3]))
        tensor([[[-1., -1.,  3., -1.],
                 [ 1.,  2.,  3., -1.],
                 [-1., -1.,  3.,  4.],
                 [ 1.,  2.,  3.,  4.]]])
    """

    def __init__(
        self,
        groups: Sequence[Sequence[int]] | None = None,
        baseline: Baseline = "zeros",
        data: Tensor | None = None,
        num_players: int | None = None,
        num_features: int | None = None,
    ) -> None:
        self.baseline = resolve_baseline(baseline, data)
        if num_features is None and data is not None:
            num_features = data.shape[-1]
        if groups is None:
            if num_features is None:
                raise ValueError(
                    "FeatureMasker needs groups, num_features or data to know its players "
                    "(every feature is a player by default)"
                )
            groups = [[f] for f in range(num_features)]
        self.num_features = num_features
        self.groups = _check_groups(groups, num_features)
        count = len(self.groups) if num_players is None else num_players
        self.num_players = _check_num_players(count, "FeatureMasker")
        if self.num_players > len(self.groups):
            raise ValueError(
                f"FeatureMasker: num_players={self.num_players} exceeds the {len(self.groups)} groups"
            )
        # Group of every feature up to the largest grouped one; -1 means "in no group".
        group_of = torch.full((max(f for g in self.groups for f in g) + 1,), -1, dtype=torch.long)
        for k, group in enumerate(self.groups):
            group_of[list(group)] = k
        self._group_of = group_of

    @classmethod
    def segments(cls, num_features: int, num_segments: int, **kwargs: object) -> FeatureMasker:
        """Make ``num_segments`` contiguous segments of the last axis into players.

        Example:
            >>> FeatureMasker.segments(40, 8).groups[1]
            (5, 6, 7, 8, 9)
        """
        groups = contiguous_segments(num_features, num_segments)
        return cls(groups=groups, num_features=num_features, **kwargs)

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, ..., F)`` inputs that the feature count fits the groups and baseline."""
        inputs = _check_tensor(inputs, "FeatureMasker")
        if inputs.dim() < 2:
            raise ValueError(f"FeatureMasker expects inputs (B, ..., F), got shape {tuple(inputs.shape)}")
        features = inputs.shape[-1]
        if self.num_features is not None and features != self.num_features:
            raise ValueError(
                f"FeatureMasker: inputs have {features} features (last axis), expected {self.num_features}"
            )
        if features < len(self._group_of):
            raise ValueError(
                f"FeatureMasker: inputs have {features} features but the groups use feature "
                f"{len(self._group_of) - 1}"
            )
        _check_baseline(self.baseline, inputs.shape[1:], "FeatureMasker")

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"groups": (B, n)}``: the group index of every player.

        With ``num_players`` equal to the number of groups, player ``i`` is group ``i``.
        """
        self.validate(inputs)
        batch, count = inputs.shape[0], len(self.groups)
        if self.num_players == count:
            chosen = _fixed_choice(tuple(range(count)), batch)
        else:
            chosen = _random_choice(torch.ones(batch, count, dtype=torch.bool), self.num_players, seed)
        return {"groups": chosen.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, ..., F)``: masked groups' features take the baseline (into ``out`` if given)."""
        batch, features, count = inputs.shape[0], inputs.shape[-1], len(self.groups)
        chosen = _player_tensor(players, "groups", (batch, self.num_players), count, inputs, "FeatureMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        # Player of each group (B, G + 1; column G = "no group"), then of each feature (B, F).
        group_owner = torch.cat([_owner(chosen, count), chosen.new_full((batch, 1), -1)], dim=1)
        group_of = torch.full((features,), count, dtype=torch.long)
        group_of[: len(self._group_of)] = self._group_of.masked_fill(self._group_of < 0, count)
        owner = group_owner[:, group_of.to(inputs.device)]
        keep = _keep(owner, present)  # (B, M, F)
        keep = keep.reshape(batch, -1, *([1] * (inputs.dim() - 2)), features)
        return torch.where(keep, inputs[:, None], _baseline_on(self.baseline, inputs), out=out)


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------


class TokenMasker(Masker):
    """Token positions as players: inputs ``(B, L)`` integer token ids.

    The players are ``num_players`` positions chosen at random (seeded) among the non-padding
    positions of each sample, or the fixed positions ``players`` for every sample. Padding is
    never a player. A masked player becomes ``mask_token_id``; the output keeps the integer
    dtype. ``num_players`` defaults to ``len(players)``, or 10 for random positions.

    Example:
        >>> masker = TokenMasker(mask_token_id=0, num_players=2, pad_token_id=9)
        >>> ids = torch.tensor([[5, 6, 9, 9]])
        >>> masker.apply(ids, masker.select_players(ids), torch.tensor([0, 1, 3]))
        tensor([[[0, 0, 9, 9],
                 [5, 0, 9, 9],
                 [5, 6, 9, 9]]])
    """

    def __init__(
        self,
        mask_token_id: int,
        num_players: int | None = None,
        pad_token_id: int | None = None,
        players: Sequence[int] | None = None,
    ) -> None:
        for name, value in (("mask_token_id", mask_token_id), ("pad_token_id", pad_token_id)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise TypeError(f"TokenMasker: {name} must be an int, got {type(value).__name__}")
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
        self.players = _fixed_indices(players, "TokenMasker")
        self.num_players = _resolve_count(num_players, self.players, "TokenMasker")

    def _non_padding(self, inputs: Tensor) -> Tensor:
        if self.pad_token_id is None:
            return torch.ones_like(inputs, dtype=torch.bool)
        return inputs != self.pad_token_id

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, L)`` integer ids that every sample has enough non-padding players."""
        inputs = _check_tensor(inputs, "TokenMasker")
        if inputs.dim() != 2:
            raise ValueError(f"TokenMasker expects token ids (B, L), got shape {tuple(inputs.shape)}")
        if inputs.dtype not in _INTEGER_DTYPES:
            raise ValueError(f"TokenMasker expects integer token ids, got dtype {inputs.dtype}")
        self._mask_token(inputs)
        non_padding = self._non_padding(inputs)
        if self.players is not None:
            self._validate_fixed(non_padding)
            return
        counts = non_padding.sum(dim=1)
        if inputs.shape[0] and int(counts.min()) < self.num_players:
            sample = int(counts.argmin())
            raise ValueError(
                f"TokenMasker: sample {sample} has {int(counts[sample])} non-padding tokens, fewer than "
                f"num_players={self.num_players}"
            )

    def _mask_token(self, inputs: Tensor) -> Tensor:
        """``mask_token_id`` as a 0-d tensor of the ids' dtype; raise if that dtype cannot hold it."""
        info = torch.iinfo(inputs.dtype) if inputs.dtype in _INTEGER_DTYPES else None
        # torch.tensor would wrap -1 to 255 for uint8 silently, or fail with a bare RuntimeError.
        if info is not None and not info.min <= self.mask_token_id <= info.max:
            raise ValueError(
                f"TokenMasker: mask_token_id={self.mask_token_id} does not fit the token ids' dtype "
                f"{inputs.dtype} (values {info.min} .. {info.max})"
            )
        return torch.tensor(self.mask_token_id, dtype=inputs.dtype, device=inputs.device)

    def _validate_fixed(self, non_padding: Tensor) -> None:
        length = non_padding.shape[1]
        if max(self.players) >= length:
            raise ValueError(f"TokenMasker: fixed player position {max(self.players)} >= the length {length}")
        on_padding = ~non_padding[:, list(self.players)]
        if bool(on_padding.any()):
            sample, k = (int(i) for i in on_padding.nonzero()[0])
            raise ValueError(
                f"TokenMasker: fixed player position {self.players[k]} is padding in sample {sample}"
            )

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"positions": (B, n)}``: the token position of every player, never padding."""
        self.validate(inputs)
        if self.players is not None:
            positions = _fixed_choice(self.players, inputs.shape[0])
        else:
            positions = _random_choice(self._non_padding(inputs.detach().cpu()), self.num_players, seed)
        return {"positions": positions.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, L)`` ids: masked player positions become ``mask_token_id`` (into ``out``)."""
        batch, length = inputs.shape
        shape = (batch, self.num_players)
        positions = _player_tensor(players, "positions", shape, length, inputs, "TokenMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        keep = _keep(_owner(positions, length), present)
        return torch.where(keep, inputs[:, None], self._mask_token(inputs), out=out)


# ---------------------------------------------------------------------------------------------
# Point clouds
# ---------------------------------------------------------------------------------------------


def _cluster_sums(points: Tensor, ids: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Per-cluster coordinate sums (B, k, D) and point counts (B, k)."""
    # A one-hot matrix product rather than scatter_add: deterministic on GPUs too.
    one_hot = torch.nn.functional.one_hot(ids, k).to(points.dtype)  # (B, P, k)
    return one_hot.transpose(1, 2) @ points, one_hot.sum(dim=1)


def _squared_distances(points: Tensor, centres: Tensor) -> Tensor:
    # Explicit differences rather than cdist's matmul trick: exact, so ties break the same way.
    return (points[:, :, None, :] - centres[:, None, :, :]).square().sum(dim=-1)


def _reseed_empty(points: Tensor, centres: Tensor, ids: Tensor, counts: Tensor) -> Tensor:
    """Move each empty cluster's centre onto the point farthest from its own centre."""
    empty = counts == 0
    if not bool(empty.any()):
        return centres
    centres = centres.clone()
    own = centres.gather(1, ids[..., None].expand(-1, -1, points.shape[-1]))
    far = (points - own).square().sum(dim=-1)  # (B, P)
    rows = torch.arange(points.shape[0])
    for j in range(centres.shape[1]):
        index = far.argmax(dim=1)
        hit = empty[:, j]
        centres[rows[hit], j] = points[rows[hit], index[hit]]
        # A point that became a centre is not picked again for another empty cluster.
        far[rows[hit], index[hit]] = -1.0
    return centres


def _kmeans_plus_plus(points: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """Seeded k-means++ initial centres (B, k, D): each new centre is drawn with weight D^2."""
    rows = torch.arange(points.shape[0])
    centre = points[rows, torch.randint(points.shape[1], (points.shape[0],), generator=generator)]
    centres = [centre]
    closest = (points - centre[:, None]).square().sum(dim=-1)  # (B, P)
    for _ in range(1, k):
        # A cloud whose points all sit on centres already has no D^2 mass: draw uniformly.
        weights = torch.where(closest.sum(dim=1, keepdim=True) > 0, closest, torch.ones_like(closest))
        centre = points[rows, torch.multinomial(weights, 1, generator=generator)[:, 0]]
        centres.append(centre)
        closest = torch.minimum(closest, (points - centre[:, None]).square().sum(dim=-1))
    return torch.stack(centres, dim=1)


def _kmeans(points: Tensor, k: int, iters: int, seed: int) -> Tensor:
    """Lloyd's k-means for every cloud of ``points`` (B, P, D) at once; returns ids (B, P)."""
    centres = _kmeans_plus_plus(points, k, _generator(seed))
    for _ in range(iters):
        ids = _squared_distances(points, centres).argmin(dim=-1)
        sums, counts = _cluster_sums(points, ids, k)
        means = sums / counts.clamp(min=1)[..., None]
        centres = torch.where(counts[..., None] > 0, means, centres)
        centres = _reseed_empty(points, centres, ids, counts)
    return _squared_distances(points, centres).argmin(dim=-1)


class PointCloudMasker(Masker):
    """Clusters of points as players: inputs ``(B, P, 3)`` point clouds.

    The clusters are given (``clusters``: cluster ids in ``0 .. n-1``, shape ``(P,)`` for every
    sample or ``(B, P)`` for a batch of that size) or found by a seeded k-means per sample
    (k-means++ start and ``iters`` Lloyd steps, in float64 on the CPU, so the same on every device; empty
    clusters are re-seeded at the farthest point, so a cluster stays empty only when a cloud
    has fewer distinct points than players, and then that player changes nothing). A masked
    cluster's points move to the cluster's centre, the centroid of its points.
    ``num_players`` defaults to ``clusters.max() + 1`` for given clusters, else 10.

    Example:
        >>> cloud = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [10, 0, 0], [12, 0, 0]]])
        >>> masker = PointCloudMasker(clusters=torch.tensor([0, 0, 1, 1]))
        >>> masker.apply(cloud, masker.select_players(cloud), torch.tensor([2]))[0, 0, :, 0]
        tensor([ 1.,  1., 10., 12.])
    """

    def __init__(
        self, num_players: int | None = None, clusters: Tensor | None = None, iters: int = 20
    ) -> None:
        if clusters is not None:
            clusters = self._check_clusters(clusters, num_players)
            num_players = int(clusters.max()) + 1 if num_players is None else num_players
        elif num_players is None:
            num_players = _DEFAULT_NUM_PLAYERS
        self.num_players = _check_num_players(num_players, "PointCloudMasker")
        if isinstance(iters, bool) or not isinstance(iters, int) or iters < 0:
            raise ValueError(f"PointCloudMasker: iters must be a non-negative int, got {iters!r}")
        self.clusters = clusters
        self.iters = iters

    @staticmethod
    def _check_clusters(clusters: Tensor, num_players: int | None) -> Tensor:
        is_ids = isinstance(clusters, Tensor) and clusters.dtype in _INTEGER_DTYPES
        if not is_ids or clusters.dim() not in (1, 2):
            raise ValueError("PointCloudMasker: clusters must be integer cluster ids of shape (P,) or (B, P)")
        clusters = clusters.detach().cpu().long()
        limit = MAX_PLAYERS if num_players is None else num_players
        _check_index_range(clusters, limit, "cluster ids", "PointCloudMasker")
        return clusters

    def validate(self, inputs: Tensor) -> None:
        """Check for ``(B, P, 3)`` float point clouds with at least ``num_players`` points."""
        inputs = _check_tensor(inputs, "PointCloudMasker")
        if inputs.dim() != 3 or inputs.shape[-1] != 3:
            raise ValueError(f"PointCloudMasker expects clouds (B, P, 3), got shape {tuple(inputs.shape)}")
        if not inputs.is_floating_point():
            raise ValueError(f"PointCloudMasker expects floating-point coordinates, got dtype {inputs.dtype}")
        if inputs.shape[1] < self.num_players:
            raise ValueError(
                f"PointCloudMasker: clouds have {inputs.shape[1]} points, fewer than "
                f"num_players={self.num_players} clusters"
            )
        if self.clusters is not None and self.clusters.shape[-1] != inputs.shape[1]:
            raise ValueError(
                f"PointCloudMasker: clusters give ids for {self.clusters.shape[-1]} points, "
                f"the clouds have {inputs.shape[1]}"
            )
        given = self.clusters
        if given is not None and given.dim() == 2 and given.shape[0] != inputs.shape[0]:
            raise ValueError(
                f"PointCloudMasker: clusters are given for a batch of {self.clusters.shape[0]}, "
                f"the inputs have {inputs.shape[0]} clouds"
            )

    def select_players(self, inputs: Tensor, seed: int = 0) -> dict[str, Tensor]:
        """Return ``{"clusters": (B, P)}``: the player (cluster id) of every point."""
        self.validate(inputs)
        batch, num_points = inputs.shape[:2]
        if self.clusters is not None:
            ids = self.clusters.expand(batch, num_points).clone()
        else:
            ids = _kmeans(inputs.detach().cpu().double(), self.num_players, self.iters, seed)
        return {"clusters": ids.to(inputs.device)}

    def apply(
        self, inputs: Tensor, players: dict[str, Tensor], masks: Tensor, out: Tensor | None = None
    ) -> Tensor:
        """Return ``(B, M, P, 3)``: masked clusters' points sit at their centroid (into ``out``)."""
        batch, num_points, dim = inputs.shape
        shape = (batch, num_points)
        ids = _player_tensor(players, "clusters", shape, self.num_players, inputs, "PointCloudMasker")
        present = presence(masks.to(inputs.device), self.num_players)
        # Centroids in at least float32, so half-precision clouds do not lose the sums.
        work = inputs.to(torch.promote_types(inputs.dtype, torch.float32))
        sums, counts = _cluster_sums(work, ids, self.num_players)
        centres = (sums / counts.clamp(min=1)[..., None]).to(inputs.dtype)
        baseline = centres.gather(1, ids[..., None].expand(-1, -1, dim))  # (B, P, 3)
        keep = _keep(ids, present)[..., None]  # (B, M, P, 1)
        return torch.where(keep, inputs[:, None], baseline[:, None], out=out)


def accepts_out(masker: Masker) -> bool:
    """Whether ``masker.apply`` takes ``out=`` (a subclass may override it without)."""
    return "out" in inspect.signature(masker.apply).parameters
