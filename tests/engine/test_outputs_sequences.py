"""Language-model outputs (N, L, V): the named outputs' advice, and last_token_log_odds.

Every value is checked against a literal computation written here: a loop over rows that reads
the logits at a position found by hand and evaluates z_y - log(sum_{j != y} exp(z_j)) in float64.
"""

from __future__ import annotations

import math
import pickle

import pytest
import torch

from lightning_interactions.engine.outputs import (
    binary_logit,
    last_token_log_odds,
    log_odds,
    regression,
    resolve_output,
)


def literal_log_odds(logits: torch.Tensor, last: list[int], label_ids: list[int], targets: list[int]):
    """Row i: the label tokens' logits at position last[i], then log(e^{z_y} / sum_{j != y} e^{z_j})."""
    out = []
    for i, (position, y) in enumerate(zip(last, targets)):
        z = [float(logits[i, position, token].double()) for token in label_ids]
        rest = math.fsum(math.exp(z[j]) for j in range(len(z)) if j != y)
        out.append(z[y] - math.log(rest))
    return out


def random_logits(n: int, length: int, vocab: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, length, vocab, generator=torch.Generator().manual_seed(seed)) * 3


# ---------------------------------------------------------------------------------------------
# The named outputs refuse per-token logits and say what to pass instead
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "targets", "prefix"),
    [
        (log_odds, torch.tensor([0, 1]), "log_odds expects logits of shape (N, C) with C >= 2 classes"),
        (binary_logit, torch.tensor([0, 1]), "binary_logit expects one scalar per sample"),
        (regression, None, "regression expects one scalar per sample"),
    ],
    ids=["log_odds", "binary_logit", "regression"],
)
@pytest.mark.parametrize("wrap", [lambda t: t, lambda t: {"logits": t}], ids=["tensor", "dict"])
def test_named_outputs_on_per_token_logits_point_to_the_helper(fn, targets, prefix, wrap):
    for vocab in (1, 50):  # (N, L, 1) is one row per token too
        with pytest.raises(ValueError) as raised:
            fn(wrap(torch.zeros(2, 7, vocab)), targets)
        message = str(raised.value)
        assert message.startswith(prefix)
        assert f"(2, 7, {vocab})" in message
        assert "one row per token" in message
        assert "output=last_token_log_odds([...])" in message
        assert "lightning_interactions.engine.outputs" in message
        assert "output=lambda out, targets: ..." in message
        assert "InteractionMonitor or compute_interactions" in message


def test_other_bad_shapes_keep_their_own_advice():
    with pytest.raises(ValueError, match="use 'logit' for a single binary logit") as raised:
        log_odds(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    assert "one row per token" not in str(raised.value)
    with pytest.raises(ValueError, match=r"got shape \(3, 2\)$"):
        regression(torch.zeros(3, 2))


# ---------------------------------------------------------------------------------------------
# last_token_log_odds: the position from the pad id, the attention mask, or L - 1
# ---------------------------------------------------------------------------------------------

LABELS = [9, 2, 5]  # class k is token LABELS[k]


def test_right_padding_found_from_the_pad_id():
    pad = 0
    ids = torch.tensor(
        [
            [4, 8, 3, 6, 1],  # no padding: position 4
            [7, 3, 0, 0, 0],  # position 1
            [5, 0, 6, 0, 0],  # a pad id inside: still the last non-pad position, 2
            [3, 0, 0, 0, 0],  # position 0
        ]
    )
    logits = random_logits(4, 5, 11)
    targets = torch.tensor([0, 2, 1, 2])
    got = last_token_log_odds(LABELS, pad_token_id=pad)(logits, targets, ids)
    expected = literal_log_odds(logits, [4, 1, 2, 0], LABELS, targets.tolist())
    assert got.dtype == torch.float32
    assert got.tolist() == pytest.approx(expected, abs=1e-5)


def test_right_padding_found_from_the_attention_mask():
    # The padding's ids are real token ids (GPT-2 pads with its end-of-text token): only the mask tells.
    ids = torch.tensor([[4, 8, 3, 6, 1], [7, 3, 4, 4, 4], [5, 1, 6, 4, 4]])
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0]])
    logits = random_logits(3, 5, 11, seed=1)
    targets = torch.tensor([1, 0, 2])
    fn = last_token_log_odds(LABELS)
    expected = literal_log_odds(logits, [4, 1, 2], LABELS, targets.tolist())
    for inputs in ({"input_ids": ids, "attention_mask": mask}, {"attention_mask": mask.float()}):
        assert fn(logits, targets, inputs).tolist() == pytest.approx(expected, abs=1e-5)
    # A pad id, when given, decides even where a mask is present: 4 is the padding here.
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(mask)}
    with_pad = last_token_log_odds(LABELS, pad_token_id=4)(logits, targets, inputs)
    assert with_pad.tolist() == pytest.approx(expected, abs=1e-5)


def test_tuple_inputs_read_the_ids_from_the_first_element():
    ids = torch.tensor([[4, 8, 3, 0], [7, 0, 0, 0]])
    logits = random_logits(2, 4, 10, seed=2)
    targets = torch.tensor([2, 0])
    other = torch.ones(2, 4)  # what else the model was called with: never read
    got = last_token_log_odds(LABELS, pad_token_id=0)(logits, targets, (ids, other))
    assert got.tolist() == pytest.approx(literal_log_odds(logits, [2, 0], LABELS, targets.tolist()), abs=1e-5)
    # Without a pad id a tuple holds no attention mask: the last position, L - 1.
    got = last_token_log_odds(LABELS)(logits, targets, [ids, other])
    assert got.tolist() == pytest.approx(literal_log_odds(logits, [3, 3], LABELS, targets.tolist()), abs=1e-5)


def test_plain_ids_without_pad_id_use_the_last_position():
    ids = torch.tensor([[4, 8, 3], [7, 0, 0]])
    logits = random_logits(2, 3, 10, seed=3)
    targets = torch.tensor([1, 1])
    got = last_token_log_odds([5, 2])(logits, targets, ids)
    assert got.tolist() == pytest.approx(literal_log_odds(logits, [2, 2], [5, 2], targets.tolist()), abs=1e-5)


def test_containers_large_gaps_and_dtypes():
    # Logits in a Hugging Face style container; a 300 gap stays exact (naive softmax gives inf).
    logits = torch.zeros(2, 3, 6, dtype=torch.float64)
    logits[0, 1, 4], logits[1, 2, 1] = 300.0, -300.0
    ids = torch.tensor([[1, 2, 0], [3, 4, 5]])
    fn = last_token_log_odds([4, 1], pad_token_id=0)
    targets = torch.tensor([0, 1])
    got = fn({"logits": logits, "past_key_values": None}, targets, ids)
    assert got.dtype == torch.float64
    assert got.tolist() == [300.0, -300.0]
    half = fn((logits.half(),), targets, ids)  # a container: cast to float32 like every named output
    assert half.dtype == torch.float32 and torch.isfinite(half).all()


def test_the_function_object():
    fn = last_token_log_odds((17, 3), pad_token_id=50)
    assert fn.needs_inputs is True and type(fn).needs_inputs is True
    assert repr(fn) == "last_token_log_odds([17, 3], pad_token_id=50)"
    assert repr(last_token_log_odds(torch.tensor([4, 1]))) == "last_token_log_odds([4, 1])"
    assert resolve_output(fn) is fn
    copy = pickle.loads(pickle.dumps(fn))  # the monitor may be pickled (DDP spawn, checkpoints)
    assert repr(copy) == repr(fn) and copy.label_token_ids == (17, 3)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        ([5], ValueError, "at least 2 distinct non-negative token ids, got \\[5\\]"),
        ([], ValueError, "at least 2 distinct"),
        ([3, 3], ValueError, "at least 2 distinct"),
        ([-1, 2], ValueError, "non-negative"),
        ([1.0, 2.0], TypeError, "label_token_ids must be a sequence of int token ids"),
        ([True, False], TypeError, "int token ids"),
        ([[318], [470]], TypeError, "a label of several tokens"),
        ("ab", TypeError, "int token ids"),
        (7, TypeError, "int token ids, one per class, got 7"),
    ],
)
def test_bad_label_token_ids(labels, error, match):
    with pytest.raises(error, match=match):
        last_token_log_odds(labels)


@pytest.mark.parametrize("pad", ["0", 1.0, True])
def test_bad_pad_token_id(pad):
    with pytest.raises(TypeError, match="pad_token_id must be an int or None"):
        last_token_log_odds([1, 2], pad_token_id=pad)


def test_pad_token_id_is_keyword_only():
    with pytest.raises(TypeError):
        last_token_log_odds([1, 2], 0)


def test_errors_at_call_time():
    fn = last_token_log_odds([4, 1], pad_token_id=0)
    logits = torch.zeros(2, 3, 6)
    ids = torch.tensor([[1, 2, 0], [3, 4, 5]])
    targets = torch.tensor([0, 1])
    with pytest.raises(TypeError, match=r"needs the model inputs.*fn\(model_output, targets, inputs\)"):
        fn(logits, targets)
    with pytest.raises(ValueError, match="masked input 1 has no non-padding token in its input ids"):
        fn(logits, targets, torch.tensor([[1, 0, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match="masked input 0 has no non-padding token in its attention_mask"):
        last_token_log_odds([4, 1])(logits, targets, {"attention_mask": torch.tensor([[0, 0, 0], [1, 1, 0]])})
    with pytest.raises(ValueError, match=r"class indices in 0 \.\. 1 \(target k is label_token_ids\[k\]"):
        fn(logits, torch.tensor([0, 2]), ids)
    with pytest.raises(TypeError, match="integer class indices"):
        fn(logits, targets.float(), ids)
    with pytest.raises(ValueError, match="needs the target of every sample"):
        fn(logits, None, ids)
    with pytest.raises(
        ValueError, match=r"input ids \(read for pad_token_id=0\) must be a tensor of shape \(2, 3\)"
    ):
        fn(logits, targets, ids[:, :2])
    with pytest.raises(ValueError, match="got NoneType"):
        fn(logits, targets, {"attention_mask": torch.ones(2, 3)})  # a pad id needs the ids
    with pytest.raises(TypeError, match="expected the model inputs as a tensor of ids"):
        fn(logits, targets, "text")
    with pytest.raises(ValueError, match="below the vocabulary size V = 4"):
        fn(logits[:, :, :4], targets, ids)
    with pytest.raises(ValueError, match=r"\(N, L, V\).*got \(2, 6\); for class logits \(N, C\)"):
        fn(logits[:, 0], targets, ids)


# ---------------------------------------------------------------------------------------------
# A real causal language model: GPT-2 from a tiny config, right-padded batch
# ---------------------------------------------------------------------------------------------


def test_gpt2_right_padded_batch_matches_each_row_run_alone():
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=16, vocab_size=50, n_positions=32)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    lengths = [7, 3, 5, 1]
    pad = 49  # never a real token below
    rows = [
        torch.randint(0, 49, (length,), generator=torch.Generator().manual_seed(i))
        for i, length in enumerate(lengths)
    ]
    ids = torch.full((len(rows), max(lengths)), pad)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)], mask[i, : len(row)] = row, 1
    labels, targets = [11, 30, 2], torch.tensor([0, 2, 1, 0])
    with torch.no_grad():
        batch = model(input_ids=ids, attention_mask=mask)
        # Literal: each row alone, unpadded, so that padding is never read; its last position's logits.
        alone = [model(input_ids=row[None]).logits[0, -1].double() for row in rows]
    expected = []
    for z_all, y in zip(alone, targets.tolist()):
        z = [float(z_all[t]) for t in labels]
        expected.append(z[y] - math.log(math.fsum(math.exp(z[j]) for j in range(len(z)) if j != y)))
    by_mask = last_token_log_odds(labels)(batch, targets, {"input_ids": ids, "attention_mask": mask})
    by_pad = last_token_log_odds(labels, pad_token_id=pad)(batch.logits, targets, ids)
    assert by_mask.tolist() == pytest.approx(expected, abs=1e-5)
    assert by_pad.tolist() == pytest.approx(expected, abs=1e-5)
    # Reading the last position regardless of padding reads padding in the padded rows 1 to 3.
    naive = last_token_log_odds(labels)(batch, targets, ids).tolist()
    assert naive[0] == pytest.approx(expected[0], abs=1e-5)
    assert all(abs(naive[i] - expected[i]) > 1e-3 for i in (1, 2, 3))


def test_the_name_earlier_releases_pickled_the_output_under_still_resolves() -> None:
    from lightning_interactions.engine import outputs
    from lightning_interactions.engine._last_token import LastTokenLogOdds

    # pickle finds a class by getattr(module, name): earlier releases wrote outputs._LastTokenLogOdds.
    assert outputs._LastTokenLogOdds is LastTokenLogOdds
    with pytest.raises(AttributeError):
        outputs.no_such_name  # noqa: B018
