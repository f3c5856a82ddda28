"""FeatureMapMasker: regions of a hidden layer's output as players, checked against the definition.

The expected values are computed here by hand: the feature map from the layers before the masked
layer, the absent players' regions set to the baseline one by one, the layers after it, and the
log-odds of the label in float64. The engine's own output is never the reference.

The CNN's second convolution pads unevenly, so its feature map (6, 10, 12) has a 5 x 6 grid of 2x2
regions (30, row-major) while the 8 x 8 image has a 4 x 4 grid of 2x2 patches (16): a region
index from the wrong grid, or rows and columns swapped, gives other values.
"""

from __future__ import annotations

import lightning
import pytest
import torch
from helpers.trainers import quiet_trainer
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_interactions.callbacks.monitor import InteractionMonitor
from lightning_interactions.engine.compute import compute_interactions, masked_outputs
from lightning_interactions.masking import FeatureMapMasker, PatchMasker

PATCH = 2
GRID_ROWS, GRID_COLS = 5, 6  # the feature map (6, 10, 12) in 2x2 regions
NUM_CLASSES = 3


def make_cnn(seed: int = 0) -> nn.Sequential:
    """conv, ReLU, conv, ReLU, Flatten, Linear on (1, 8, 8) images; model[3] outputs (6, 10, 12)."""
    # fork_rng: the weights are seeded without moving the global generator other tests rely on.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=2),  # 8x8 -> 10x10
            nn.ReLU(),
            nn.Conv2d(4, 6, 3, padding=(1, 2)),  # 10x10 -> 10x12
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(6 * 10 * 12, NUM_CLASSES),
        )


def make_data(batch: int = 3, seed: int = 1) -> tuple[Tensor, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(batch, 1, 8, 8, generator=generator)
    return images, torch.arange(batch) % NUM_CLASSES


def literal_outputs(
    model: nn.Sequential, x: Tensor, y: Tensor, patches: Tensor, baseline: float = 0.0
) -> Tensor:
    """``v[b, T]`` by the definition: mask the absent players' regions of ``model[:4](x_b)`` by hand."""
    n = patches.shape[1]
    values = torch.empty(x.shape[0], 2**n, dtype=torch.float64)
    with torch.no_grad():
        for b in range(x.shape[0]):
            feature_map = model[:4](x[b : b + 1])
            assert feature_map.shape == (1, 6, 10, 12)
            for mask in range(2**n):
                masked = feature_map.clone()
                for player in range(n):
                    if (mask >> player) & 1:  # bit i set: player i present, its region untouched
                        continue
                    row, col = divmod(int(patches[b, player]), GRID_COLS)
                    masked[..., row * PATCH : (row + 1) * PATCH, col * PATCH : (col + 1) * PATCH] = baseline
                # float64 from the logits on, as the engine promises for its output table.
                p = torch.softmax(model[4:](masked)[0].double(), dim=0)[y[b]]
                values[b, mask] = torch.log(p / (1 - p))
    return values


def assert_valid_regions(patches: Tensor, batch: int, n: int) -> None:
    """``n`` distinct region indices per sample, all on the feature map's 5 x 6 grid."""
    assert patches.shape == (batch, n)
    assert int(patches.min()) >= 0 and int(patches.max()) < GRID_ROWS * GRID_COLS
    assert all(len(set(row.tolist())) == n for row in patches)


# ---------------------------------------------------------------------------------------------
# The masked outputs against the definition
# ---------------------------------------------------------------------------------------------


def test_random_regions_match_the_literal_loop() -> None:
    model, (x, y) = make_cnn(), make_data()
    masker = FeatureMapMasker("3", patch_size=PATCH, num_players=4)
    v = masked_outputs(model, x, y, masker=masker)
    players = masker.select_players(model[:4](x).detach())
    assert_valid_regions(players["patches"], 3, 4)
    assert v.dtype == torch.float64 and v.shape == (3, 16)
    torch.testing.assert_close(v, literal_outputs(model, x, y, players["patches"]), rtol=0, atol=1e-5)


def test_chosen_regions_are_those_of_the_feature_map_grid() -> None:
    # The seeded choice runs over the layer's 30 regions, not over the image's 16 patches: the
    # engine's choice is the masker's own on the feature map computed here by hand.
    model, (x, y) = make_cnn(), make_data(batch=5)
    masker = FeatureMapMasker("3", patch_size=PATCH, num_players=4)
    result = compute_interactions(model, x, y, masker=masker, seed=7)
    by_hand = masker.select_players(model[:4](x).detach(), seed=7)["patches"]
    assert torch.equal(result.players["patches"].cpu(), by_hand)
    on_pixels = PatchMasker(PATCH, num_players=4).select_players(x, seed=7)["patches"]
    assert not torch.equal(by_hand, on_pixels)


def test_fixed_regions_and_a_number_baseline() -> None:
    model, (x, y) = make_cnn(), make_data()
    masker = FeatureMapMasker("3", patch_size=PATCH, players=[0, 3, 5], baseline=0.5)
    v = masked_outputs(model, x, y, masker=masker)
    patches = torch.tensor([[0, 3, 5]]).expand(3, 3)
    torch.testing.assert_close(v, literal_outputs(model, x, y, patches, baseline=0.5), rtol=0, atol=1e-5)
    # The baseline matters: the same regions zeroed give other values.
    assert not torch.allclose(v, literal_outputs(model, x, y, patches, baseline=0.0), atol=1e-3)


def test_region_beyond_the_image_grid() -> None:
    # Region 29 (bottom right of the 5 x 6 grid) exists only on the feature map.
    model, (x, y) = make_cnn(), make_data(batch=2)
    masker = FeatureMapMasker("3", patch_size=PATCH, players=[29, 7, 12])
    v = masked_outputs(model, x, y, masker=masker)
    patches = torch.tensor([[29, 7, 12]]).expand(2, 3)
    torch.testing.assert_close(v, literal_outputs(model, x, y, patches), rtol=0, atol=1e-5)


def test_layer_given_as_the_module() -> None:
    model, (x, y) = make_cnn(), make_data()
    masker = FeatureMapMasker(model[3], patch_size=PATCH, num_players=4)
    v = masked_outputs(model, x, y, masker=masker)
    patches = masker.select_players(model[:4](x).detach())["patches"]
    torch.testing.assert_close(v, literal_outputs(model, x, y, patches), rtol=0, atol=1e-5)
    # The same module by name measures the same thing.
    torch.testing.assert_close(
        v, masked_outputs(model, x, y, masker=FeatureMapMasker("3", PATCH, num_players=4))
    )


# ---------------------------------------------------------------------------------------------
# What runs how often
# ---------------------------------------------------------------------------------------------


def count_rows(module: nn.Module, rows: list[int]) -> torch.utils.hooks.RemovableHandle:
    return module.register_forward_hook(lambda _module, inputs, _output: rows.append(inputs[0].shape[0]))


def test_layers_before_the_masked_layer_run_once_per_sample() -> None:
    model, (x, y) = make_cnn(), make_data(batch=3)
    batch, n = 3, 4
    first, head = [], []
    handles = [count_rows(model[0], first), count_rows(model[5], head)]
    try:
        masked_outputs(model, x, y, masker=FeatureMapMasker("3", PATCH, num_players=n))
        # Feature maps: the first sample's for the memory estimate (1 row), one pass for choosing
        # the regions (B rows), the probe pass on the first sample taken twice (2 rows, so that a
        # skip connection around the layer cannot broadcast; its empty and full coalitions are made
        # by the hook), the measurement (B rows: 2^n = 16 masks of all 3 samples fit in one chunk).
        assert sum(first) == 1 + batch + 2 + batch, first
        # The head: 1 + B rows in the estimate and choice passes (no hook yet), 2 x 2 in the probe,
        # B * 2^n in the measurement.
        assert sum(head) == 1 + batch + 4 + batch * 2**n, head

        first.clear()
        players = {"patches": torch.tensor([[0, 3, 5, 8]]).expand(batch, n)}
        masked_outputs(model, x, y, masker=FeatureMapMasker("3", PATCH, num_players=n), players=players)
        assert sum(first) == 1 + 2 + batch, first  # regions given: no pass to choose them

        # Patches of the pixels: every masked image runs through every layer, plus the probe's 2.
        first.clear()
        masked_outputs(model, x, y, masker=PatchMasker(PATCH, num_players=n))
        assert sum(first) == 2 + batch * 2**n, first
    finally:
        for handle in handles:
            handle.remove()


# ---------------------------------------------------------------------------------------------
# The model is left as it was
# ---------------------------------------------------------------------------------------------


def test_model_parameters_modes_and_hooks_unchanged() -> None:
    model, (x, y) = make_cnn(), make_data()
    # A mix of modes, so that a restore to "all train" or "all eval" would show.
    model.train()
    model[2].eval()
    modes = [module.training for module in model.modules()]
    params = {name: value.detach().clone() for name, value in model.state_dict().items()}

    masked_outputs(model, x, y, masker=FeatureMapMasker("3", PATCH, num_players=4))
    compute_interactions(model, x, y, masker=FeatureMapMasker(model[3], PATCH, num_players=4))

    assert [module.training for module in model.modules()] == modes
    for name, value in model.state_dict().items():
        assert torch.equal(value, params[name]), name
    assert not model[3]._forward_hooks
    assert all(not module._forward_hooks and not module._forward_pre_hooks for module in model.modules())


# ---------------------------------------------------------------------------------------------
# Models and layers that cannot be masked this way
# ---------------------------------------------------------------------------------------------


class AppliedTwice(nn.Module):
    """One ReLU module used twice in a forward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.act = nn.Conv2d(1, 2, 3, padding=1), nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 64, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.act(self.conv(self.act(x))))


class PairLayer(nn.Module):
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return x, -x


class TupleOutput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.pair = nn.Conv2d(1, 2, 3, padding=1), PairLayer()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 64, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.pair(self.conv(x))
        return self.head(a * b)


class Residual(nn.Module):
    """``x + block(x)``: the skip path carries the block's input past the masked ``block.1``."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1))
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 64, NUM_CLASSES))

    def forward(self, x: Tensor) -> Tensor:
        h = self.stem(x)
        return self.head(h + self.block(h))


def assert_no_hooks(model: nn.Module) -> None:
    # Hooks are removed on the way out of an error too.
    assert all(not module._forward_hooks for module in model.modules())


def test_unknown_layer_name_lists_the_names() -> None:
    model, (x, y) = make_cnn(), make_data()
    # A name with no digit: no submodule name is "near" it, so the message lists the model's names.
    with pytest.raises(ValueError, match="no submodule 'relu'") as error:
        masked_outputs(model, x, y, masker=FeatureMapMasker("relu", PATCH, num_players=4))
    assert all(f"'{index}'" in str(error.value) for index in range(6)) and "named_modules" in str(error.value)


def test_layer_not_in_the_model() -> None:
    model, (x, y) = make_cnn(), make_data()
    with pytest.raises(ValueError, match="not a submodule"):
        masked_outputs(model, x, y, masker=FeatureMapMasker(nn.ReLU(), PATCH, num_players=4))
    with pytest.raises(ValueError, match="not a submodule"):
        masked_outputs(model, x, y, masker=FeatureMapMasker(make_cnn()[3], PATCH, num_players=4))


@pytest.mark.parametrize("given_players", [False, True], ids=["chosen", "given"])
def test_layer_that_runs_twice(given_players: bool) -> None:
    # Both paths: while choosing the regions, and in the masking hook when the regions are given.
    model, (x, y) = AppliedTwice(), make_data()
    players = {"patches": torch.tensor([[0, 1, 2, 3]]).expand(3, 4)} if given_players else None
    with pytest.raises(ValueError, match="ran .*once|ran 2 times"):
        masked_outputs(model, x, y, masker=FeatureMapMasker("act", PATCH, num_players=4), players=players)
    assert_no_hooks(model)


@pytest.mark.parametrize("given_players", [False, True], ids=["chosen", "given"])
def test_layer_whose_output_is_a_tuple(given_players: bool) -> None:
    model, (x, y) = TupleOutput(), make_data()
    players = {"patches": torch.tensor([[0, 1, 2, 3]]).expand(3, 4)} if given_players else None
    with pytest.raises(TypeError, match="returns tuple, not a tensor"):
        masked_outputs(model, x, y, masker=FeatureMapMasker("pair", PATCH, num_players=4), players=players)
    assert_no_hooks(model)


def test_skip_connection_around_the_layer() -> None:
    model, (x, y) = Residual(), make_data(batch=3)
    with pytest.raises(RuntimeError, match="skip connection"):
        masked_outputs(model, x, y, masker=FeatureMapMasker("block.1", PATCH, num_players=4))
    assert_no_hooks(model)


@pytest.mark.parametrize(("batch", "batch_size"), [(1, 1024), (3, 8)], ids=["one-sample", "small-chunks"])
def test_skip_connection_with_one_sample_per_forward_pass(batch: int, batch_size: int) -> None:
    # With one sample per forward pass (a single sample, or chunks smaller than 2^n), the skip
    # path's (1, C, H, W) broadcasts against the (M, C, H, W) masked copies and no error comes:
    # the same model is refused or measured depending on the number of samples and batch_size.
    model, (x, y) = Residual(), make_data(batch=batch)
    with pytest.raises(RuntimeError, match="skip connection"):
        masked_outputs(
            model, x, y, masker=FeatureMapMasker("block.1", PATCH, num_players=4), batch_size=batch_size
        )


def test_mean_baseline_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="baseline='mean'"):
        FeatureMapMasker("3", PATCH, num_players=4, baseline="mean")


# ---------------------------------------------------------------------------------------------
# The whole measurement, and the monitor in a Trainer
# ---------------------------------------------------------------------------------------------


def test_compute_interactions_on_the_feature_map() -> None:
    model, (x, y) = make_cnn(), make_data(batch=4)
    result = compute_interactions(model, x, y, masker=FeatureMapMasker("3", PATCH, num_players=5))
    assert_valid_regions(result.players["patches"], 4, 5)
    assert result.num_players == 5 and result.I_and.shape == (4, 32) and result.I_or.shape == (4, 32)
    assert bool(torch.isfinite(result.I_and).all() and torch.isfinite(result.I_or).all())
    assert bool(torch.isfinite(result.strength).all())
    # v is the definition's, so the extraction worked on the right table.
    torch.testing.assert_close(
        result.v.cpu(), literal_outputs(model, x, y, result.players["patches"]), rtol=0, atol=1e-5
    )


class CNNModule(lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = make_cnn()

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val_loss", nn.functional.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_monitor_in_a_trainer(tmp_path) -> None:
    x_train, y_train = make_data(batch=16, seed=2)
    x_val, y_val = make_data(batch=8, seed=3)
    train = DataLoader(TensorDataset(x_train, y_train), batch_size=8)
    val = DataLoader(TensorDataset(x_val, y_val), batch_size=8)
    # on_error="raise": a failed measurement fails the test instead of becoming a warning.
    monitor = InteractionMonitor(
        FeatureMapMasker("net.3", PATCH, num_players=4), num_samples=4, log_figures=False, on_error="raise"
    )
    trainer = quiet_trainer(tmp_path, max_epochs=2, callbacks=[monitor])
    module = CNNModule()
    trainer.fit(module, train, val)
    assert [record["epoch"] for record in monitor.history] == [0, 1, 2]
    assert not module.net[3]._forward_hooks


def test_a_layer_after_the_flattening_and_a_misnamed_layer_are_explained() -> None:
    model, (x, y) = make_cnn(), make_data(batch=2)
    with pytest.raises(ValueError, match=r"the layer '4' outputs shape \(2, 720\), not feature maps"):
        masked_outputs(model, x, y, masker=FeatureMapMasker("4", PATCH, num_players=2))
    # A name written as if the model had a features block: the modules with the same last part.
    with pytest.raises(ValueError, match=r"no submodule 'net\.features\.3'; some of its names: \['3'\]"):
        masked_outputs(model, x, y, masker=FeatureMapMasker("net.features.3", PATCH, num_players=2))


def test_the_memory_estimate_counts_the_feature_maps_not_the_inputs(monkeypatch) -> None:
    """A layer whose output is 64 times its input: a budget that fits the inputs' chunks does not
    fit the feature maps', and the measurement is refused before any masked forward pass."""
    from lightning_interactions.engine import _setup
    from lightning_interactions.errors import MeasurementMemoryError

    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 64, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64 * 64, 3))
    x, y = torch.rand(2, 1, 8, 8), torch.tensor([0, 2])
    # Chunks of 1024 masked copies: of the inputs 1024 x 64 x 5 bytes = 0.3 MiB, of the feature
    # maps 64 times that, 21 MiB (masked_outputs does not count the extraction).
    budget = 4 * 2**20
    monkeypatch.setattr(_setup, "available_memory", lambda device: budget)
    masked_outputs(model, x, y, masker=PatchMasker(1, num_players=10))  # the inputs' chunks fit
    with pytest.raises(MeasurementMemoryError, match="masked inputs of one chunk"):
        masked_outputs(model, x, y, masker=FeatureMapMasker("1", 1, num_players=10))
