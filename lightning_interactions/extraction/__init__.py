"""The certified AND-OR extraction (``docs/theory.md`` section 1, ``docs/extraction.md``).

``transforms``: the ``O(n 2^n)`` AND/OR butterflies; ``and_or``: the extraction LP solved by
column generation to a certified gap, its rounds' state and steps in ``_column_generation``;
``_master``: the restricted problems, solved by ``_interior_point`` (Mehrotra's primal-dual
method); ``_gram``: their Gram matrices from interval sums; ``_row_space``: dense optima through
the dual; ``_certificate``: the lower bounds; ``_null_players``: players no output depends on,
taken out first; ``_threads``: the threads it computes on.
"""

from lightning_interactions.extraction.and_or import (
    AndOrResult,
    and_or_interactions,
    dual_lower_bound,
    extraction_objective,
)

__all__ = ["AndOrResult", "and_or_interactions", "dual_lower_bound", "extraction_objective"]
