"""Where a backend that stores files (MLflow artifacts, a CSV run's directory) puts a figure or a text.

One file per tag and step, so that every epoch's figure is kept: ``{folder}/{tag}/step_{step}.{suffix}``
with the tag's ``/`` written as ``.`` (one folder per tag) and the step zero-padded to six digits
(files sort by step).

Example:
    >>> artifact_file("figures", "interactions/shape_heatmap", 12, "png")
    'figures/interactions.shape_heatmap/step_000012.png'
    >>> artifact_file("text", "../x y", 3, "md")
    'text/x_y/step_000003.md'
"""

from __future__ import annotations

import re

__all__ = ["FIGURES", "PAGES", "TEXTS", "artifact_file"]

FIGURES = "figures"
TEXTS = "text"
PAGES = "pages"


def artifact_file(folder: str, tag: str, step: int, suffix: str) -> str:
    """The relative path (``/``-separated) of what is logged under ``tag`` at ``step``."""
    name = re.sub(r"[^\w.-]+", "_", tag.strip("/").replace("/", ".")).strip("._") or "untitled"
    return f"{folder}/{name}/step_{int(step):06d}.{suffix}"
