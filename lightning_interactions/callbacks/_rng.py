"""Leave every random number generator exactly as it was found."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch


@contextmanager
def preserved_rng_state() -> Iterator[None]:
    """Restore Python's, NumPy's, torch's CPU and (if initialised) CUDA RNG states on exit.

    Iterating a DataLoader draws a seed from torch's global generator, for example; the monitor
    must not shift the random stream that training sees.
    """
    python_state = random.getstate()
    numpy_state = np.random.get_state()
    torch_state = torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
