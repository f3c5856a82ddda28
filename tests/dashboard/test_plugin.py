"""TensorBoard's Interactions tab through TensorBoard's WSGI application: routes, path traversal, escaping.

The runs here are written with the monitor's own record and history functions (no training):
the payload against a trained run is ``dashboard/test_page.py``'s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from tensorboard.backend import application
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    SAMPLES_FILENAME,
    append_record,
    history_filename,
    save_samples,
)
from lightning_interactions.analysis.phases import PhaseTracker
from lightning_interactions.analysis.record import build_record
from lightning_interactions.dashboard import page_html
from lightning_interactions.dashboard.page import json_for_html
from lightning_interactions.dashboard.plugin import InteractionsLoader, InteractionsPlugin

PREFIX = "/data/plugin/interactions"
HOSTILE = "<script>document.title='pwned'</script>"


def write_token_run(folder: Path, prefix: str = "interactions") -> Path:
    """A three-epoch history whose last epoch has an emerging AND of two tokens, one of them hostile."""
    tracker, zeros = PhaseTracker(patience=1), torch.zeros(1, 4, dtype=torch.float64)
    path = folder / history_filename(prefix)
    for epoch, values in enumerate([[0, 1.0, 1.0, 3.0], [0, 1.0, 1.0, 0.0], [0, 1.0, 1.0, 2.0]]):
        I_and = torch.tensor([values], dtype=torch.float64)
        record = build_record(epoch, I_and, zeros, torch.zeros(1), tracker)
        record.update(train_loss=1.0 - 0.1 * epoch, val_loss=1.1)
        append_record(path, record)
    layout = {"kind": "tokens", "text": [[HOSTILE, "a", "<img src=x onerror=alert(1)>", "b"]]}
    players = {"positions": torch.tensor([[0, 2]])}
    save_samples(folder / SAMPLES_FILENAME, torch.tensor([[5, 6, 7, 8]]), None, players, layout)
    return path


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    root = tmp_path / "logs"
    for name in ("run_a", "nested/run_b"):
        (root / name).mkdir(parents=True)
        write_token_run(root / name)
    write_token_run(root / "run_a", "interactions/train")
    (root / "no_history").mkdir()
    return root


def client_for(logdir: Path) -> Client:
    plugin = InteractionsLoader().load(base_plugin.TBContext(logdir=str(logdir)))
    return Client(application.TensorBoardWSGI([plugin]))


def test_routes_list_runs_and_serve_their_payload(logdir: Path) -> None:
    client = client_for(logdir)
    runs = client.get(f"{PREFIX}/runs")
    assert runs.status_code == 200 and runs.mimetype == "application/json"
    listing = json.loads(runs.get_data(as_text=True))
    assert [run["run"] for run in listing] == ["nested/run_b", "run_a"]
    assert listing[1]["monitors"] == [HISTORY_FILENAME, "interaction_history_interactions_train.jsonl"]

    data = client.get(f"{PREFIX}/data", query_string={"run": "run_a"})
    assert data.status_code == 200
    payload = json.loads(data.get_data(as_text=True))
    assert payload["run"] == "run_a"
    assert [m["monitor"] for m in payload["monitors"]] == ["interactions", "interactions_train"]
    monitor = payload["monitors"][0]
    assert monitor["epochs"] == [0, 1, 2]
    # The emerging AND of players 0 and 1 at the last epoch, drawn on the tokens at positions 0 and 2.
    assert [change[:3] for change in monitor["emerging"][2]] == [[0, "and", [0, 1]]]
    assert monitor["samples"]["0"] == {
        "kind": "tokens",
        "tokens": [HOSTILE, "a", "<img src=x onerror=alert(1)>", "b"],
        "positions": [0, 2],
    }


def test_static_files_and_the_iframe_entry(logdir: Path) -> None:
    client = client_for(logdir)
    script = client.get(f"{PREFIX}/index.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "export async function render()" in script.get_data(as_text=True)
    assert client.get(f"{PREFIX}/style.css").mimetype == "text/css"
    entry = client.get("/data/plugin_entry.html", query_string={"name": "interactions"})
    assert entry.status_code == 200 and 'import("./index.js")' in entry.get_data(as_text=True)


def test_plugin_metadata_and_activity(logdir: Path, tmp_path: Path) -> None:
    plugin = InteractionsPlugin(base_plugin.TBContext(logdir=str(logdir)))
    metadata = plugin.frontend_metadata()
    assert (metadata.es_module_path, metadata.tab_name) == ("/index.js", "Interactions")
    assert plugin.is_active()
    (tmp_path / "empty").mkdir()
    assert not InteractionsPlugin(base_plugin.TBContext(logdir=str(tmp_path / "empty"))).is_active()
    assert not InteractionsPlugin(base_plugin.TBContext(logdir=None)).is_active()


@pytest.mark.parametrize(
    "name, status",
    [
        ("../logs/run_a", 400),
        ("run_a/../../logs/run_a", 400),
        ("..", 400),
        ("/etc", 400),
        ("run_a\\..\\..", 400),
        ("nope", 404),
        ("no_history", 404),
    ],
)
def test_names_that_leave_the_logdir_or_are_no_run_are_refused(logdir: Path, name: str, status: int) -> None:
    response = client_for(logdir).get(f"{PREFIX}/data", query_string={"run": name})
    assert response.status_code == status


def test_absolute_path_of_a_run_outside_and_a_missing_name_are_refused(logdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write_token_run(outside)
    client = client_for(logdir)
    assert client.get(f"{PREFIX}/data", query_string={"run": str(outside)}).status_code == 400
    assert client.get(f"{PREFIX}/data").status_code == 400
    # Percent-encoded dots are decoded before the check.
    assert client.get(f"{PREFIX}/data?run=%2e%2e%2foutside").status_code == 400


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="no symbolic links here")
def test_symbolic_links_out_of_the_logdir_are_not_followed(logdir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    write_token_run(outside)
    (logdir / "linked").symlink_to(outside, target_is_directory=True)
    (logdir / "run_c").mkdir()
    (logdir / "run_c" / HISTORY_FILENAME).symlink_to(outside / HISTORY_FILENAME)
    client = client_for(logdir)
    names = [run["run"] for run in json.loads(client.get(f"{PREFIX}/runs").get_data(as_text=True))]
    assert "linked" not in names and "run_c" not in names
    for name in ("linked", "run_c"):
        assert client.get(f"{PREFIX}/data", query_string={"run": name}).status_code == 404


def test_the_page_embeds_data_that_cannot_close_its_script(logdir: Path) -> None:
    assert "</" not in json_for_html({"token": "</script><!--"})
    page = page_html(logdir)
    assert page.lower().count("</script") == 2  # the payload's and the module's own
    assert HOSTILE not in page and "<img src=x" not in page
    start = page.index('id="interactions-payload">') + len('id="interactions-payload">')
    embedded = json.loads(page[start : page.index("</script>", start)])
    assert embedded["runs"][1]["monitors"][0]["samples"]["0"]["tokens"][0] == HOSTILE


def test_a_logdir_that_is_itself_a_run(logdir: Path) -> None:
    client = client_for(logdir / "run_a")
    listing = json.loads(client.get(f"{PREFIX}/runs").get_data(as_text=True))
    assert [run["run"] for run in listing] == ["."]
    response = client.get(f"{PREFIX}/data", query_string={"run": "."})
    assert response.status_code == 200 and json.loads(response.get_data(as_text=True))["run"] == "."
