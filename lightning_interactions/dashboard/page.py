"""The dashboard as one self-contained HTML file: the script, the style and the data inlined.

The page draws exactly what TensorBoard's Interactions tab draws (the same script,
:func:`module_source`),
from the payload of :func:`~lightning_interactions.dashboard.data.dashboard_payload` embedded as
JSON; it fetches nothing, so it opens offline, as a W&B ``Html`` panel or as an MLflow artifact.

Example:
    >>> import tempfile
    >>> from lightning_interactions.analysis.history import append_record
    >>> run = Path(tempfile.mkdtemp())
    >>> append_record(run / "interaction_history.jsonl", {"epoch": 0, "shape": [1.0], "complexity": 1.0})
    >>> html = page_html(run)
    >>> html.startswith("<!DOCTYPE html>"), "</script><script" in json_for_html({"token": "</script><script"})
    (True, False)
    >>> write_page(run, run / "report.html").name
    'report.html'
"""

from __future__ import annotations

import html
import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

from lightning_interactions.analysis.replay import RunReplay
from lightning_interactions.dashboard.data import dashboard_payload

__all__ = [
    "SCRIPT_PARTS",
    "static_text",
    "module_source",
    "json_for_html",
    "payload_html",
    "page_html",
    "write_page",
]

# The dashboard's ES module, in parts of one job each (static/), joined in this order.
SCRIPT_PARTS = ("svg.js", "charts.js", "samples.js", "main.js")


def static_text(name: str) -> str:
    """The text of a file of the dashboard's ``static`` folder (``style.css``, ``svg.js``, ...)."""
    return resources.files("lightning_interactions.dashboard").joinpath("static", name).read_text("utf-8")


def module_source() -> str:
    """The dashboard's script: :data:`SCRIPT_PARTS` joined into one ES module.

    Example:
        >>> "export async function render()" in module_source()
        True
    """
    return "\n".join(static_text(name) for name in SCRIPT_PARTS)


def json_for_html(value: Any) -> str:
    """``value`` as JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` as ``\\u`` escapes.

    Example:
        >>> json_for_html({"a": "</script>"})
        '{"a": "\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _script(source: str) -> str:
    """The module's source as an inline script; it may hold no ``</script`` of its own."""
    if "</script" in source.lower() or "<!--" in source:
        raise ValueError("the dashboard's script holds '</script' or '<!--' and cannot be inlined")
    return source


def payload_html(payload: Any, title: str = "Interactions") -> str:
    """The page for a payload of :func:`~lightning_interactions.dashboard.data.dashboard_payload`.

    Example:
        >>> page = payload_html({"runs": []}, title="<none>")
        >>> "<title>&lt;none&gt;</title>" in page, page.count("<script type=")
        (True, 2)
    """
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{_script(static_text('style.css'))}\n"
        "body { margin: 0; }\n</style>\n</head>\n<body>\n"
        '<div id="interactions-root"></div>\n'
        f'<script type="application/json" id="interactions-payload">{json_for_html(payload)}</script>\n'
        f'<script type="module">\n{_script(module_source())}\n</script>\n'
        "</body>\n</html>\n"
    )


def page_html(
    source: str | os.PathLike[str], title: str | None = None, replay: RunReplay | None = None
) -> str:
    """The self-contained page of every run under ``source`` (a log directory, a run's folder or a
    history file), as a string (what ``wandb.Html`` takes).

    ``replay``: for a history file, its reference replay when already made (the monitor's
    ``replay`` at fit end), which spares making it again
    (:func:`~lightning_interactions.dashboard.data.monitor_payload`).

    Example:
        >>> import tempfile
        >>> "interactions-payload" in page_html(tempfile.mkdtemp())
        True
    """
    source = Path(source)
    return payload_html(dashboard_payload(source, replay), title or f"Interactions: {source.resolve().name}")


def write_page(source: str | os.PathLike[str], out_path: str | os.PathLike[str]) -> Path:
    """Write :func:`page_html` of ``source`` to ``out_path`` (folders made as needed); returns the path."""
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page_html(source), encoding="utf-8")
    return out
