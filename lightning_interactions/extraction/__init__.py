"""The certified AND-OR extraction (``docs/theory.md`` section 3, ``docs/extraction.md``).

``transforms``: the ``O(n 2^n)`` AND/OR butterflies; ``and_or``: the extraction LP solved by
column generation to a certified gap; ``_interior_point``: the restricted master problem's
primal-dual interior-point solver; ``_gram``: its Gram matrices from interval sums.
"""

from lightning_interactions.extraction.and_or import (
    AndOrResult,
    and_or_interactions,
    dual_lower_bound,
    extraction_objective,
)

__all__ = ["AndOrResult", "and_or_interactions", "dual_lower_bound", "extraction_objective"]
