"""The examples: the token task's planted AND/OR rules are recovered, and every example runs.

The examples live in ``examples/`` (not a package); they import their shared module ``_common``
from their own folder, so the tests put that folder on ``sys.path``.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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


@pytest.mark.parametrize(
    "name", ["image_patches", "signal_segments", "tabular_features", "token_rules", "point_clouds"]
)
def test_example_runs_quick(examples, name: str, tmp_path: Path) -> None:
    if name == "signal_segments":
        pytest.importorskip("mnist1d", reason="signal_segments needs the mnist1d package (dev extras)")
    result = examples(name).main(["--quick", "--out", str(tmp_path)])
    assert len(result["monitor"].history) == 3  # epoch 0 and the two quick epochs
    _check_outputs(tmp_path)


def test_cli_example_runs_from_the_yaml_config(
    examples, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("jsonargparse", reason="LightningCLI needs jsonargparse (dev extras)")
    monkeypatch.chdir(tmp_path)
    arguments = [
        "fit",
        "--config", str(EXAMPLES / "config.yaml"),
        "--trainer.max_epochs", "1",
        "--trainer.logger.init_args.save_dir", str(tmp_path),
        "--data.train_size", "100",
    ]
    cli = examples("cli_example").main(arguments)
    monitors = [c for c in cli.trainer.callbacks if type(c).__name__ == "InteractionMonitor"]
    assert len(monitors) == 1 and [r["epoch"] for r in monitors[0].history] == [0, 1]
    _check_outputs(tmp_path)
