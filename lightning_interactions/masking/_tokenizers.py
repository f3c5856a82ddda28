"""What :class:`~lightning_interactions.masking.TokenMasker` reads from a Hugging Face tokenizer:
its special ids and vocabulary size, and each token's text for the pictures.

Example:
    >>> TokenText({"[PAD]": 0, "good": 7})(7)
    'good'
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["TOKENIZER_SETTINGS", "TokenText", "read_tokenizer"]

# The keyword arguments of from_tokenizer that override what the tokenizer gives.
TOKENIZER_SETTINGS = ("mask_token_id", "pad_token_id", "special_token_ids", "vocab_size")


class TokenText:
    """A token id's text, from a tokenizer's vocabulary ``{text: id}``; kept as a plain dict, so it pickles.

    Example:
        >>> TokenText({"[PAD]": 0, "good": 7})(7), TokenText({"good": 7})(3)
        ('good', '<3>')
    """

    def __init__(self, vocabulary: Mapping[str, int]) -> None:
        self.texts = {int(token): str(text) for text, token in vocabulary.items()}

    def __call__(self, token: int) -> str:
        return self.texts.get(int(token), f"<{token}>")


def read_tokenizer(tokenizer: object) -> dict[str, object]:
    """The ids :meth:`TokenMasker.from_tokenizer` takes from a Hugging Face tokenizer."""
    try:
        vocab_size = len(tokenizer)  # the added tokens too, unlike tokenizer.vocab_size
        special_ids = list(tokenizer.all_special_ids)
        return {
            "mask_token_id": tokenizer.mask_token_id,
            "pad_token_id": tokenizer.pad_token_id,
            "special_token_ids": special_ids,
            "vocab_size": vocab_size,
        }
    except (AttributeError, TypeError) as error:
        raise TypeError(
            "TokenMasker.from_tokenizer expects a Hugging Face tokenizer (mask_token_id, pad_token_id, "
            f"all_special_ids and len()), got {type(tokenizer).__name__}: {error}"
        ) from error
