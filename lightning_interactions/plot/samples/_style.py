"""What every drawing of interactions on samples shares: colours, the panel title, the players' units.

AND interactions are drawn in blue with solid outlines, OR interactions in orange with dashed
outlines and hatching, the sample's other players in thin grey.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lightning_interactions.analysis.emerging import Change

KIND_COLOR = {"and": "tab:blue", "or": "tab:orange"}
KIND_LINESTYLE = {"and": "-", "or": "--"}
KIND_HATCH = {"and": None, "or": "//"}
OTHER_COLOR = "0.55"


def panel_title(change: Change) -> str:
    """``sample 3: AND {1, 4}  +2.1 (onset +0.05)``."""
    before = "?" if change.value_from is None else f"{change.value_from:+.3g}"
    after = "?" if change.value_to is None else f"{change.value_to:+.3g}"
    players = "{" + ", ".join(str(p) for p in change.players) + "}"
    return f"sample {change.sample}: {change.kind.upper()} {players}\n{after} (was {before})"


def units_of(players: Any, row: int, key: str) -> list[int]:
    """The units (patch, group, position) of every player of sample ``row``: ``players[key][row]``."""
    return [int(unit) for unit in players[key][row].tolist()]
