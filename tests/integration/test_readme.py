"""The README's quickstarts run as written, and what it says about installs, metrics and checkpoints holds.

The code blocks are read out of README.md itself, so the README cannot go stale: the Trainer
quickstart runs with only ``max_epochs`` lowered (a patched ``lightning.Trainer``), its shell
block's commands run against what it wrote, and the metric table is compared with the scalars
that run logged to TensorBoard.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import lightning
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
TRAINER_QUICKSTART = "Quickstart: the monitor in a Trainer"
ENGINE_QUICKSTART = "Quickstart: the engine without Lightning"
QUICK_EPOCHS = 2


def section(title: str) -> str:
    """The text of the README section ``## title``, up to the next ``## `` heading."""
    parts = re.split(r"^## ", README, flags=re.MULTILINE)
    (body,) = [part[len(title) :] for part in parts if part.startswith(title + "\n")]
    return body


def code_blocks(text: str, language: str) -> list[str]:
    """The fenced code blocks of ``language`` in ``text``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


class ShortTrainer(lightning.Trainer):
    """``lightning.Trainer`` with ``max_epochs`` lowered and no progress bar; everything else as given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        assert kwargs.get("max_epochs", 0) > QUICK_EPOCHS  # the README's own setting is the one lowered
        kwargs.update(max_epochs=QUICK_EPOCHS, enable_progress_bar=False)
        super().__init__(*args, **kwargs)


def _table_metrics(text: str) -> set[str]:
    return set(re.findall(r"^\| `(interactions/[^`]+)` \|", text, flags=re.MULTILINE))


def _logged_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    return {tag: {e.step: e.value for e in events.Scalars(tag)} for tag in events.Tags()["scalars"]}


def test_the_trainer_quickstart_runs_as_written(tmp_path: Path, monkeypatch, one_thread) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    text = section(TRAINER_QUICKSTART)
    quickstart, stopping, naming = code_blocks(text, "python")
    (shell,) = code_blocks(text, "bash")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lightning, "Trainer", ShortTrainer)
    namespace: dict[str, Any] = {}
    exec(compile(quickstart, "README.md (quickstart)", "exec"), namespace)

    monitor, best, trainer = namespace["monitor"], namespace["best"], namespace["trainer"]
    # The early-stopping recipe builds with the quickstart's imports: the monitor's default alert metric.
    exec(compile(stopping, "README.md (early stopping)", "exec"), namespace)
    assert namespace["callbacks"][1].alert_metric == "interactions/overfit_alert"
    assert [r["epoch"] for r in monitor.history] == list(range(QUICK_EPOCHS + 1))
    assert Path(best.best_model_path).is_file()
    log_dir = Path(trainer.log_dir)
    assert log_dir.parent == tmp_path / "lightning_logs"

    # "Then look at what it measured": every command of the shell block works on what the run wrote.
    from lightning_interactions.cli import main

    commands = [line.split("#")[0].strip() for line in shell.splitlines() if line.strip()]
    assert [c.split()[0] for c in commands] == ["tensorboard", "lightning-interactions"]
    for command in commands:
        words = shlex.split(command)
        if words[0] == "tensorboard":
            assert words[1] == "--logdir" and list(Path(words[2]).rglob("events.out.tfevents.*"))
        else:
            assert main(words[1:]) == 0
            assert (Path(words[2]) / "summary.json").is_file()  # into the folder given

    # The metric table names exactly the scalars the run logged under interactions/.
    logged = {tag for tag in _logged_scalars(log_dir) if tag.startswith("interactions/")}
    generic = {re.sub(r"order_\d+$", "order_k", re.sub(r"outcome/\w+$", "outcome/*", tag)) for tag in logged}
    assert generic == _table_metrics(text)
    phases = _logged_scalars(log_dir)["interactions/phase"]
    assert set(phases.values()) == {1.0}  # no alert in two epochs: 1 throughout, minimum included

    # The checkpoint names of the early-stopping paragraph: no sub-folder.
    exec(compile(naming, "README.md (checkpoint names)", "exec"), namespace)
    every_epoch = namespace["every_epoch"]
    from lightning_interactions import InteractionMonitor, PatchMasker
    from lightning_interactions.demos import DigitsClassifier

    small = InteractionMonitor(PatchMasker(patch_size=2, num_players=4), num_samples=2, log_figures=False)
    short = ShortTrainer(
        max_epochs=30, callbacks=[small, every_epoch], logger=False, default_root_dir=str(tmp_path / "named")
    )
    short.fit(DigitsClassifier(hidden=16), namespace["datamodule"])
    saved = sorted(p.relative_to(every_epoch.dirpath) for p in Path(every_epoch.dirpath).rglob("*"))
    assert len(saved) == QUICK_EPOCHS
    assert all(re.fullmatch(r"epoch\d+-complexity\d\.\d{3}\.ckpt", str(path)) for path in saved), saved


def test_without_auto_insert_metric_name_false_the_slash_makes_a_folder() -> None:
    """What the README warns about, from Lightning itself."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    metrics = {"epoch": torch.tensor(7), "interactions/complexity": torch.tensor(1.234)}
    default = ModelCheckpoint(filename="{epoch}-{interactions/complexity:.3f}")
    assert default.format_checkpoint_name(dict(metrics)) == "epoch=7-interactions/complexity=1.234.ckpt"
    plain = ModelCheckpoint(
        filename="epoch{epoch}-complexity{interactions/complexity:.3f}", auto_insert_metric_name=False
    )
    assert plain.format_checkpoint_name(dict(metrics)) == "epoch7-complexity1.234.ckpt"


def test_the_engine_quickstart_runs_as_written(one_thread) -> None:
    pytest.importorskip("sklearn")
    (code,) = code_blocks(section(ENGINE_QUICKSTART), "python")
    namespace: dict[str, Any] = {}
    exec(compile(code, "README.md (engine quickstart)", "exec"), namespace)
    result = namespace["result"]
    assert result.strength_shape.shape == (8,) and float(result.strength_shape.sum()) == pytest.approx(1.0)
    assert 1.0 <= result.complexity <= 8.0
    assert result.gap.shape == (16,) and float(result.gap.max()) <= 0.01


def test_no_code_block_stops_training_on_the_interactions() -> None:
    """The alert is not when to stop (issues 15, 16): no recipe stops on the complexity or at the alert,
    and every recipe that stops early keeps the best validation checkpoint."""
    for block in code_blocks(README, "python"):
        assert "stop_on_alert=True" not in block and 'monitor="interactions/' not in block
        if "EarlyStopping" in block:
            assert 'ModelCheckpoint(monitor="val_loss")' in block


def _pyproject() -> dict[str, Any]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def test_the_install_section_names_what_pyproject_has() -> None:
    project = _pyproject()["project"]
    text = section("Install")
    extras = set(re.findall(r"`(\w+)`", text)) & {"plots", "dev", "mlflow", "wandb"}
    assert extras == {"plots", "dev", "mlflow", "wandb"}
    assert extras <= set(project["optional-dependencies"])
    assert any(dep.startswith("matplotlib") for dep in project["dependencies"])  # figures by default
    assert "lightning-interactions" in project["scripts"] and "lightning-interactions --version" in text


def test_every_example_is_in_the_examples_table() -> None:
    table = section("Examples (CPU, no downloads)")
    for path in sorted((REPO / "examples").glob("[!_]*.py")):
        assert f"`examples/{path.name}" in table, path.name


def test_your_own_model_recipes_build_their_monitors(tmp_path: Path) -> None:
    """The recipes of "Your own model" run as written, with real tokenizers built without download."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    from lightning_interactions import InteractionMonitor, TokenMasker

    (tmp_path / "vocab.txt").write_text(
        "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "yes", "no"])
    )
    bert = transformers.BertTokenizerFast.from_pretrained(str(tmp_path))
    words = {"<|endoftext|>": 0, "yes": 1, "no": 2}
    backend = Tokenizer(models.WordLevel(words, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    gpt2_like = transformers.PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>")
    gpt2_like.pad_token = gpt2_like.eos_token  # as GPT-2 users set it; there is no mask token
    blocks = code_blocks(section("Your own model"), "python")
    assert len(blocks) == 3
    for block, tokenizer in zip(blocks[:2], (bert, gpt2_like)):
        scope: dict[str, Any] = {"tokenizer": tokenizer}
        exec(block, scope)
        assert isinstance(scope["monitor"], InteractionMonitor)
        assert (
            isinstance(scope["masker"], TokenMasker)
            and scope["masker"].pad_token_id == tokenizer.pad_token_id
        )
    assert scope["labels"] == [1, 2]
    scope = {}
    exec(blocks[2], scope)
    assert scope["monitor"].masker.layer == "net.features.4"
