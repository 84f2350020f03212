"""Sizes that decide how work is cut into pieces, never what is computed.

Each is read when it is used (``tunables.CHUNK_ENTRIES``), so a test can shrink one
(``monkeypatch.setattr(tunables, "CHUNK_ENTRIES", 7)``) to force the chunked,
threaded or streamed path on a small input; results must not depend on them.
"""

from __future__ import annotations

__all__ = [
    "CHUNK_ENTRIES",
    "COMPILED",
    "DIGIT_TABLE_BYTES",
    "MAT_BLOCK",
    "MAT_MAX_BYTES",
    "MIN_CHUNK_ENTRIES",
    "MTX_CHUNK",
    "NUMPY_BLAS",
    "PARALLEL_MIN_ENTRIES",
    "UNIT_ENTRIES",
]

# ---- assembly (_assemble): entries per repeated super-unit; at most and at least per
# task (aiming at about eight tasks); the size from which a build uses the thread pool.
UNIT_ENTRIES = 8192
CHUNK_ENTRIES = 1 << 22
MIN_CHUNK_ENTRIES = 1 << 18
PARALLEL_MIN_ENTRIES = 1 << 20

# ---- operators (_kernel, _compiled, _winograd1d)
#: Whether the operators run the optional compiled kernels (numba, the ``[fast]`` extra:
#: depthwise layers, the 2-D Winograd transforms, the 1-D F(4, 3) path) when it is
#: installed; tests switch it off to run the numpy path on the same machine.
COMPILED = True
#: Whether the direct pass multiplies the taps' windows where they lie through numpy's own
#: BLAS (:mod:`toeplitz_conv._blas`) when it is found; tests switch it off to run the patch
#: copies on the same machine.
NUMPY_BLAS = True

# ---- files (_mtx, _mat)
#: Stored entries formatted at a time when writing Matrix Market text: the text of a
#: chunk (about 50 bytes an entry) and its working arrays stay near 20 MB.
MTX_CHUNK = 1 << 18
#: The most bytes spent on a table of the digits of every row (or column) number.
DIGIT_TABLE_BYTES = 1 << 25
#: Entries of a column block written at a time to a ``.mat`` file (the CSC order of a
#: CSR matrix is produced block by block, never as a whole copy).
MAT_BLOCK = 1 << 21
#: MAT v5 sizes are 32-bit: a variable holds less than 4 GiB (the format's limit; tests
#: lower it to reach the refusal).
MAT_MAX_BYTES = 2**32 - 1
