"""The Interactions dashboard: a TensorBoard tab and the same page as one self-contained HTML file.

* :func:`write_page` / :func:`page_html`: the page of the runs under a folder, offline (``report.html``);
* :func:`dashboard_payload`: the data it draws, as JSON-able values;
* :mod:`lightning_interactions.dashboard.plugin`: TensorBoard's "Interactions" tab.

Example:
    >>> import tempfile
    >>> dashboard_payload(tempfile.mkdtemp())
    {'runs': []}
"""

from lightning_interactions.dashboard.data import dashboard_payload, monitor_payload, run_payload
from lightning_interactions.dashboard.page import page_html, payload_html, write_page

__all__ = ["dashboard_payload", "monitor_payload", "run_payload", "page_html", "payload_html", "write_page"]
