"""The demo's data: the seeded digits split and its label noise, against what they promise."""

from __future__ import annotations

import pytest
import torch

from lightning_interactions.demos import TensorDataModule
from lightning_interactions.demos.digits import (
    DemoError,
    load_digits_split,
    load_digits_tensors,
    noisy_labels,
)

pytest.importorskip("sklearn")


def test_noisy_labels_changes_exactly_the_fraction_asked_and_never_to_the_same_class() -> None:
    labels = torch.arange(200) % 10
    noisy = noisy_labels(labels, 0.25, seed=3)
    changed = noisy != labels
    assert int(changed.sum()) == 50
    assert bool(((noisy >= 0) & (noisy < 10)).all())
    assert torch.equal(noisy_labels(labels, 0.25, seed=3), noisy)  # seeded
    assert not torch.equal(noisy_labels(labels, 0.25, seed=4), noisy)


def test_the_split_is_disjoint_seeded_and_only_the_training_labels_are_noisy() -> None:
    images, labels = load_digits_tensors()
    data = load_digits_split(train_size=300, val_size=500, label_noise=0.25, seed=0)
    assert data["x_train"].shape == (300, 1, 8, 8) and data["x_val"].shape == (500, 1, 8, 8)
    assert len(data["y_test"]) == len(labels) - 800
    assert float(images.min()) == 0.0 and float(images.max()) == 1.0  # pixels scaled from 0..16

    def rows(x: torch.Tensor) -> set[bytes]:
        return {row.numpy().tobytes() for row in x.reshape(len(x), -1)}

    train, val, test = rows(data["x_train"]), rows(data["x_val"]), rows(data["x_test"])
    # The digits data set holds a few duplicate images; the split is by index, so the sets of
    # distinct images may share those only.
    assert len(train & val) + len(train & test) + len(val & test) <= 5
    assert int((data["y_train"] != data["y_train_clean"]).sum()) == 75
    again = load_digits_split(train_size=300, val_size=500, label_noise=0.25, seed=0)
    assert all(torch.equal(data[key], again[key]) for key in data)


@pytest.mark.parametrize(("train", "val", "noise"), [(1500, 500, 0.0), (10, 10, 1.5)])
def test_impossible_splits_are_refused(train: int, val: int, noise: float) -> None:
    with pytest.raises(DemoError):
        load_digits_split(train_size=train, val_size=val, label_noise=noise, seed=0)


def test_the_datamodule_shuffles_training_batches_by_its_seed_and_keeps_the_validation_order() -> None:
    x, y = torch.arange(12.0)[:, None], torch.arange(12)
    first = [
        batch[1].tolist() for batch in TensorDataModule(x, y, x, y, batch_size=4, seed=1).train_dataloader()
    ]
    again = [
        batch[1].tolist() for batch in TensorDataModule(x, y, x, y, batch_size=4, seed=1).train_dataloader()
    ]
    assert first == again and sorted(sum(first, [])) == list(range(12)) and sum(first, []) != list(range(12))
    val = [batch[1].tolist() for batch in TensorDataModule(x, y, x, y, batch_size=4, seed=1).val_dataloader()]
    assert sum(val, []) == list(range(12))
