"""Small seeded inputs that several test modules draw the same way.

Example:
    >>> padded_token_ids().shape, int(padded_token_ids()[2, 5])
    (torch.Size([3, 9]), 0)
"""

from __future__ import annotations

import torch


def seeded(seed: int = 0) -> torch.Generator:
    """A CPU generator with this seed."""
    return torch.Generator().manual_seed(seed)


def padded_token_ids() -> torch.Tensor:
    """``(3, 9)`` token ids from 5 to 49, samples 0 and 2 right-padded with 0 (from positions 6 and 5)."""
    ids = torch.randint(5, 50, (3, 9), generator=seeded(1))
    ids[0, 6:] = 0
    ids[2, 5:] = 0
    return ids
