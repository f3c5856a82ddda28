"""Scalar output functions ``v``: one number per masked input (``docs/theory.md`` section 1).

Every output function has the signature ``fn(model_output, targets) -> (N,)``: ``model_output``
has leading dimension ``N`` (one row per masked input), ``targets`` is ``(N,)`` or ``None``.
The named outputs find the logits in the common containers first (:func:`unwrap_logits`): a
dict with ``"logits"``, a tuple or list whose first element is the logits, an object with a
``.logits`` attribute (Hugging Face style); a callable ``output=`` gets the model's output as it is.

* :func:`log_odds`: ``z_y - logsumexp_{j != y} z_j`` from class logits, computed stably;
* :func:`binary_logit`: a single logit, sign-flipped to the target class when targets are given;
* :func:`regression`: a scalar model output as it is;
* :func:`last_token_log_odds`: a causal language model as a classifier, from its logits ``(N, L, V)``.

An output function with the class attribute ``needs_inputs = True`` is called as
``fn(model_output, targets, inputs)``, ``inputs`` being the samples those ``N`` masked inputs
were made from, unmasked, one row per masked input (a tensor, or a dict or tuple of tensors, each
with leading dimension ``N``): where a sample's last token is does not change with masking.

Example:
    >>> import torch
    >>> logits = torch.tensor([[100.0, 0.0], [0.0, 3.0]])
    >>> log_odds(logits, torch.tensor([0, 0]))  # exact, where log p - log(1 - p) is inf
    tensor([100.,  -3.])
    >>> resolve_output("logit") is binary_logit
    True
    >>> log_odds({"logits": logits, "hidden": None}, torch.tensor([0, 0]))  # a dict works too
    tensor([100.,  -3.])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Callable, Optional

import torch
from torch import Tensor

__all__ = [
    "OutputFn",
    "unwrap_logits",
    "log_odds",
    "binary_logit",
    "regression",
    "last_token_log_odds",
    "resolve_output",
    "check_output_values",
]

OutputFn = Callable[[Tensor, Optional[Tensor]], Tensor]


_FIX = (
    "pass output=lambda out, targets: ... to InteractionMonitor or compute_interactions, a function "
    "that returns one scalar per masked input, e.g. output=lambda out, targets: log_odds(out['scores'], "
    "targets) with log_odds from lightning_interactions.engine.outputs"
)
# Why an (N, L, V) output cannot be used as it is, and the two ways out.
_PER_TOKEN_FIX = (
    "the model output has one row per token, as a language model's logits (N, L, V) at every "
    "position, where one scalar per masked input is needed; pass output=last_token_log_odds([...]) "
    "(from lightning_interactions.engine.outputs: the log-odds of the target's label token at each "
    "input's last non-padding position) to InteractionMonitor or compute_interactions, or a callable "
    "output=lambda out, targets: ... that returns one scalar per masked input"
)


def _describe(model_output: object) -> str:
    name = type(model_output).__name__
    if isinstance(model_output, Mapping):
        keys = ", ".join(repr(key) for key in list(model_output)[:6])
        return f"a {name} with keys {keys}" if keys else f"an empty {name}"
    if isinstance(model_output, (tuple, list)):
        first = type(model_output[0]).__name__ if model_output else "nothing"
        return f"a {name} of {len(model_output)} whose first element is {first}"
    return f"a {name}"


def unwrap_logits(model_output: object, who: str = "the output function") -> Tensor:
    """The logits in a model's output: a tensor as it is, else the tensor found in a common container.

    Found, in this order: ``model_output["logits"]`` of a dict (any mapping), the first element
    of a tuple or list, ``model_output.logits`` of any other object (a Hugging Face
    ``ModelOutput`` is a mapping with a ``"logits"`` key). Logits found in a container are cast
    to at least float32, as the engine casts a model's bare tensor output. Anything else raises
    a ``TypeError`` that says how to pass an output function instead.

    Example:
        >>> logits = torch.tensor([[1.0, 0.0]])
        >>> unwrap_logits(logits) is logits, unwrap_logits((logits, "aux")) is logits
        (True, True)
        >>> from types import SimpleNamespace
        >>> unwrap_logits(SimpleNamespace(logits=logits.half())).dtype
        torch.float32
        >>> unwrap_logits({"scores": logits}, "log_odds")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        TypeError: log_odds: found no logits in the model output (a dict with keys 'scores'); ...
    """
    if isinstance(model_output, Tensor):
        return model_output
    if isinstance(model_output, Mapping):
        found = model_output.get("logits")
    elif isinstance(model_output, (tuple, list)):
        found = model_output[0] if model_output else None
    else:
        found = getattr(model_output, "logits", None)
    if not isinstance(found, Tensor):
        raise TypeError(
            f"{who}: found no logits in the model output ({_describe(model_output)}); expected a "
            "tensor, a dict with a 'logits' tensor, a tuple or list whose first element is the logits, "
            f"or an object with a .logits tensor; otherwise {_FIX}"
        )
    if found.is_floating_point():
        found = found.to(torch.promote_types(found.dtype, torch.float32))
    return found


def _check_float(output: object, who: str) -> Tensor:
    output = unwrap_logits(output, who)
    if not output.is_floating_point():
        raise TypeError(f"{who}: the model output must be floating point, got dtype {output.dtype}")
    return output


def _scalar_per_sample(output: object, who: str) -> Tensor:
    """Accept ``(N,)`` or ``(N, 1)`` and return ``(N,)``."""
    output = _check_float(output, who)
    if output.dim() == 2 and output.shape[1] == 1:
        return output[:, 0]
    if output.dim() != 1:
        per_token = f": {_PER_TOKEN_FIX}" if output.dim() == 3 else ""
        raise ValueError(
            f"{who} expects one scalar per sample, shape (N,) or (N, 1), got shape {tuple(output.shape)}"
            + per_token
        )
    return output


def _check_targets(targets: object, n: int, who: str) -> Tensor:
    if targets is None:
        raise ValueError(f"{who} needs the target of every sample, got targets=None")
    if not isinstance(targets, Tensor):
        raise TypeError(f"{who}: targets must be a tensor, got {type(targets).__name__}")
    if tuple(targets.shape) != (n,):
        raise ValueError(f"{who}: targets must have shape ({n},), one per sample, got {tuple(targets.shape)}")
    return targets


def _class_indices(targets: object, num_samples: int, num_classes: int, who: str, of: str = "") -> Tensor:
    """``targets`` checked as ``(N,)`` integer class indices in ``0 .. num_classes - 1``, as int64."""
    targets = _check_targets(targets, num_samples, who)
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TypeError(f"{who}: targets must be integer class indices, got dtype {targets.dtype}")
    targets = targets.long()
    if num_samples and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(
            f"{who}: targets must be class indices in 0 .. {num_classes - 1}{of}, got values "
            f"from {int(targets.min())} to {int(targets.max())}"
        )
    return targets


def _stable_log_odds(logits: Tensor, targets: Tensor) -> Tensor:
    """``z_y - logsumexp_{j != y} z_j`` of checked ``(N, C)`` logits and ``(N,)`` int64 targets."""
    index = targets[:, None].to(logits.device)
    # Work in at least float32: logsumexp sums exps of up to 1 each, and in float16 that sum
    # overflows (-> -inf) once more than 65504 classes tie at the maximum.
    work = logits.to(torch.promote_types(logits.dtype, torch.float32))
    target_logit = work.gather(1, index)[:, 0]
    # -inf drops the target class from the logsumexp; at least one other class stays finite.
    others = work.scatter(1, index, float("-inf"))
    return (target_logit - torch.logsumexp(others, dim=1)).to(logits.dtype)


def log_odds(logits: Tensor, targets: Tensor | None = None) -> Tensor:
    """Log-odds of the target class, ``log p_y / (1 - p_y) = z_y - logsumexp_{j != y} z_j``.

    ``logits`` is ``(N, C)`` with ``C >= 2`` classes, ``targets`` ``(N,)`` class indices.
    Computed from the logits directly, never as ``log p - log(1 - p)``, so it is exact and
    finite for any logit gap, also in float32.
    ``logits`` may also be a dict, tuple, list or object that holds them (:func:`unwrap_logits`).

    Example:
        >>> log_odds(torch.tensor([[2.0, 0.0, 0.0]]), torch.tensor([0]))
        tensor([1.3069])
    """
    logits = _check_float(logits, "log_odds")
    if logits.dim() != 2 or logits.shape[1] < 2:
        hint = _PER_TOKEN_FIX if logits.dim() == 3 else "use 'logit' for a single binary logit"
        raise ValueError(
            f"log_odds expects logits of shape (N, C) with C >= 2 classes, got {tuple(logits.shape)}; {hint}"
        )
    num_samples, num_classes = logits.shape
    targets = _class_indices(targets, num_samples, num_classes, "log_odds")
    return _stable_log_odds(logits, targets)


def binary_logit(output: Tensor, targets: Tensor | None = None) -> Tensor:
    """A single logit per sample, ``(N,)`` or ``(N, 1)``, as the output ``v``.

    Without targets, ``v`` is the logit itself (the log-odds of class 1). With 0/1 targets,
    ``v`` is the log-odds of the target class: the logit where the target is 1 and minus the
    logit where it is 0.
    The logit may also come in a dict, tuple, list or object (:func:`unwrap_logits`).

    Example:
        >>> binary_logit(torch.tensor([[2.0], [2.0]]), torch.tensor([1, 0]))
        tensor([ 2., -2.])
    """
    logit = _scalar_per_sample(output, "binary_logit")
    if targets is None:
        return logit
    targets = _check_targets(targets, logit.shape[0], "binary_logit")
    is_one = targets == 1
    if not bool((is_one | (targets == 0)).all()):
        raise ValueError("binary_logit: targets must be 0 or 1")
    return torch.where(is_one.to(logit.device), logit, -logit)


def regression(output: Tensor, targets: Tensor | None = None) -> Tensor:
    """A scalar model output, ``(N,)`` or ``(N, 1)``, used as it is; ``targets`` are ignored.

    The output may also come in a dict, tuple, list or object (:func:`unwrap_logits`).

    Example:
        >>> regression(torch.tensor([[0.5], [1.5]]))
        tensor([0.5000, 1.5000])
    """
    return _scalar_per_sample(output, "regression")


def last_token_log_odds(label_token_ids: Sequence[int], *, pad_token_id: int | None = None) -> OutputFn:
    """The output for a causal language model used as a classifier: ``output=last_token_log_odds([...])``.

    The classes are the tokens ``label_token_ids`` (e.g. the ids of ``" positive"`` and
    ``" negative"``; target ``k`` is the ``k``-th). From the logits ``(N, L, V)`` (a tensor, or
    any container :func:`unwrap_logits` reads) at each masked input's last non-padding position,
    ``v`` is the log-odds of the target's token among the label tokens, computed as
    :func:`log_odds` does. That position comes from the unmasked sample, which the engine passes
    (``needs_inputs``): with ``pad_token_id``, the last position whose id is not it (right
    padding); else, with an ``attention_mask`` in a dict of inputs, the last nonzero position;
    else the last position, ``L - 1``. Masking a token, even the last, never moves it.

    Example:
        >>> fn = last_token_log_odds([3, 1], pad_token_id=0)
        >>> fn
        last_token_log_odds([3, 1], pad_token_id=0)
        >>> logits = torch.zeros(2, 3, 4)  # N = 2 inputs, L = 3 positions, V = 4 tokens
        >>> logits[0, 1, 3] = 2.0  # row 0 is [5, 6, pad]: its last real token is at position 1
        >>> logits[1, 2, 1] = 5.0  # row 1 has no padding: position 2
        >>> fn(logits, torch.tensor([0, 1]), torch.tensor([[5, 6, 0], [5, 6, 7]]))
        tensor([2., 5.])
    """
    from lightning_interactions.engine._last_token import LastTokenLogOdds  # it reads this module

    return LastTokenLogOdds(label_token_ids, pad_token_id)


_OUTPUTS: dict[str, OutputFn] = {
    "log_odds": log_odds,
    "gt_log_odds": log_odds,
    "logit": binary_logit,
    "binary_logit": binary_logit,
    "regression": regression,
}


def resolve_output(spec: str | OutputFn) -> OutputFn:
    """Return the output function for a name (``"log_odds"``, ``"logit"``, ``"regression"``) or a callable.

    Names are case-insensitive and ``-`` counts as ``_``; ``"gt-log-odds"`` and
    ``"binary_logit"`` are accepted as aliases.

    Example:
        >>> resolve_output("log-odds") is log_odds
        True
    """
    if isinstance(spec, str):
        key = spec.strip().lower().replace("-", "_")
        if key not in _OUTPUTS:
            raise ValueError(
                f"unknown output {spec!r}; expected one of 'log_odds', 'logit', 'regression' "
                "or a callable fn(model_output, targets) -> (N,)"
            )
        return _OUTPUTS[key]
    if callable(spec):
        return spec
    raise TypeError(
        f"output must be a name or a callable fn(model_output, targets), got {type(spec).__name__}"
    )


def check_output_values(values: object, expected_n: int) -> None:
    """Raise unless an output function gave one floating-point scalar per sample, shape ``(expected_n,)``.

    Example:
        >>> check_output_values(torch.zeros(4), 4)
        >>> check_output_values(torch.zeros(4, 2), 4)
        Traceback (most recent call last):
        ...
        ValueError: the output function must return one scalar per masked input, shape (4,); got shape (4, 2)
    """
    if not isinstance(values, Tensor):
        raise TypeError(
            f"the output function must return a tensor of shape ({expected_n},), got {type(values).__name__}"
        )
    if tuple(values.shape) != (expected_n,):
        raise ValueError(
            f"the output function must return one scalar per masked input, shape ({expected_n},); "
            f"got shape {tuple(values.shape)}"
        )
    if not values.is_floating_point():
        raise TypeError(f"the output function must return floating-point values, got dtype {values.dtype}")


def __getattr__(name: str) -> object:
    """``_LastTokenLogOdds``: the name under which earlier releases pickled ``last_token_log_odds``'s
    output, now :class:`~lightning_interactions.engine._last_token.LastTokenLogOdds`."""
    if name == "_LastTokenLogOdds":
        from lightning_interactions.engine._last_token import LastTokenLogOdds

        return LastTokenLogOdds
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
