"""The scalar metrics (loggers/scalars.py): their documented names, and the values of a record."""

from __future__ import annotations

import pytest
from helpers.report_history import N, make_history

from lightning_interactions.loggers import (
    record_scalars,
    scalar_tags,
)


@pytest.fixture(scope="module")
def history() -> list[dict]:
    return make_history()


def test_scalar_tags_are_the_documented_names() -> None:
    expected = (
        [f"interactions/order_{k}" for k in range(1, N + 1)]
        + [f"interactions/shape/order_{k}" for k in range(1, N + 1)]
        + [
            "interactions/complexity",
            "interactions/noise_level",
            "interactions/theory_error",
            "interactions/phase",
            "interactions/overfit_alert",
            "interactions/phase1_seen",
        ]
    )
    assert scalar_tags(N) == expected
    assert scalar_tags(1, prefix="x")[0] == "x/order_1"
    with pytest.raises(ValueError):
        scalar_tags(0)


def test_record_scalars_keys_and_values(history) -> None:
    record = history[3]
    scalars = record_scalars(record)
    assert list(scalars) == scalar_tags(N)
    for k in range(1, N + 1):
        assert scalars[f"interactions/order_{k}"] == record["strength"][k - 1]
        assert scalars[f"interactions/shape/order_{k}"] == record["shape"][k - 1]
    for name in ("complexity", "noise_level", "theory_error", "phase", "overfit_alert"):
        assert scalars[f"interactions/{name}"] == float(record[name])
    assert all(isinstance(value, float) for value in scalars.values())


def test_record_scalars_skip_none(history) -> None:
    scalars = record_scalars(history[0], prefix="p")
    documented = scalar_tags(N, prefix="p")
    assert set(scalars) == set(documented) - {"p/noise_level", "p/theory_error"}
