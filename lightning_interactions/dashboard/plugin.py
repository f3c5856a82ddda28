"""TensorBoard's "Interactions" tab: a dynamic plugin that serves the dashboard from the log directory.

Registered under the ``tensorboard_plugins`` entry point (``pyproject.toml``), so that
``tensorboard --logdir X`` shows the tab wherever a run under ``X`` holds a monitor history file.
Its routes, under ``/data/plugin/interactions``:

* ``/index.js`` and ``/style.css``: the page's ES module
  (:func:`~lightning_interactions.dashboard.page.module_source`) and style;
* ``/runs``: ``[{"run": name, "monitors": [history file, ...]}, ...]``;
* ``/data?run=NAME``: :func:`~lightning_interactions.dashboard.data.run_payload` of that run.

It reads only files under the log directory TensorBoard was given: a run name with ``..``, an
absolute path or a backslash is answered 400, one that is not a run of the log directory (a
symbolic link out of it included) 404.

Example:
    >>> import tempfile
    >>> from tensorboard.plugins import base_plugin
    >>> plugin = InteractionsPlugin(base_plugin.TBContext(logdir=tempfile.mkdtemp()))
    >>> plugin.is_active(), sorted(plugin.get_plugin_apps())
    (False, ['/data', '/index.js', '/runs', '/style.css'])
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Callable

from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from lightning_interactions.dashboard.data import run_payload
from lightning_interactions.dashboard.page import module_source, static_text
from lightning_interactions.dashboard.runs import (
    UnknownRun,
    UnsafeRunName,
    find_runs,
    history_files,
    resolve_run,
)

__all__ = ["PLUGIN_NAME", "InteractionsPlugin", "InteractionsLoader"]

PLUGIN_NAME = "interactions"
_TYPES = {"index.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"}


def _respond(body: str, mimetype: str, status: int = 200) -> wrappers.Response:
    response = wrappers.Response(body, status=status, mimetype=mimetype.split(";")[0])
    response.headers["Content-Type"] = mimetype
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


def _json(value: Any, status: int = 200) -> wrappers.Response:
    return _respond(json.dumps(value, allow_nan=False), "application/json; charset=utf-8", status)


def _error(message: str, status: int) -> wrappers.Response:
    return _respond(message, "text/plain; charset=utf-8", status)


class InteractionsPlugin(base_plugin.TBPlugin):
    """The Interactions tab (see the module); ``context.logdir`` is the only folder it reads."""

    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext) -> None:
        self._logdir = context.logdir or None
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def _local_logdir(self) -> Path | None:
        """The log directory if it is a local folder (TensorBoard also takes ``gs://`` and the like)."""
        if not self._logdir or "://" in str(self._logdir):
            return None
        path = Path(os.path.expanduser(str(self._logdir)))
        return path if path.is_dir() else None

    def is_active(self) -> bool:
        """Whether some run under the log directory holds a monitor history file."""
        logdir = self._local_logdir()
        return logdir is not None and bool(find_runs(logdir))

    def frontend_metadata(self) -> base_plugin.FrontendMetadata:
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Interactions")

    def get_plugin_apps(self) -> dict[str, Callable[..., Any]]:
        return {
            "/index.js": self._serve_static,
            "/style.css": self._serve_static,
            "/runs": self._serve_runs,
            "/data": self._serve_data,
        }

    @wrappers.Request.application
    def _serve_static(self, request: wrappers.Request) -> wrappers.Response:
        name = request.path.rsplit("/", 1)[-1]
        if name not in _TYPES:
            return _error("not found", 404)
        return _respond(module_source() if name == "index.js" else static_text(name), _TYPES[name])

    @wrappers.Request.application
    def _serve_runs(self, request: wrappers.Request) -> wrappers.Response:
        logdir = self._local_logdir()
        if logdir is None:
            return _json([])
        runs = [
            {"run": name, "monitors": [path.name for path in history_files(folder, logdir)]}
            for name, folder in find_runs(logdir).items()
        ]
        return _json(runs)

    @wrappers.Request.application
    def _serve_data(self, request: wrappers.Request) -> wrappers.Response:
        logdir = self._local_logdir()
        name = request.args.get("run")
        if logdir is None:
            return _error("no local log directory", 404)
        if name is None:
            return _error("the query needs ?run=NAME", 400)
        try:
            folder = resolve_run(logdir, name)
        except UnsafeRunName as err:
            return _error(str(err), 400)
        except UnknownRun as err:
            return _error(str(err), 404)
        return _json(self._payload(name, folder, logdir))

    def _payload(self, name: str, folder: Path, logdir: Path) -> dict[str, Any]:
        """The run's payload, made again only when one of its files changed (it takes seconds)."""
        files = sorted(p for p in folder.iterdir() if p.name.startswith("interaction_") and p.is_file())
        key = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
        with self._lock:
            cached = self._cache.get(name)
            if cached is not None and cached[0] == key:
                return cached[1]
        payload = run_payload(folder, name, logdir)
        with self._lock:
            self._cache[name] = (key, payload)
        return payload


class InteractionsLoader(base_plugin.TBLoader):
    """Loads :class:`InteractionsPlugin` for TensorBoard (the entry point names this class).

    Example:
        >>> import tempfile
        >>> from tensorboard.plugins import base_plugin
        >>> InteractionsLoader().load(base_plugin.TBContext(logdir=tempfile.mkdtemp())).plugin_name
        'interactions'
    """

    def load(self, context: base_plugin.TBContext) -> InteractionsPlugin:
        return InteractionsPlugin(context)
