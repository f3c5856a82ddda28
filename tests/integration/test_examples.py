"""The examples: the token task's planted AND/OR rules are recovered, and every example runs.

The examples live in ``examples/`` (not a package); they import their shared module ``_common``
from their own folder, so the tests put that folder on ``sys.path``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def examples(monkeypatch: pytest.MonkeyPatch):
    """A loader of example modules by name, with ``examples/`` on ``sys.path``."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def load(name: str) -> ModuleType:
        return importlib.import_module(name)

    return load


def _check_outputs(out: Path) -> None:
    assert list(out.rglob("interaction_history.jsonl")), f"no interaction_history.jsonl under {out}"
    assert list(out.rglob("events.out.tfevents.*")), f"no TensorBoard event file under {out}"


def test_token_example_recovers_the_planted_interactions(examples, tmp_path: Path) -> None:
    """After training, each AND-family sample's strongest salient interaction is the planted AND
    pair, and each OR-family sample's is the planted OR pair, of the right kind."""
    tokens = examples("token_rules")
    # Six epochs (default 8) keep the test short; five already recover the rules on this seed.
    result = tokens.main(["--epochs", "6", "--out", str(tmp_path)])
    and_pair, or_pair = frozenset(tokens.AND_POSITIONS), frozenset(tokens.OR_POSITIONS)
    found = result["salient"]
    half = len(found) // 2
    assert half >= 2
    for row, salient in enumerate(found):
        kinds_and_sets = [(kind, players) for kind, players, _ in salient]
        planted = ("AND", and_pair) if row < half else ("OR", or_pair)
        wrong_kind = ("OR", and_pair) if row < half else ("AND", or_pair)
        assert kinds_and_sets, f"sample {row} has no salient interaction"
        assert kinds_and_sets[0] == planted, f"sample {row}: strongest {salient[0]}, expected {planted}"
        assert salient[0][2] > 0  # the planted evidence raises the log-odds of the true class
        assert wrong_kind not in kinds_and_sets
    # The monitor's own last measurement puts most strength on order 2, the order of both rules.
    shape = result["monitor"].history[-1]["shape"]
    assert max(range(len(shape)), key=shape.__getitem__) == 1
    _check_outputs(tmp_path)


# The examples built on _common (--quick, --out); cli_example, engine_tabular and study have their own tests.
TRAINER_EXAMPLES = [
    "image_patches",
    "signal_segments",
    "tabular_features",
    "token_rules",
    "point_clouds",
    "hf_text",
]


@pytest.mark.parametrize("name", TRAINER_EXAMPLES)
def test_example_runs_quick(examples, name: str, tmp_path: Path) -> None:
    if name == "signal_segments":
        pytest.importorskip("mnist1d", reason="signal_segments needs the mnist1d package (dev extras)")
    if name == "hf_text":
        pytest.importorskip("transformers", reason="hf_text needs the transformers package (dev extras)")
    result = examples(name).main(["--quick", "--out", str(tmp_path)])
    assert len(result["monitor"].history) == 3  # epoch 0 and the two quick epochs
    _check_outputs(tmp_path)


def test_cli_example_runs_quick_from_the_yaml_config(
    examples, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("jsonargparse", reason="LightningCLI needs jsonargparse (dev extras)")
    monkeypatch.chdir(tmp_path)
    # --quick alone: fit with examples/config.yaml, then the quick overrides.
    cli = examples("cli_example").main(["--quick", "--trainer.logger.init_args.save_dir", str(tmp_path)])
    monitors = [c for c in cli.trainer.callbacks if type(c).__name__ == "InteractionMonitor"]
    assert len(monitors) == 1 and [r["epoch"] for r in monitors[0].history] == [0, 1, 2]
    assert monitors[0].num_samples == 4 and monitors[0].masker.num_players == 8  # the YAML's players
    _check_outputs(tmp_path)


def test_engine_example_runs_quick(examples) -> None:
    pytest.importorskip("sklearn")
    results = examples("engine_tabular").main(["--quick"])
    assert sorted(results) == ["trained", "untrained"]
    for result in results.values():
        assert result.num_players == 6 and result.I_and.shape == (4, 2**6)


def test_study_runs_quick(examples, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    rows = examples("study").main(["--quick", "--out", str(tmp_path)])
    assert [(row["optimizer"], row["seed"]) for row in rows] == [("adam", 0)]
    assert (tmp_path / "study.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["adam-seed0"]


def test_study_suite_runs_quick_and_evaluates_its_saved_runs_again(examples, tmp_path: Path, capsys) -> None:
    pytest.importorskip("sklearn")
    pytest.importorskip("mnist1d")
    suite = examples("study_suite")
    rows = suite.main(["--quick", "--out", str(tmp_path)])
    tasks = ["mlp", "cnn", "cnn_sgd_wd", "mlp_clean", "resnet_bn", "transformer", "cnn1d", "pointnet"]
    assert [(row["task"], row["seed"]) for row in rows] == [(task, 0) for task in tasks]
    for row in rows:
        # Two epochs: every rule stops by the last one; the window spans the 3 evaluations (0..2).
        assert set(row["stops"]) == set(suite.STOPPING_RULES)
        assert all(1 <= stop["epoch"] <= 2 for stop in row["stops"].values())
        assert row["window"] is not None and 0 <= row["window"][0] <= row["window"][1] <= 2
        assert row["best_val_loss"] > 0 and isinstance(row["phase1_seen"], bool)
    assert (tmp_path / "suite.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == sorted(f"{t}-seed0" for t in tasks)
    printed = capsys.readouterr().out
    assert "alert inside the transition window" in printed and "InteractionEarlyStopping" in printed
    assert "alert rules against the loss gap" in printed and "per-sample memorisation" in printed
    # What the candidates read: per-sample strength by order and the training samples' labels.
    run = json.loads((tmp_path / "mlp-seed0" / "run.json").read_text())
    assert len(run["sample_strength"]["train"]["2"]) == len(run["train_samples"]["flipped"]) == 4
    assert len(run["train_sample_loss"]["2"]) == 4 and "salient" in run["train_history"][-1]
    # The rules are functions of what the runs saved: --from gives the same rows without training.
    again = suite.main(["--from", str(tmp_path)])
    assert json.loads(json.dumps(again)) == json.loads((tmp_path / "suite.json").read_text())


def test_every_example_is_covered_by_a_quick_test() -> None:
    """A new example without a --quick test fails here."""
    tested = {*TRAINER_EXAMPLES, "cli_example", "engine_tabular", "study", "study_suite"}
    assert {p.stem for p in EXAMPLES.glob("*.py") if not p.stem.startswith("_")} == tested
