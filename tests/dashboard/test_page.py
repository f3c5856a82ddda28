"""The dashboard on a real monitored run: its payload against the run's history, and the page and the
TensorBoard tab opened in headless Chromium (no console error, charts that hold data, hostile text shown).

The browser tests are skipped only where no Chromium is installed (``.ci/run`` installs Debian's).
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from lightning_interactions.analysis.emerging import compare_run
from lightning_interactions.analysis.history import (
    HISTORY_FILENAME,
    ONSET_FILENAME,
    SAMPLES_FILENAME,
    append_record,
    beside_history,
    load_reference,
    read_history,
    save_samples,
)
from lightning_interactions.analysis.phases import PhaseTracker, alert_of
from lightning_interactions.analysis.record import build_record
from lightning_interactions.dashboard import dashboard_payload, write_page

TRAIN_FILE = "interaction_history_interactions_train.jsonl"
CHROMIUM = next(
    (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six epochs of the digits MLP with a validation monitor and a training-split monitor (a few seconds)."""
    pytest.importorskip("sklearn")
    import lightning.pytorch as pl
    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_interactions import InteractionMonitor, PatchMasker
    from lightning_interactions.demos import DigitsClassifier, TensorDataModule
    from lightning_interactions.demos.digits import load_digits_split

    root = tmp_path_factory.mktemp("dashboard") / "logs"
    data = load_digits_split(60, 40, 0.25, 0)
    pl.seed_everything(0, verbose=False)
    masker = PatchMasker(patch_size=2, num_players=5)
    monitors = [
        InteractionMonitor(masker, num_samples=4, log_figures=False),
        InteractionMonitor(masker, num_samples=3, split="train", every_n_epochs=2, log_figures=False),
    ]
    trainer = pl.Trainer(
        max_epochs=6,
        callbacks=monitors,
        logger=TensorBoardLogger(str(root), name="digits", version="tiny"),
        enable_progress_bar=False,
        enable_model_summary=False,
        enable_checkpointing=False,
        accelerator="cpu",
    )
    datamodule = TensorDataModule(
        data["x_train"], data["y_train"], data["x_val"], data["y_val"], batch_size=16
    )
    trainer.fit(DigitsClassifier(hidden=32), datamodule=datamodule)
    return Path(trainer.log_dir)


def test_payload_follows_the_history_of_both_monitors(run_dir: Path) -> None:
    payload = dashboard_payload(run_dir.parent.parent)
    json.dumps(payload, allow_nan=False)  # strict JSON
    (run,) = [run for run in payload["runs"] if run["run"] == "digits/tiny"]
    assert [m["file"] for m in run["monitors"]] == [HISTORY_FILENAME, TRAIN_FILE]
    for monitor in run["monitors"]:
        check_monitor(monitor, run_dir / monitor["file"])


def check_monitor(monitor: dict, path: Path) -> None:
    history = read_history(path)
    assert monitor["epochs"] == [r["epoch"] for r in history] and len(history) >= 3
    for i, record in enumerate(history):
        total = sum(record["strength"])
        assert monitor["share"][i] == pytest.approx(
            [s / total for s in record["strength"]], rel=1e-3, abs=1e-6
        )
        assert monitor["complexity"][i] == pytest.approx(record["complexity"], rel=1e-3)
        train, val = record.get("train_loss"), record.get("val_loss")
        if train is not None and val is not None:
            assert monitor["gap"][i] == pytest.approx(val - train, rel=1e-3, abs=1e-6)
        assert len(monitor["predicted"][i]) == record["num_players"]
    assert (monitor["alert_epoch"], monitor["onset_epoch"]) == alert_of(history)
    val_losses = [(r["val_loss"], r["epoch"]) for r in history if r.get("val_loss") is not None]
    assert monitor["best_val_epoch"] == (min(val_losses)[1] if val_losses else None)
    assert monitor["summary"].startswith("## Interaction report")
    check_emerging(monitor, history, path)


def check_emerging(monitor: dict, history: list[dict], path: Path) -> None:
    """Each epoch's list is compare_run's on the history up to it; each sample's players are drawn."""
    onset = beside_history(path, ONSET_FILENAME)
    full = load_reference(onset) if onset.is_file() else None
    for end, listed in enumerate(monitor["emerging"], start=1):
        expected = compare_run(history[:end], full).emerging[: len(listed)]
        assert [c[:4] for c in listed] == [[c.sample, c.kind, c.players, c.order] for c in expected]
    assert any(monitor["emerging"]), "a six-epoch run has interactions that grew since its onset"
    saved = load_reference(beside_history(path, SAMPLES_FILENAME))
    height, width = saved["inputs"].shape[-2:]
    for key, drawing in monitor["samples"].items():
        assert drawing["kind"] == "patches"
        image = drawing["image"]
        assert (image["height"], image["width"]) == (height, width)
        assert all(0.0 <= p <= 1.0 for row in image["pixels"] for p in row)
        cols = width // 2
        expected = [
            [2 * (p % cols), 2 * (p // cols), 2, 2] for p in saved["players"]["patches"][int(key)].tolist()
        ]
        assert drawing["regions"] == expected


def test_report_command_writes_the_page(run_dir: Path, tmp_path: Path) -> None:
    from lightning_interactions.cli import main

    assert main(["report", str(run_dir), "--out", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "digits" in page or "tiny" in page
    assert "interactions-payload" in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")


# ---------- headless Chromium ----------


def chromium(url: str, tmp_path: Path, budget_ms: int = 8000) -> tuple[str, str]:
    """``(DOM after the scripts ran, Chromium's log)`` of ``url``."""
    profile = tmp_path / f"profile-{time.monotonic_ns()}"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--window-size=1400,900",
        f"--virtual-time-budget={budget_ms}", "--dump-dom", url,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return done.stdout, done.stderr


def assert_drawn(dom: str, log: str, monitors: int) -> None:
    """No error reached the console or the page, and every monitor's charts hold data."""
    console = [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert not console, console
    assert 'id="dashboard-error"' not in dom
    assert 'data-ready="true"' in dom
    assert dom.count('class="monitor"') == monitors
    for series in ("series complexity", "series train", "series val", "series predicted"):
        paths = re.findall(rf'<path d="M[\d.,LM-]+L[\d.,LM-]+"[^>]*class="{series}"', dom)
        assert len(paths) == monitors, (series, len(paths))
    assert dom.count('class="area"') >= monitors * 2
    assert dom.count('class="bar"') >= monitors * 2


@needs_chromium
def test_page_opens_offline_with_every_chart_drawn(run_dir: Path, tmp_path: Path) -> None:
    page = write_page(run_dir, tmp_path / "report.html")
    dom, log = chromium(page.as_uri(), tmp_path)
    assert_drawn(dom, log, monitors=2)
    assert 'class="player chosen"' in dom  # the emerging interactions on their digits


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def logs(run_dir: Path) -> Path:
    """The trained run's log directory, with a second run whose name and tokens are hostile markup."""
    root = run_dir.parent.parent
    write_hostile_tokens(root / "<em>bold")
    return root


@pytest.fixture(scope="module")
def tensorboard(logs: Path, tmp_path_factory: pytest.TempPathFactory):
    """The base URL of a TensorBoard on loopback over ``logs``, stopped after the module's tests."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logs), "--host", "127.0.0.1",
               "--port", str(port), "--reload_interval", "0"]  # fmt: skip
    log_path = tmp_path_factory.mktemp("tensorboard") / "tensorboard.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield wait_for(f"http://127.0.0.1:{port}", log_path)
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_for(url: str, log_path: Path) -> str:
    """``url`` once TensorBoard answers the Interactions routes there (a minute at most)."""
    for _ in range(120):
        try:
            with urllib.request.urlopen(f"{url}/data/plugin/interactions/runs", timeout=2) as answer:
                if answer.status == 200:
                    return url
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"TensorBoard did not start:\n{log_path.read_text()[-3000:]}")


@needs_chromium
def test_tensorboard_tab_draws_the_runs(tensorboard: str, tmp_path: Path) -> None:
    with urllib.request.urlopen(f"{tensorboard}/data/plugins_listing") as answer:
        listing = json.load(answer)
    assert listing["interactions"]["enabled"] and listing["interactions"]["tab_name"] == "Interactions"
    # The document TensorBoard puts in the tab's iframe, with TensorBoard's own security policy.
    dom, log = chromium(f"{tensorboard}/data/plugin_entry.html?name=interactions", tmp_path, budget_ms=15000)
    assert_drawn(dom, log, monitors=3)  # the trained run's two, the hostile run's one
    assert "digits/tiny" in dom


def write_two_player_run(folder: Path, inputs: torch.Tensor, players: dict, layout: dict) -> None:
    """Three epochs of one sample whose last has an emerging AND of its two players, and the sample."""
    folder.mkdir(parents=True, exist_ok=True)
    tracker, zeros = PhaseTracker(patience=1), torch.zeros(1, 4, dtype=torch.float64)
    for epoch, values in enumerate([[0, 1.0, 1.0, 3.0], [0, 1.0, 1.0, 0.0], [0, 1.0, 1.0, 2.0]]):
        I_and = torch.tensor([values], dtype=torch.float64)
        record = build_record(epoch, I_and, zeros, torch.zeros(1), tracker)
        append_record(folder / HISTORY_FILENAME, {**record, "train_loss": 1.0 - 0.1 * epoch, "val_loss": 1.1})
    save_samples(folder / SAMPLES_FILENAME, inputs, None, players, layout)


def write_hostile_tokens(folder: Path) -> None:
    """The AND of the tokens at positions 0 and 2, both hostile."""
    text = [["<script>document.title='pwned'</script>", "a", "<img src=x onerror=alert(1)>", "b"]]
    layout = {"kind": "tokens", "text": text}
    write_two_player_run(folder, torch.tensor([[5, 6, 7, 8]]), {"positions": torch.tensor([[0, 2]])}, layout)


SIGNAL = {"kind": "signal", "groups": [[0, 1, 2], [3, 4], [5, 6, 11]], "feature_names": None}
FEATURES = {"kind": "features", "groups": [[0, 4], [1, 2]], "feature_names": ["age", "bmi", "bp", "s1", "s2"]}
LAYOUTS = {
    "rgb_patches": (
        torch.rand(1, 3, 96, 64),
        {"patches": torch.tensor([[0, 23]])},
        {"kind": "patches", "patch_size": [16, 16]},
    ),
    "signal": (torch.randn(1, 2, 12), {"groups": torch.tensor([[0, 2]])}, SIGNAL),
    "features": (torch.randn(1, 5), {"groups": torch.tensor([[1, 0]])}, FEATURES),
    "point_clouds": (
        torch.rand(1, 50, 3),
        {"clusters": torch.arange(50).remainder(3)[None]},
        {"kind": "point_clouds"},
    ),
    "custom": (torch.rand(1, 7), {}, {"kind": "table"}),
}
CHOSEN = {"rgb_patches": "player chosen", "signal": "player chosen", "features": "bar chosen",
          "point_clouds": "point chosen", "custom": '<table class="changes"'}  # fmt: skip


@needs_chromium
def test_every_layout_is_drawn(tmp_path: Path) -> None:
    for name, (inputs, players, layout) in LAYOUTS.items():
        write_two_player_run(tmp_path / "logs" / name, inputs, players, layout)
    page = write_page(tmp_path / "logs", tmp_path / "page.html")
    dom, log = chromium(page.as_uri(), tmp_path)
    assert not [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    assert 'data-ready="true"' in dom and 'id="dashboard-error"' not in dom
    assert dom.count('class="monitor"') == len(LAYOUTS)
    for name, chosen in CHOSEN.items():
        assert chosen in dom, name


@needs_chromium
def test_text_from_the_data_is_shown_not_run(logs: Path, tensorboard: str, tmp_path: Path) -> None:
    """A token ``<script>``, an ``<img onerror>`` and a run named ``<em>bold`` appear as text,
    in the page and in the tab."""
    page = write_page(logs / "<em>bold", tmp_path / "page.html")
    for address in (page.as_uri(), f"{tensorboard}/data/plugin_entry.html?name=interactions"):
        dom, log = chromium(address, tmp_path)
        assert 'data-ready="true"' in dom and 'id="dashboard-error"' not in dom, log[-2000:]
        assert "pwned" not in re.search(r"<title>(.*?)</title>|$", dom).group(0)
        assert "position 0: &lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # as text
        assert "position 2: &lt;img src=x onerror=alert(1)&gt;" in dom and "<img" not in dom
        assert "&lt;em&gt;bold" in dom and "<em>bold" not in dom


def test_alert_note_is_the_monitors_note_at_default_settings(tmp_path: Path) -> None:
    """The note the monitor would log online (its tracker at the alert) is the note the page shows."""
    from lightning_interactions.reporting.alert_note import alert_text

    tracker, history, note = PhaseTracker(wait_for_losses=True), [], None
    complexities = [3.0, 2.0, 1.0, 1.0, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8]
    for epoch, value in enumerate(complexities):
        I_and = torch.tensor([[0.0, 1.0, 1.0, value - 1.0]], dtype=torch.float64)
        record = build_record(epoch, I_and, torch.zeros_like(I_and), torch.zeros(1), tracker)
        history.append(record)
        if tracker.just_fired:
            note = alert_text(record, history, tracker)
        losses = {"train_loss": 1.0 - 0.08 * epoch, "val_loss": 1.0 + 0.05 * max(epoch - 4, 0)}
        tracker.add_losses(epoch, **losses)
        append_record(tmp_path / HISTORY_FILENAME, {**record, **losses})
    assert note is not None, "the synthetic run fires the alert"
    (monitor,) = dashboard_payload(tmp_path)["runs"][0]["monitors"]
    assert monitor["alert_note"] == note
    assert monitor["alert_epoch"] == tracker.alert_epoch and monitor["onset_epoch"] == tracker.onset_epoch


def test_alert_of_a_monitor_with_other_settings_gets_a_short_note(tmp_path: Path) -> None:
    write_hostile_tokens(tmp_path)  # its tracker had patience=1: the default replay does not fire there
    (monitor,) = dashboard_payload(tmp_path)["runs"][0]["monitors"]
    assert monitor["alert_epoch"] == 2
    assert monitor["alert_note"].startswith("**Over-fitting alert at epoch 2.** Phase 2 began at epoch 1")


def test_a_replay_given_is_the_replay_made(run_dir: Path) -> None:
    """The monitor's own replay, handed in, gives the page the shapes it would make itself."""
    from lightning_interactions.analysis.replay import replay_run

    path = run_dir / HISTORY_FILENAME
    history = read_history(path)
    reference = load_reference(beside_history(path, "interaction_reference.pt"))
    replay = replay_run(history, reference["I_and"], reference["I_or"])
    (given,) = dashboard_payload(path, replay)["runs"][0]["monitors"]
    (made,) = dashboard_payload(path)["runs"][0]["monitors"]
    assert given["predicted"] == made["predicted"] and given["prediction"] == made["prediction"]
    assert given["prediction"].startswith("reference replay")


def test_the_pages_alert_note_is_the_monitors_own_under_other_alert_settings() -> None:
    from lightning_interactions.analysis.phases import PhaseTracker, replay_tracker
    from lightning_interactions.analysis.record import build_record
    from lightning_interactions.dashboard.data import _alert_note
    from lightning_interactions.reporting.alert_note import alert_text

    # A rise of one measurement fires this tracker (patience 1, no loss gap), not the default one.
    online = PhaseTracker(margin=0.02, patience=1, gap_rise=None, wait_for_losses=True)
    history, note = [], None
    for epoch, weight in enumerate([1.0, 0.2, 0.1, 0.3, 0.35]):
        I_and = torch.tensor([[0.0, 1.0, 1.0, weight]], dtype=torch.float64)
        history.append(build_record(epoch, I_and, torch.zeros_like(I_and), torch.zeros(1), online))
        if online.just_fired:
            note = alert_text(history[-1], history, online)
    assert note is not None and history[-1]["alert_settings"]["patience"] == 1
    assert replay_tracker(history).alert_epoch == online.alert_epoch
    assert _alert_note(history) == note
