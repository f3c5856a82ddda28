"""How much memory a measurement needs, how much the device has, and out-of-memory errors.

:func:`estimate_memory` adds up what the engine allocates for one measurement (the float64
table ``v``, the masked inputs of one chunk, the samples themselves and the extraction's
working memory); the model's own activations are unknown and not counted. :func:`available_memory`
reads what the device can still give: free CUDA memory plus what PyTorch's cache holds unused,
or ``MemAvailable`` of ``/proc/meminfo`` on the CPU. :data:`OOM_ERRORS` are the exception types
of a CUDA out-of-memory error in every supported torch (``torch.cuda.OutOfMemoryError`` since 1.13,
the device-generic ``torch.OutOfMemoryError`` it became an alias of since 2.5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from lightning_interactions.extraction.and_or import ROW_SPACE_MAX_PLAYERS

__all__ = [
    "OOM_ERRORS",
    "MemoryEstimate",
    "available_memory",
    "estimate_memory",
    "release_cached_memory",
]

OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {torch.cuda.OutOfMemoryError, getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)}
)

GIB = 2**30

# Extraction working memory per sample, in float64 words (extraction/_column_generation.py,
# _master.py, _interior_point.py, _gram.py):
# * 2^n terms: v, its four outputs, the transforms of the first candidates and of the pricing
#   (2 x 2^n each), and about twenty interior-point vectors over 2k + 3 * 2^n inequality rows;
#   the tightened bound (_certificate.py: 8 L-BFGS pairs and a dozen more vectors, about 30 x
#   2^n) runs after the interior point has freed its vectors, so it fits in the same count;
# * 3^n terms: the interval-sum block of a Gram matrix's lookup table, plus the two partial
#   tables it is built from (2/3 and 4/9 of its size): about 2.1 3^n, counted as 3;
# * k^2 terms: the Gram plan keeps four k x k int64 index tensors and builds a dozen more of
#   them as temporaries; the Gram matrix and its Cholesky factor add two.
# Dense samples (n <= 12) leave the column generation after three rounds for the row-space dual
# (extraction/_row_space.py): a 2^n x 2^n Newton matrix and its factor per sample, at most
# DUAL_CHUNK_BYTES (1 GiB) of them at a time, below the k^2 term above, plus two shared 4^n int64
# indices and a 4^n scratch vector, counted in the fixed part (384 MiB at n = 12).
_WORDS_PER_MASK = 80
_WORDS_PER_TERNARY = 3
_WORDS_PER_GRAM_ENTRY = 16
# Candidates grow by 12 n per column-generation round (at most 2^(n+1) - 1 with the constant);
# the estimate assumes 16 rounds with every sample still active. Measured peak resident memory
# (random v, the slowest to certify, and log-odds of a random MLP) stayed below it: n = 6, 8 and
# 10 took up to 16 rounds, n = 10 peaked at 104 (MLP) and 308 (random) MiB per sample against
# 452 estimated. A run that needs more rounds for many samples at once can need more.
_CANDIDATES_PER_PLAYER = 12
_ROUNDS = 16
# Whatever the size, the allocators' arenas and torch's temporaries add a few MiB to the
# resident peak of one extraction: 8 random samples at n = 6 need about 8 MiB of arrays by the
# count above but peaked at 10 to 17 MiB over repeated runs.
_EXTRACTION_OVERHEAD = 8 * 2**20


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes one measurement allocates, by part (the model's activations are not included)."""

    v_table: int
    inputs: int
    masked_chunk: int
    extraction: int

    @property
    def forward(self) -> int:
        """Peak during the forward passes: ``v``, the samples and one chunk of masked inputs."""
        return self.v_table + self.inputs + self.masked_chunk


def extraction_bytes(num_samples: int, num_players: int) -> int:
    """Estimated extraction working memory of ``num_samples`` samples solved together with ``n`` players.

    A fixed part (``extraction_bytes(0, n)``) plus the same amount per sample.
    """
    n = num_players
    candidates = min(2 ** (n + 1) - 1, _CANDIDATES_PER_PLAYER * n * _ROUNDS)
    words = _WORDS_PER_MASK * 2**n + _WORDS_PER_TERNARY * 3**n + _WORDS_PER_GRAM_ENTRY * candidates**2
    dual_shared = 3 * 4**n if n <= ROW_SPACE_MAX_PLAYERS else 0
    return _EXTRACTION_OVERHEAD + 8 * dual_shared + 8 * num_samples * words


def estimate_memory(
    num_samples: int, num_players: int, batch_size: int, sample_numel: int, element_size: int
) -> MemoryEstimate:
    """What a measurement of ``num_samples`` samples with ``num_players`` players allocates.

    ``sample_numel`` and ``element_size`` describe one sample as the model gets it; a chunk
    holds ``min(batch_size, num_samples * 2^n)`` masked samples, plus one boolean per element
    for the keep flags the maskers build.

    Example:
        >>> estimate = estimate_memory(4, 10, 1024, 784, 4)
        >>> estimate.v_table  # 4 x 2^10 float64
        32768
        >>> estimate.masked_chunk == 1024 * 784 * (4 + 1)
        True
    """
    masks = 2**num_players
    chunk = min(batch_size, num_samples * masks)
    return MemoryEstimate(
        v_table=8 * num_samples * masks,
        inputs=num_samples * sample_numel * element_size,
        masked_chunk=chunk * sample_numel * (element_size + 1),
        extraction=extraction_bytes(num_samples, num_players),
    )


def _cpu_available() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo``; else free physical pages; None if neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def available_memory(device: torch.device) -> int | None:
    """Bytes the engine can still allocate on ``device``; None where that is not known.

    CUDA: free device memory plus memory PyTorch's caching allocator holds but does not use.
    CPU: ``MemAvailable`` (the kernel's estimate of what can be allocated without swapping).
    Other devices (MPS, XPU, ...): None, and no check is made.
    """
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(device)
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
        return int(free) + int(cached)
    if device.type == "cpu":
        return _cpu_available()
    return None


def release_cached_memory() -> None:
    """Give memory cached by PyTorch's CUDA allocator back, so a smaller retry can use it."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def format_gib(num_bytes: float) -> str:
    """Bytes as GiB with enough digits to tell small sizes apart."""
    value = num_bytes / GIB
    return f"{value:.3g} GiB" if value < 10 else f"{value:,.1f} GiB"
