"""The MLflow, W&B and CSV backends in a real fit, read back with each tool's own reader.

One ``Trainer.fit`` (a 5-feature classifier, 3 epochs, 4 measured samples) logs through a real
``CSVLogger``, an ``MLFlowLogger`` on a local sqlite store and an offline ``WandbLogger``, all in
a temporary folder (no network: W&B runs with ``WANDB_MODE=offline``). The backends' methods are
spied on (the real method runs), so every tag, step, figure and text that the monitor sent is
known; each store must hold exactly that: MLflow's ``MlflowClient`` (metric histories, artifact
list, params), the W&B run file (its records, read with W&B's own protobuf ``Record``) and its
``files/media`` folder, and the CSV run's directory (``metrics.csv``, PNG and markdown files,
``hparams.yaml``). What the monitor sends (its tags, steps and the epochs with figures) is its
own business and tested elsewhere; here only a few invariants of it are checked.
"""

from __future__ import annotations

import csv
import inspect
import json
import struct
import subprocess
import sys
import textwrap
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
import yaml
from helpers.processes import distributed_free_env
from torch import nn

from lightning_interactions import InteractionMonitor, demos
from lightning_interactions.loggers import (
    CSVBackend,
    MetricsBackend,
    MLflowBackend,
    TensorBoardBackend,
    WandbBackend,
    _backend_classes,
    backend_for,
)
from lightning_interactions.loggers.artifacts import FIGURES, PAGES, TEXTS, artifact_file
from lightning_interactions.masking import FeatureMasker

pytest.importorskip("mlflow")
pytest.importorskip("wandb")
# mlflow's own use of SQLAlchemy, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:mlflow.*")

FEATURES, EPOCHS, PREFIX = 5, 3, "interactions/"
BACKENDS = (CSVBackend, MLflowBackend, WandbBackend)
SPIED = ("log_scalars", "log_image", "log_text", "log_page", "log_hparams")
PNG = b"\x89PNG\r\n\x1a\n"
# Logged by the test itself after the fit, through each backend: keys the monitor does not use.
EXTRA_PARAMS, EXTRA_METRICS = {"test/extra_param": "x"}, {"test/extra_metric": 0.5}
LATE_FIGURE = f"{PREFIX}test/late_figure"


@dataclass
class Run:
    monitor: InteractionMonitor
    loggers: dict[str, Any]
    calls: dict[str, dict[str, list[tuple]]]  # backend class name -> method -> argument tuples
    root: Path

    def sent(self, backend: type, method: str) -> list[tuple]:
        return self.calls[backend.__name__][method]

    def scalars(self, backend: type) -> dict[tuple[str, int], float]:
        """``(tag, step) -> value`` of the monitor's scalars sent to ``backend``."""
        points = {}
        for scalars, step in self.sent(backend, "log_scalars"):
            points.update({(tag, step): value for tag, value in scalars.items() if tag.startswith(PREFIX)})
        return points

    def figures(self, backend: type) -> list[tuple[str, int]]:
        return sorted((tag, step) for tag, _, step in self.sent(backend, "log_image"))

    def files(self, backend: type) -> set[str]:
        """The relative paths (``artifact_file``) of the figures and texts sent to ``backend``."""
        figures = {artifact_file(FIGURES, tag, step, "png") for tag, step in self.figures(backend)}
        texts = {artifact_file(TEXTS, tag, step, "md") for tag, _, step in self.sent(backend, "log_text")}
        pages = {artifact_file(PAGES, tag, step, "html") for tag, _, step in self.sent(backend, "log_page")}
        return figures | texts | pages

    def hparams(self, backend: type) -> tuple[dict[str, Any], dict[str, float]]:
        params, metrics = {}, {}
        for p, m, *_ in self.sent(backend, "log_hparams"):
            params.update(p)
            metrics.update(m)
        return params, metrics


def _spy(monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, list[tuple]]]:
    """Record the arguments of every call of the backends' methods; the real method still runs."""
    calls: dict[str, dict[str, list[tuple]]] = defaultdict(lambda: defaultdict(list))

    def spy(real: Any, log: list[tuple]) -> Any:
        def method(self, *args, **kwargs):
            log.append(tuple(inspect.signature(real).bind(self, *args, **kwargs).arguments.values())[1:])
            return real(self, *args, **kwargs)

        return method

    for backend in BACKENDS:
        for name in SPIED:
            monkeypatch.setattr(backend, name, spy(getattr(backend, name), calls[backend.__name__][name]))
    return calls


def _model_and_data() -> tuple[pl.LightningModule, pl.LightningDataModule]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(48, FEATURES, generator=generator)
    y = (x[:, 0] * x[:, 1] > 0).long()
    net = nn.Sequential(nn.Linear(FEATURES, 16), nn.Tanh(), nn.Linear(16, 2))
    model = demos.Classifier(net, optimizer="sgd", lr=0.3)
    return model, demos.TensorDataModule(x[:32], y[:32], x[32:], y[32:], batch_size=8)


def _offline_wandb(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """W&B offline, its settings, caches and runs in ``root`` (``WandbLogger`` sets WANDB_MODE itself)."""
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_GIT": "true"}
    env.update({"WANDB_DISABLE_CODE": "true", "WANDB_DIR": str(root)})
    for name in ("CONFIG", "CACHE", "DATA", "ARTIFACT"):
        env[f"WANDB_{name}_DIR"] = str(root / f"wandb_{name.lower()}")
    for name, value in env.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    import wandb
    from lightning.pytorch.loggers import CSVLogger, MLFlowLogger, WandbLogger
    from matplotlib.figure import Figure

    root = tmp_path_factory.mktemp("backends")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _offline_wandb(monkeypatch, root)
        calls = _spy(monkeypatch)
        loggers = {
            "csv": CSVLogger(str(root), name="csv", version=0),
            "mlflow": MLFlowLogger(
                experiment_name="interactions",
                tracking_uri=f"sqlite:///{root / 'mlflow.db'}",
                artifact_location=str(root / "mlflow_artifacts"),
            ),
            "wandb": WandbLogger(save_dir=str(root), offline=True, project="interactions"),
        }
        pl.seed_everything(0)
        monitor = InteractionMonitor(FeatureMasker(num_features=FEATURES), num_samples=4, on_error="raise")
        trainer = pl.Trainer(
            max_epochs=EPOCHS,
            logger=list(loggers.values()),
            callbacks=[monitor],
            default_root_dir=str(root),
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            log_every_n_steps=1,
        )
        model, data = _model_and_data()
        try:
            trainer.fit(model, datamodule=data)
            late = Figure()
            late.add_subplot().plot([0, 1], [1, 0])
            for logger in loggers.values():
                backend_for(logger).log_hparams(EXTRA_PARAMS, EXTRA_METRICS)
                # A figure of an earlier step after later ones (as the onset's at the alert): W&B's own
                # step only grows, the figure keeps its trainer/global_step.
                backend_for(logger).log_figure(LATE_FIGURE, late, 0)
        finally:
            wandb.finish()
            wandb.teardown()
        yield Run(monitor, loggers, calls, root)


# --- what the monitor sent: a few invariants ------------------------------------------------------


def test_every_backend_was_sent_the_same_measurements(run: Run) -> None:
    history = run.monitor.history
    assert [r["epoch"] for r in history] == list(range(EPOCHS + 1))
    reference = run.scalars(CSVBackend)
    complexity = sorted((step, v) for (tag, step), v in reference.items() if tag == f"{PREFIX}complexity")
    assert [value for _, value in complexity] == [r["complexity"] for r in history]
    assert len({step for step, _ in complexity}) == len(history)  # one step per measurement
    for backend in BACKENDS:
        assert run.scalars(backend) == reference
        assert run.figures(backend) == run.figures(CSVBackend)
        assert run.sent(backend, "log_text") == run.sent(CSVBackend, "log_text")
    # Each epoch's figure is kept: some tag has figures at several steps.
    steps_by_tag = defaultdict(set)
    for tag, step in run.figures(CSVBackend):
        steps_by_tag[tag].add(step)
    assert max(len(steps) for tag, steps in steps_by_tag.items() if tag != LATE_FIGURE) >= 2
    assert (LATE_FIGURE, 0) in run.figures(CSVBackend)
    last_step = complexity[-1][0]
    summary = [(tag, step) for tag, _, step in run.sent(CSVBackend, "log_text") if tag.endswith("/summary")]
    assert summary == [(f"{PREFIX}summary", last_step)]


def test_every_backend_got_the_run_dashboard_as_one_page_at_fit_end(run: Run) -> None:
    import json as json_module
    import re

    last_step = run.monitor.history[-1]["step"]
    for backend in BACKENDS:
        ((tag, page, step),) = run.sent(backend, "log_page")
        assert (tag, step) == (f"{PREFIX}dashboard", last_step)
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)  # nothing fetched: offline
        data = re.search(
            r'<script type="application/json" id="interactions-payload">(.*?)</script>', page, re.S
        )
        payload = json_module.loads(data.group(1))
        (drawn_run,) = payload["runs"]
        (monitor,) = drawn_run["monitors"]
        assert monitor["epochs"] == list(range(EPOCHS + 1))


# --- MLflow -------------------------------------------------------------------------------------


def _mlflow_artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _mlflow_artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_mlflow_holds_the_metrics_figures_summary_and_params(run: Run, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    logger = run.loggers["mlflow"]
    client = MlflowClient(f"sqlite:///{run.root / 'mlflow.db'}")
    stored = client.get_run(logger.run_id)
    params, outcome = run.hparams(MLflowBackend)

    points = {
        (tag, metric.step): metric.value
        for tag in stored.data.metrics
        if tag.startswith((PREFIX, "test/"))
        for metric in client.get_metric_history(logger.run_id, tag)
    }
    # The run's outcome at the step given (the monitor's: its last measurement's; the test's: 0).
    outcome_points = {
        (tag, rest[0] if rest else 0): value
        for _, metrics, *rest in run.sent(MLflowBackend, "log_hparams")
        for tag, value in metrics.items()
    }
    given = {rest[0] for _, _, *rest in run.sent(MLflowBackend, "log_hparams") if rest}
    assert given == {run.monitor.history[-1]["step"]}  # the monitor's outcome: at the last measurement
    assert points == {**run.scalars(MLflowBackend), **outcome_points}
    assert {"val_loss", "train_loss"} <= set(stored.data.metrics)  # Lightning's own, beside ours

    artifacts = _mlflow_artifacts(client, logger.run_id)
    assert artifacts == run.files(MLflowBackend)
    figures = [path for path in artifacts if path.startswith(f"{FIGURES}/")]
    assert len(figures) == len(run.figures(MLflowBackend))  # one per call: none overwritten
    for tag, text, step in run.sent(MLflowBackend, "log_text"):
        local = client.download_artifacts(logger.run_id, artifact_file(TEXTS, tag, step, "md"), str(tmp_path))
        assert Path(local).read_text(encoding="utf-8") == text
    first = sorted(artifacts)[0]
    assert Path(client.download_artifacts(logger.run_id, first, str(tmp_path))).read_bytes().startswith(PNG)

    assert {name: str(value) for name, value in params.items()} == {
        name: value for name, value in stored.data.params.items() if name in params
    }
    assert EXTRA_PARAMS.items() <= stored.data.params.items()


# --- W&B, offline -------------------------------------------------------------------------------


def _wandb_records(path: Path) -> list[Any]:
    """The records of a W&B run file: W&B's header, then LevelDB-log chunks of ``Record`` protobufs."""
    from wandb.proto.wandb_internal_pb2 import Record

    data = path.read_bytes()
    ident, _, _ = struct.unpack("<4sHB", data[:7])
    assert ident == b":W&B"
    block, position, pending, records = 32768, 7, b"", []
    while position + 7 <= len(data):
        left = block - position % block
        if left < 7:  # a block's tail too short for a chunk header is padding
            position += left
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if length == 0 and kind == 0:
            position += left
            continue
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            record = Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def _items(items: Any) -> dict[tuple[str, ...], Any]:
    return {tuple(item.nested_key) or (item.key,): json.loads(item.value_json) for item in items}


def test_wandb_offline_run_holds_the_metrics_images_summary_and_config(run: Run) -> None:
    (run_dir,) = (run.root / "wandb").glob("offline-run-*")
    (run_file,) = run_dir.glob("run-*.wandb")
    records = _wandb_records(run_file)
    kinds = [record.WhichOneof("record_type") for record in records]
    history = [_items(record.history.item) for record in records if record.HasField("history")]
    step = ("trainer/global_step",)

    assert [row[("_step",)] for row in history] == list(range(len(history)))  # W&B's own step: 0, 1, ...
    points = {
        (key[0], row[step]): value
        for row in history
        for key, value in row.items()
        if len(key) == 1 and key[0].startswith(PREFIX)
    }
    assert points == run.scalars(WandbBackend)

    def media(kind: str) -> list[tuple[str, int, str]]:
        return sorted(
            (key[0], row[step], row[(key[0], "path")])
            for row in history
            for key, value in row.items()
            if key[1:] == ("_type",) and value == kind
        )

    images = media("image-file")
    assert [(tag, at) for tag, at, _ in images] == run.figures(WandbBackend)
    stored_images = sorted((run_dir / "files" / "media" / "images").rglob("*.png"))
    assert sorted(run_dir / "files" / path for _, _, path in images) == stored_images
    assert all(path.read_bytes().startswith(PNG) for path in stored_images)
    shown = {(tag, at): path for tag, at, path in media("html-file")}
    texts, pages = run.sent(WandbBackend, "log_text"), run.sent(WandbBackend, "log_page")
    assert sorted(shown) == sorted((tag, at) for tag, _, at in texts + pages)
    for tag, text, at in texts:
        assert (run_dir / "files" / shown[tag, at]).read_text(encoding="utf-8") == WandbBackend.html(text)
    for tag, page, at in pages:
        assert (run_dir / "files" / shown[tag, at]).read_text(encoding="utf-8") == page

    params, outcome = run.hparams(WandbBackend)
    config, summary = {}, {}
    for record in records:
        if record.HasField("config"):
            config.update({key[0]: value for key, value in _items(record.config.update).items()})
        if record.HasField("summary"):
            summary.update({key[0]: value for key, value in _items(record.summary.update).items()})
    assert {name: config.get(name) for name in params} == params
    assert {name: summary.get(name) for name in outcome} == pytest.approx(outcome)
    assert "exit" in kinds  # the run was finished


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_directory_holds_the_metrics_figures_summary_and_hparams(run: Run) -> None:
    log_dir = Path(run.loggers["csv"].log_dir)
    with open(log_dir / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    points = {
        (tag, int(row["step"])): float(value)
        for row in table
        for tag, value in row.items()
        if tag.startswith(PREFIX) and value
    }
    assert points == run.scalars(CSVBackend)
    assert {"step", "val_loss", "train_loss"} <= set(table[0])

    folders = (FIGURES, TEXTS, PAGES)
    stored = [path for folder in folders for path in (log_dir / folder).rglob("*") if path.is_file()]
    assert {path.relative_to(log_dir).as_posix() for path in stored} == run.files(CSVBackend)
    for tag, step in run.figures(CSVBackend):
        assert (log_dir / artifact_file(FIGURES, tag, step, "png")).read_bytes().startswith(PNG)
    for tag, text, step in run.sent(CSVBackend, "log_text"):
        assert (log_dir / artifact_file(TEXTS, tag, step, "md")).read_text(encoding="utf-8") == text

    params, outcome = run.hparams(CSVBackend)
    hparams = yaml.safe_load((log_dir / "hparams.yaml").read_text())
    assert {name: hparams.get(name) for name in {**params, **outcome}} == {**params, **outcome}


# --- which backend for which logger -------------------------------------------------------------


def test_backend_for_each_logger(run: Run, tmp_path: Path) -> None:
    from lightning.pytorch.loggers import TensorBoardLogger
    from lightning.pytorch.loggers.logger import DummyLogger

    expected = {"csv": CSVBackend, "mlflow": MLflowBackend, "wandb": WandbBackend}
    for name, backend in expected.items():
        chosen = backend_for(run.loggers[name])
        assert type(chosen) is backend and chosen.logger is run.loggers[name] and chosen.supports_figures
    assert type(backend_for(TensorBoardLogger(str(tmp_path)))) is TensorBoardBackend
    assert type(backend_for(DummyLogger())) is MetricsBackend  # any other logger: scalars only


def test_registry_without_the_optional_packages(run: Run, tmp_path: Path, monkeypatch) -> None:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    for package in ("mlflow", "wandb"):
        monkeypatch.setitem(sys.modules, package, None)  # `import mlflow` fails, find_spec says None
    assert [backend for _, backend in _backend_classes()] == [TensorBoardBackend, CSVBackend]
    assert type(backend_for(TensorBoardLogger(str(tmp_path)))) is TensorBoardBackend
    assert type(backend_for(CSVLogger(str(tmp_path)))) is CSVBackend
    assert type(backend_for(run.loggers["wandb"])) is MetricsBackend


def test_tensorboard_run_needs_neither_mlflow_nor_wandb(tmp_path: Path) -> None:
    """A fresh interpreter where ``import mlflow`` and ``import wandb`` fail: import, fit, TensorBoard."""
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["mlflow"] = sys.modules["wandb"] = None
        import lightning.pytorch as pl
        import torch
        from lightning.pytorch.loggers import TensorBoardLogger
        from torch import nn
        import lightning_interactions
        from lightning_interactions import InteractionMonitor, demos
        from lightning_interactions.masking import FeatureMasker
        x = torch.randn(24, 5, generator=torch.Generator().manual_seed(1))
        data = demos.TensorDataModule(x[:16], (x[:16, 0] > 0).long(), x[16:], (x[16:, 0] > 0).long())
        model = demos.Classifier(nn.Linear(5, 2), optimizer="sgd", lr=0.3)
        monitor = InteractionMonitor(FeatureMasker(num_features=5), num_samples=4, on_error="raise")
        trainer = pl.Trainer(max_epochs=1, logger=TensorBoardLogger({str(tmp_path)!r}),
                             callbacks=[monitor], enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False)
        trainer.fit(model, datamodule=data)
        assert [r["epoch"] for r in monitor.history] == [0, 1]
        assert sys.modules["mlflow"] is None and sys.modules["wandb"] is None
        print("ok")
        """
    )
    command = [sys.executable, "-c", script]
    done = subprocess.run(command, env=distributed_free_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-4000:]
