"""TokenMasker with special tokens, attention masks, dict batches and Hugging Face tokenizers.

Every expectation is written by hand or computed by a plain loop over masks and players here.
"""

from __future__ import annotations

import pytest
import torch
from helpers.inputs import padded_token_ids

from lightning_interactions.masking import TokenMasker

CLS, SEP, PAD, MASK, UNK = 101, 102, 0, 103, 100

# Three samples: [CLS] words [SEP] then padding. Sample 1 has a [SEP] in the middle (a sentence
# pair) and sample 2 ends in padding that only the attention mask shows (its ids are words).
IDS = torch.tensor(
    [
        [CLS, 7, 8, 9, 10, 11, SEP, PAD],
        [CLS, 12, 13, SEP, 14, 15, SEP, PAD],
        [CLS, 16, 17, 18, SEP, 19, 20, 21],
    ]
)
ATTENTION = torch.tensor(
    [
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 0, 0, 0],
    ]
)
# The positions that may be players, by hand: words that are attended to.
ALLOWED = [{1, 2, 3, 4, 5}, {1, 2, 4, 5}, {1, 2, 3}]


def _bert_masker(**kwargs):
    settings = dict(pad_token_id=PAD, special_token_ids=[CLS, SEP, PAD, MASK, UNK])
    return TokenMasker(MASK, **{**settings, **kwargs})


def _expected_ids(ids, positions, mask, fill):
    """Sample ``ids`` (a list) with the players absent from ``mask`` set to ``fill``."""
    out = list(ids)
    for i, p in enumerate(positions):
        if not (mask >> i) & 1:
            out[p] = fill
    return out


# ---------------------------------------------------------------------------------------------
# Players: never special, never padding
# ---------------------------------------------------------------------------------------------


def test_special_tokens_are_never_chosen_and_never_masked():
    ids = IDS[:2]
    masker = _bert_masker(num_players=4)
    masks = torch.arange(16)
    for seed in range(60):
        positions = masker.select_players(ids, seed=seed)["positions"]
        out = masker.apply(ids, {"positions": positions}, masks)
        for b in range(2):
            chosen = positions[b].tolist()
            assert len(set(chosen)) == 4 and set(chosen) <= ALLOWED[b], (seed, b, chosen)
            for m, mask in enumerate(masks.tolist()):
                assert out[b, m].tolist() == _expected_ids(ids[b].tolist(), chosen, mask, MASK)
        # [CLS] and [SEP] hold their ids in every masked copy.
        special = ((ids == CLS) | (ids == SEP))[:, None].expand_as(out)
        assert torch.equal(out[special], ids[:, None].expand_as(out)[special])


def test_random_players_cover_every_allowed_position_over_seeds():
    masker = _bert_masker(num_players=2)
    seen = [set(), set()]
    for seed in range(60):
        positions = masker.select_players(IDS[:2], seed=seed)["positions"]
        for b in range(2):
            seen[b] |= set(positions[b].tolist())
    assert seen == ALLOWED[:2]


def test_padding_from_the_attention_mask_and_from_the_pad_id():
    masker = _bert_masker(num_players=3)
    fields = {"attention_mask": ATTENTION, "token_type_ids": torch.zeros_like(IDS)}
    for seed in range(40):
        positions = masker.select_players_with(IDS, fields, seed=seed)["positions"]
        for b in range(3):
            assert set(positions[b].tolist()) <= ALLOWED[b], (seed, b)
    # Sample 2 has exactly 3 allowed positions: all of them, whatever the seed.
    assert positions[2].tolist() == [1, 2, 3]


def test_pad_id_alone_marks_padding_without_an_attention_mask():
    ids = torch.tensor([[5, 6, 0, 7, 0]])
    masker = TokenMasker(9, num_players=3, pad_token_id=0)
    for seed in range(10):
        assert masker.select_players_with(ids, {}, seed=seed)["positions"].tolist() == [[0, 1, 3]]


def test_attention_mask_alone_marks_padding_without_a_pad_id():
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    attention = torch.tensor([[1, 0, 1, 1, 0]], dtype=torch.bool)
    masker = TokenMasker(4, num_players=3)
    positions = masker.select_players_with(ids, {"attention_mask": attention}, seed=3)["positions"]
    assert positions.tolist() == [[0, 2, 3]]
    # Without the field every position is allowed.
    assert masker.select_players(ids, seed=3)["positions"].shape == (1, 3)


def test_select_players_is_select_players_with_no_fields():
    masker = _bert_masker(num_players=3)
    for seed in range(5):
        plain = masker.select_players(IDS[:2], seed=seed)["positions"]
        with_fields = masker.select_players_with(IDS[:2], {}, seed=seed)["positions"]
        assert torch.equal(plain, with_fields)


def test_a_pad_id_the_dtype_cannot_hold_finds_no_padding():
    # uint8 ids compared with 300 wrap it to 44; token 44 is not padding.
    ids = torch.tensor([[44, 1, 2]], dtype=torch.uint8)
    masker = TokenMasker(3, num_players=3, pad_token_id=300)
    assert masker.select_players(ids)["positions"].tolist() == [[0, 1, 2]]


def test_too_few_allowed_positions_names_the_sample_and_the_counts():
    masker = _bert_masker(num_players=4)
    # Sample 2 has 6 non-special ids; its attention mask leaves 3.
    masker.validate(IDS)
    with pytest.raises(
        ValueError, match=r"sample 2 has 3 non-padding, non-special tokens, fewer than num_players=4"
    ):
        masker.select_players_with(IDS, {"attention_mask": ATTENTION})
    with pytest.raises(ValueError, match="lower num_players"):
        masker.select_players_with(IDS, {"attention_mask": ATTENTION})
    with pytest.raises(
        ValueError, match=r"sample 1 has 4 non-padding, non-special tokens, fewer than num_players=5"
    ):
        _bert_masker(num_players=5).validate(IDS)


def test_fixed_players_on_special_tokens_or_padding_are_refused():
    with pytest.raises(ValueError, match=r"position 0 is a special token in sample 0.*players="):
        _bert_masker(players=[0, 1]).validate(IDS)
    with pytest.raises(ValueError, match="position 3 is a special token in sample 1"):
        _bert_masker(players=[1, 3]).validate(IDS)
    with pytest.raises(ValueError, match="position 7 is padding in sample 0"):
        _bert_masker(players=[1, 7]).validate(IDS)
    # Position 5 of sample 2 is padding only by its attention mask.
    masker = _bert_masker(players=[1, 5])
    masker.validate(IDS)
    with pytest.raises(ValueError, match="position 5 is padding in sample 2"):
        masker.select_players_with(IDS, {"attention_mask": ATTENTION})
    assert masker.select_players_with(IDS[:2], {"attention_mask": ATTENTION[:2]})["positions"].tolist() == [
        [1, 5],
        [1, 5],
    ]


def test_an_attention_mask_of_another_shape_is_refused():
    with pytest.raises(ValueError, match="'attention_mask' field must have the shape of the token ids"):
        _bert_masker(num_players=2).select_players_with(IDS, {"attention_mask": ATTENTION[:, :5]})


# ---------------------------------------------------------------------------------------------
# Masked as attention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32, torch.bool])
def test_attention_mode_zeroes_the_attention_of_absent_players(dtype):
    masker = _bert_masker(num_players=3, masked_as="attention")
    attention = ATTENTION.to(dtype)
    fields = {"attention_mask": attention, "token_type_ids": torch.ones_like(IDS)}
    players = masker.select_players_with(IDS, fields, seed=7)
    masks = torch.arange(8)
    ids_out = masker.apply(IDS, players, masks)
    out = masker.mask_fields(fields, players, masks)
    assert set(out) == {"attention_mask", "token_type_ids"}
    assert out["attention_mask"].shape == (3, 8, 8) and out["attention_mask"].dtype == dtype
    assert torch.equal(out["token_type_ids"], torch.ones(3, 8, 8, dtype=torch.long))
    for b in range(3):
        positions = players["positions"][b].tolist()
        for m, mask in enumerate(masks.tolist()):
            assert ids_out[b, m].tolist() == IDS[b].tolist()  # the ids are kept
            expected = [bool(v) for v in ATTENTION[b].tolist()]
            for i, p in enumerate(positions):
                if not (mask >> i) & 1:
                    expected[p] = False
            assert out["attention_mask"][b, m].bool().tolist() == expected, (b, mask)


def test_attention_mode_with_fixed_players_literal():
    masker = TokenMasker(players=[1, 3], masked_as="attention")
    assert masker.mask_token_id is None
    ids = torch.tensor([[5, 6, 7, 8]])
    fields = {"attention_mask": torch.tensor([[1, 1, 1, 1]])}
    players = masker.select_players_with(ids, fields)
    out = masker.mask_fields(fields, players, torch.tensor([0, 1, 2, 3]))
    assert out["attention_mask"].tolist() == [[[1, 0, 1, 0], [1, 1, 1, 0], [1, 0, 1, 1], [1, 1, 1, 1]]]


def test_attention_mode_apply_honours_out_and_copies_the_ids():
    masker = TokenMasker(players=[0, 2], masked_as="attention")
    ids = torch.tensor([[5, 6, 7], [8, 9, 10]])
    players = masker.select_players(ids)
    buffer = torch.full((2, 3, 3), -1)
    got = masker.apply(ids, players, torch.tensor([0, 1, 3]), out=buffer)
    assert got is buffer
    assert buffer.tolist() == [[[5, 6, 7]] * 3, [[8, 9, 10]] * 3]
    fresh = masker.apply(ids, players, torch.tensor([3]))
    fresh[0, 0, 0] = 99
    assert ids[0, 0] == 5  # a copy, not a view of the caller's ids


def test_attention_mode_needs_an_attention_mask_field():
    masker = TokenMasker(players=[0, 1], masked_as="attention")
    ids = torch.tensor([[5, 6, 7]])
    players = masker.select_players(ids)
    with pytest.raises(ValueError, match=r"no 'attention_mask' field.*\['token_type_ids'\]"):
        masker.mask_fields({"token_type_ids": torch.zeros_like(ids)}, players, torch.tensor([0]))


def test_mask_token_mode_leaves_the_fields_unchanged():
    masker = _bert_masker(num_players=2)
    fields = {"attention_mask": ATTENTION, "token_type_ids": torch.zeros_like(IDS)}
    players = masker.select_players_with(IDS, fields)
    out = masker.mask_fields(fields, players, torch.tensor([0, 3]))
    for name, value in fields.items():
        assert torch.equal(out[name], value[:, None].expand(3, 2, 8))
    masked = masker.apply(IDS, players, torch.tensor([0]))
    for b in range(3):
        assert masked[b, 0].tolist() == _expected_ids(
            IDS[b].tolist(), players["positions"][b].tolist(), 0, MASK
        )


# ---------------------------------------------------------------------------------------------
# Refusals at construction
# ---------------------------------------------------------------------------------------------


def test_masked_as_must_be_one_of_the_choices():
    with pytest.raises(ValueError, match=r"masked_as must be 'mask_token' or 'attention', got 'zeros'"):
        TokenMasker(3, masked_as="zeros")


def test_mask_token_mode_needs_a_mask_token_id():
    with pytest.raises(ValueError, match=r"pass mask_token_id=, or masked_as='attention'"):
        TokenMasker(num_players=2)


def test_a_mask_token_equal_to_the_pad_token_is_refused():
    with pytest.raises(
        ValueError, match=r"mask_token_id and pad_token_id are both 0.*masked token from padding"
    ):
        TokenMasker(0, pad_token_id=0)
    with pytest.raises(ValueError, match="mask_token_id and pad_token_id are both 5"):
        TokenMasker(5, pad_token_id=5, masked_as="attention")


def test_the_mask_token_may_be_a_special_token():
    masker = TokenMasker(MASK, special_token_ids=[CLS, SEP, MASK], vocab_size=200)
    assert masker.special_token_ids == (CLS, SEP, MASK)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(mask_token_id=30), "mask_token_id"),
        (dict(mask_token_id=3, pad_token_id=31), "pad_token_id"),
        (dict(mask_token_id=3, special_token_ids=[1, 40]), r"special_token_ids\[1\]"),
    ],
)
def test_ids_outside_the_vocabulary_are_refused(kwargs, name):
    with pytest.raises(
        ValueError, match=rf"{name}=\d+ is outside the vocabulary 0 \.\. 29 \(vocab_size=30\)"
    ):
        TokenMasker(**kwargs, vocab_size=30)
    TokenMasker(**kwargs)  # without vocab_size nothing to check against


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(mask_token_id=-1), "mask_token_id"),
        (dict(mask_token_id=3, pad_token_id=-2), "pad_token_id"),
        (dict(mask_token_id=3, special_token_ids=[-5]), r"special_token_ids\[0\]"),
    ],
)
def test_negative_ids_are_refused(kwargs, name):
    with pytest.raises(ValueError, match=rf"{name} must be a non-negative token id"):
        TokenMasker(**kwargs)


@pytest.mark.parametrize("bad", [True, 3.0, "[MASK]", torch.tensor(3)])
@pytest.mark.parametrize(
    "make, name",
    [
        (lambda bad: TokenMasker(bad), "mask_token_id"),
        (lambda bad: TokenMasker(3, pad_token_id=bad), "pad_token_id"),
        (lambda bad: TokenMasker(3, special_token_ids=[1, bad]), r"special_token_ids\[1\]"),
    ],
)
def test_ids_that_are_not_ints_are_refused(make, name, bad):
    with pytest.raises(TypeError, match=rf"{name} must be an int, got {type(bad).__name__}"):
        make(bad)


def test_special_token_ids_and_vocab_size_must_be_well_formed():
    with pytest.raises(TypeError, match="special_token_ids must be a sequence of ints, got str"):
        TokenMasker(3, special_token_ids="[CLS]")
    with pytest.raises(TypeError, match="special_token_ids must be a sequence of ints, got int"):
        TokenMasker(3, special_token_ids=101)
    with pytest.raises(TypeError, match="vocab_size must be an int, got float"):
        TokenMasker(3, vocab_size=30.0)
    with pytest.raises(ValueError, match="vocab_size must be at least 1, got 0"):
        TokenMasker(3, vocab_size=0)
    assert TokenMasker(3, special_token_ids=torch.tensor([9, 1, 9])).special_token_ids == (1, 9)


def test_mask_token_id_stays_the_first_positional_argument():
    masker = TokenMasker(3, 2, 0, None)
    assert (masker.mask_token_id, masker.num_players, masker.pad_token_id) == (3, 2, 0)
    with pytest.raises(TypeError):
        TokenMasker(3, 2, 0, None, [1])  # special_token_ids is keyword-only


# ---------------------------------------------------------------------------------------------
# from_tokenizer
# ---------------------------------------------------------------------------------------------

BERT_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "a", "dog"]


def _bert_tokenizer(cls_name, tmp_path):
    transformers = pytest.importorskip("transformers")
    (tmp_path / "vocab.txt").write_text("\n".join(BERT_VOCAB) + "\n")
    # from_pretrained on a local folder: no download, and the same on transformers 4 and 5 (5 ignores
    # BertTokenizer(vocab_file=...), leaving only the special tokens).
    return getattr(transformers, cls_name).from_pretrained(str(tmp_path))


@pytest.mark.parametrize("cls_name", ["BertTokenizer", "BertTokenizerFast"])
def test_from_a_bert_tokenizer(cls_name, tmp_path):
    tokenizer = _bert_tokenizer(cls_name, tmp_path)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=2)
    assert (masker.mask_token_id, masker.pad_token_id) == (4, 0)
    assert masker.special_token_ids == (0, 1, 2, 3, 4)
    assert masker.vocab_size == len(BERT_VOCAB) == 12
    assert masker.masked_as == "mask_token"
    batch = tokenizer(["the cat sat on the mat", "a dog"], padding=True, return_tensors="pt")
    assert batch["input_ids"].tolist() == [[2, 5, 6, 7, 8, 5, 9, 3], [2, 10, 11, 3, 0, 0, 0, 0]]
    fields = {name: value for name, value in batch.items() if name != "input_ids"}
    ids = batch["input_ids"]
    for seed in range(30):
        players = masker.select_players_with(ids, fields, seed=seed)
        positions = players["positions"].tolist()
        assert set(positions[0]) <= {1, 2, 3, 4, 5, 6} and positions[1] == [1, 2]
        masked = masker.apply(ids, players, torch.arange(4))
        for b in range(2):
            for mask in range(4):
                assert masked[b, mask].tolist() == _expected_ids(ids[b].tolist(), positions[b], mask, 4)


def test_from_tokenizer_gives_the_pictures_the_words_and_still_pickles(tmp_path):
    import pickle

    tokenizer = _bert_tokenizer("BertTokenizerFast", tmp_path)
    masker = pickle.loads(pickle.dumps(TokenMasker.from_tokenizer(tokenizer, num_players=2)))
    assert [masker.decode(token) for token in (2, 6, 4, 99)] == ["[CLS]", "cat", "[MASK]", "<99>"]
    assert TokenMasker(mask_token_id=4, num_players=2).decode is None  # no tokenizer, no words


def test_from_tokenizer_counts_added_tokens_in_the_vocabulary(tmp_path):
    tokenizer = _bert_tokenizer("BertTokenizerFast", tmp_path)
    tokenizer.add_tokens(["zebra", "yak"])
    assert len(tokenizer) == 14
    masker = TokenMasker.from_tokenizer(tokenizer)
    assert masker.vocab_size == 14
    assert masker.num_players == 10


def test_from_tokenizer_keyword_arguments_override_the_tokenizer(tmp_path):
    tokenizer = _bert_tokenizer("BertTokenizerFast", tmp_path)
    masker = TokenMasker.from_tokenizer(
        tokenizer, 3, players=None, mask_token_id=1, special_token_ids=[2, 3], vocab_size=100
    )
    assert (masker.mask_token_id, masker.pad_token_id, masker.special_token_ids, masker.vocab_size) == (
        1,
        0,
        (2, 3),
        100,
    )
    fixed = TokenMasker.from_tokenizer(tokenizer, players=[1, 2], masked_as="attention")
    assert fixed.players == (1, 2) and fixed.masked_as == "attention" and fixed.mask_token_id == 4
    with pytest.raises(ValueError, match=r"pad_token_id=50 is outside the vocabulary"):
        TokenMasker.from_tokenizer(tokenizer, pad_token_id=50)
    with pytest.raises(TypeError, match=r"unexpected keyword arguments \['mask_token'\]"):
        TokenMasker.from_tokenizer(tokenizer, mask_token="[MASK]")


def _gpt2_like_tokenizer():
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")
    vocab = {"<|endoftext|>": 0, "hello": 1, "world": 2, "again": 3, "<unk>": 4}
    model = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    model.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=model, eos_token="<|endoftext|>", unk_token="<unk>"
    )
    tokenizer.pad_token = tokenizer.eos_token  # as GPT-2 users do
    return tokenizer


def test_a_tokenizer_without_a_mask_token_needs_attention_or_a_mask_token_id():
    tokenizer = _gpt2_like_tokenizer()
    assert tokenizer.mask_token_id is None
    with pytest.raises(ValueError, match=r"no mask token; pass masked_as='attention'.*or mask_token_id="):
        TokenMasker.from_tokenizer(tokenizer, num_players=2)
    masker = TokenMasker.from_tokenizer(tokenizer, num_players=2, masked_as="attention")
    assert (masker.mask_token_id, masker.pad_token_id, masker.special_token_ids, masker.vocab_size) == (
        None,
        0,
        (0, 4),
        5,
    )
    batch = tokenizer(["hello world again", "hello world"], padding=True, return_tensors="pt")
    ids, fields = batch["input_ids"], {"attention_mask": batch["attention_mask"]}
    assert ids.tolist() == [[1, 2, 3], [1, 2, 0]]
    players = masker.select_players_with(ids, fields, seed=1)
    assert players["positions"][1].tolist() == [0, 1]
    out = masker.mask_fields(fields, players, torch.tensor([1]))  # player 0 present, player 1 absent
    assert out["attention_mask"][1].tolist() == [[1, 0, 0]]
    with_token = TokenMasker.from_tokenizer(tokenizer, num_players=2, mask_token_id=3)
    assert with_token.mask_token_id == 3 and with_token.masked_as == "mask_token"


def test_duck_typed_tokenizers_and_other_objects():
    class Tokenizer:
        mask_token_id, pad_token_id, all_special_ids = None, None, [7]

        def __len__(self):
            return 8

    masker = TokenMasker.from_tokenizer(Tokenizer(), 1, masked_as="attention")
    assert (masker.pad_token_id, masker.special_token_ids, masker.vocab_size) == (None, (7,), 8)
    with pytest.raises(TypeError, match="expects a Hugging Face tokenizer .* got dict"):
        TokenMasker.from_tokenizer({"mask_token_id": 3}, 1)


def test_ids_that_look_padded_without_a_pad_id_get_a_warning():
    masker = TokenMasker(mask_token_id=1, num_players=2)
    padded = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 0, 0, 0], [5, 6, 7, 8, 9]])
    with pytest.warns(UserWarning, match=r"2 of 3 samples end in a run of the token 0.*pad_token_id=0"):
        masker.select_players(padded)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: a pad id, an attention mask, or no runs
        TokenMasker(mask_token_id=1, num_players=2, pad_token_id=0).select_players(padded)
        masker.select_players_with(padded, {"attention_mask": (padded != 0).long()})
        masker.select_players(torch.tensor([[5, 6, 7, 3, 4], [5, 6, 2, 3, 4], [5, 6, 7, 8, 9]]))


# Padding is never a player; errors.


def test_token_padding_is_never_a_player():
    ids = padded_token_ids()
    masker = TokenMasker(mask_token_id=3, num_players=5, pad_token_id=0)
    for seed in range(25):
        positions = masker.select_players(ids, seed=seed)["positions"]
        assert ids.gather(1, positions).ne(0).all()
        # Padding keeps its value in every masked sample.
        out = masker.apply(ids, {"positions": positions}, torch.arange(32))
        assert torch.equal(out.eq(0), ids.eq(0)[:, None].expand_as(out))


def test_token_errors():
    ids = padded_token_ids()
    with pytest.raises(ValueError, match="sample 2 has 5 non-padding tokens, fewer than num_players=6"):
        TokenMasker(3, num_players=6, pad_token_id=0).validate(ids)
    with pytest.raises(ValueError, match="integer token ids"):
        TokenMasker(3, num_players=2).validate(ids.float())
    with pytest.raises(ValueError, match=r"\(B, L\)"):
        TokenMasker(3, num_players=2).validate(ids[None])
    with pytest.raises(ValueError, match="position 5 is padding in sample 2"):
        TokenMasker(3, players=[1, 5], pad_token_id=0).validate(ids)
    with pytest.raises(ValueError, match="position 9 >= the length 9"):
        TokenMasker(3, players=[9]).validate(ids)
    with pytest.raises(TypeError, match="mask_token_id must be an int"):
        TokenMasker("[MASK]")
