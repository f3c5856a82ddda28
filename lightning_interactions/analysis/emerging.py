"""What the network started to learn after the onset, and what it had discarded before it.

The ranking (``docs/theory.md``, "Emerging and discarded interactions"): for the onset epoch
``o`` (the phase tracker's ``onset_epoch``; before the alert, the epoch of the smallest
complexity so far) and the last measured epoch ``e``, every interaction ``(x, kind, S)`` in the
last record's salient list of sample ``x`` has the growth

    growth = (|I_e(S | x)| - |I_o(S | x)|) / span_e(x),    span_e(x) = sum_S |I_e(S | x)| (AND and OR)

(``span_e = 0`` counts as 1). The emerging interactions are those with ``growth > 0``, orders
``>= 2`` first, then by growth, largest first. The discarded ones are the mirror image: those in
the *first* record's lists (epoch ``f < o``) with ``decline = (|I_f| - |I_o|) / span_f > 0``.

``I_o`` comes from the full interactions of the onset epoch when they are given (the monitor
saves them as ``interaction_onset.pt``, residue removed with the record's ``tol`` here), else
from the onset record's salient list: an interaction it lists has its value; one it does not
list is 0 when the list is complete, else unknown (``value_onset`` None), and then its
``|I_o|`` is taken as the list's smallest ``|I|``, an upper bound, so growth and decline are
lower bounds.

Example:
    >>> import torch
    >>> from lightning_interactions.analysis.phases import PhaseTracker
    >>> from lightning_interactions.analysis.record import build_record
    >>> tracker, z = PhaseTracker(patience=1), torch.zeros(1, 4)
    >>> history = [build_record(e, torch.tensor([a]), z, torch.zeros(1), tracker)
    ...            for e, a in enumerate([[0, 1.0, 1.0, 3.0], [0, 1.0, 1.0, 0.0], [0, 1.0, 1.0, 2.0]])]
    >>> emerging_interactions(history)[0].as_json("onset", "end")  # doctest: +NORMALIZE_WHITESPACE
    {'sample': 0, 'kind': 'and', 'players': [0, 1], 'order': 2, 'value_onset': 0.0,
     'value_end': 2.0, 'growth': 0.5}
    >>> [(c.players, c.change) for c in discarded_interactions(history)]
    [([0, 1], 0.6)]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from lightning_interactions.analysis.phases import alert_of
from lightning_interactions.analysis.salient import full_value, listed_value
from lightning_interactions.analysis.strength import drop_residue

__all__ = [
    "Change",
    "onset_of",
    "emerging_interactions",
    "discarded_interactions",
    "Comparison",
    "compare_run",
    "changes_markdown",
]

History = Sequence[Mapping[str, Any]]
Record = Mapping[str, Any]
Full = Mapping[str, Any]  # {"epoch", "I_and", "I_or"}, as saved by save_reference
LIMIT = 10


@dataclass(frozen=True)
class Change:
    """One interaction of one sample, its value at two epochs and the change the ranking uses.

    ``value_from`` is at the earlier epoch, ``value_to`` at the later; for an emerging
    interaction ``change`` is its growth (from the onset to the end), for a discarded one its
    decline (from the first measurement to the onset). A value None is not known.
    """

    sample: int
    kind: str
    players: list[int]
    order: int
    value_from: float | None
    value_to: float | None
    change: float

    def as_json(self, first: str, second: str) -> dict[str, Any]:
        """The summary's entry: ``value_<first>`` and ``value_<second>`` for the two epochs."""
        name = "growth" if second == "end" else "decline"
        return {
            "sample": self.sample,
            "kind": self.kind,
            "players": list(self.players),
            "order": self.order,
            f"value_{first}": self.value_from,
            f"value_{second}": self.value_to,
            name: round(self.change, 6),
        }


def onset_of(history: History) -> int | None:
    """The onset the ranking starts from: the tracker's onset, else the first complexity minimum."""
    if not history:
        return None
    onset = alert_of(history)[1]
    if onset is None:
        onset = min(history, key=lambda r: float(r["complexity"]))["epoch"]
    return int(onset)


def _cleaned(full: Full | None, onset: Record) -> dict[str, Tensor] | None:
    """The onset's full interactions with residue removed, if they are the onset record's."""
    if full is None or int(full.get("epoch", -1)) != int(onset["epoch"]):
        return None
    if full["I_and"].shape[0] != int(onset["num_samples"]):
        return None
    tol = float(onset.get("tol", 0.01))
    I_and, I_or = drop_residue(full["I_and"].double(), full["I_or"].double(), tol)
    return {"I_and": I_and, "I_or": I_or}


def _value_at(onset: Record, full: Mapping[str, Tensor] | None, row: int, kind: str, players: list[int]):
    if full is not None:
        value = full_value(full, row, kind, players)
        return value, abs(value)
    return listed_value(onset, row, kind, players)


def _changes(source: Record, onset: Record, full: Mapping[str, Tensor] | None, later: bool) -> list[Change]:
    """Changes of the interactions listed in ``source`` against the onset, ranked, positive only."""
    found = []
    for row, entries in enumerate(source["salient"]):
        span = abs(float(source["output_span"][row])) or 1.0
        for kind, players, order, value in entries:
            value_onset, bound = _value_at(onset, full, row, kind, list(players))
            change = (abs(float(value)) - bound) / span
            if change <= 0:
                continue
            pair = (value_onset, float(value)) if later else (float(value), value_onset)
            found.append(Change(row, kind, list(players), int(order), *pair, change))
    return sorted(found, key=lambda c: (c.order < 2, -c.change, c.sample, c.kind, c.players))


def _onset_record(history: History, onset_epoch: int | None) -> Record | None:
    """The record of the onset (``onset_epoch``, else :func:`onset_of`) if it has salient lists."""
    onset_epoch = onset_of(history) if onset_epoch is None else onset_epoch
    onset = next((r for r in history if r["epoch"] == onset_epoch), None)
    return onset if onset is not None and "salient" in onset else None


def _comparable(record: Record | None, onset: Record | None) -> bool:
    return (
        record is not None
        and onset is not None
        and "salient" in record
        and record["num_samples"] == onset["num_samples"]
        and record["epoch"] != onset["epoch"]
    )


def emerging_interactions(
    history: History, onset: Full | None = None, *, onset_epoch: int | None = None, limit: int = LIMIT
) -> list[Change]:
    """The ``limit`` interactions of the last record that grew most since the onset (see module)."""
    reference = _onset_record(history, onset_epoch)
    end = history[-1] if history else None
    if not _comparable(end, reference) or end["epoch"] < reference["epoch"]:
        return []
    return _changes(end, reference, _cleaned(onset, reference), later=True)[:limit]


def discarded_interactions(
    history: History, onset: Full | None = None, *, onset_epoch: int | None = None, limit: int = LIMIT
) -> list[Change]:
    """The ``limit`` interactions of the first record that had declined most by the onset."""
    reference = _onset_record(history, onset_epoch)
    first = history[0] if history else None
    if not _comparable(first, reference) or first["epoch"] > reference["epoch"]:
        return []
    return _changes(first, reference, _cleaned(onset, reference), later=False)[:limit]


@dataclass(frozen=True)
class Comparison:
    """A run's emerging and discarded interactions and the epochs they compare."""

    emerging: list[Change]
    discarded: list[Change]
    epochs: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The three keys of ``summary.json``: emerging, discarded, and the epochs compared."""
        return {
            "emerging_interactions": [c.as_json("onset", "end") for c in self.emerging],
            "discarded_interactions": [c.as_json("start", "onset") for c in self.discarded],
            "interactions_compared": dict(self.epochs),
        }

    def markdown(self) -> str:
        """The two tables as markdown (:func:`changes_markdown`)."""
        return changes_markdown(self.emerging, self.discarded, self.epochs)


def compare_run(history: History, onset: Full | None = None, limit: int = LIMIT) -> Comparison:
    """The emerging and discarded interactions of a history, and where the onset values came from."""
    reference = _onset_record(history, None)
    exact = reference is not None and _cleaned(onset, reference) is not None
    epochs = {
        "start_epoch": int(history[0]["epoch"]) if history else None,
        "onset_epoch": onset_of(history),
        "end_epoch": int(history[-1]["epoch"]) if history else None,
        "onset_values": "full interactions of the onset" if exact else "salient lists of the records",
    }
    return Comparison(
        emerging_interactions(history, onset, limit=limit),
        discarded_interactions(history, onset, limit=limit),
        epochs,
    )


def _fmt(value: float | None) -> str:
    return "?" if value is None else f"{value:+.3g}"


def _table(changes: Sequence[Change], first: str, second: str, change: str) -> list[str]:
    lines = [
        f"| sample | kind | players | order | {first} | {second} | {change} |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in changes:
        values = f"{_fmt(c.value_from)} | {_fmt(c.value_to)} | {c.change:.3g}"
        players = "{" + ", ".join(str(player) for player in c.players) + "}"  # a set, as the figures write it
        lines.append(f"| {c.sample} | {c.kind.upper()} | {players} | {c.order} | {values} |")
    if not changes:
        lines.append("| - | none | | | | | |")
    return lines


def changes_markdown(
    emerging: Sequence[Change], discarded: Sequence[Change], epochs: Mapping[str, Any]
) -> str:
    """A markdown table of the emerging and the discarded interactions (players as indices)."""
    lines = [
        f"**Interactions that grew from the onset (epoch {epochs.get('onset_epoch')}) to epoch "
        f"{epochs.get('end_epoch')}**, orders >= 2 first (growth relative to |v(N) - v(empty)|):",
        "",
        *_table(emerging, "at onset", "at end", "growth"),
    ]
    if discarded:
        lines += [
            "",
            f"Discarded in phase 1 (strong at epoch {epochs.get('start_epoch')}, weaker by the onset):",
            "",
            *_table(discarded, "at start", "at onset", "decline"),
        ]
    return "\n".join(lines) + "\n"
