"""8-bit activations, as Gurnee et al. stored theirs: per-unit affine uint8 codes with a scale and offset.

For each (layer, unit) of one shard, the rows' range [lo, hi] is cut into 255 equal steps:
code = round((x - lo) / scale), x ~ lo + code * scale, with scale = (hi - lo) / 255. The error of
a value is at most scale / 2, half a step of that unit's own range; a constant unit decodes exactly.
The scale and offset ([n_layers, width] float32) are kept beside the codes in the shard.
"""
from __future__ import annotations

import numpy as np

STORE_DTYPES = ("float16", "uint8")
LEVELS = 255


def encode(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[n_layers, rows, width] floats -> (uint8 codes, scale [n_layers, width], offset [n_layers, width]).

    One layer at a time in float32, so the working memory is one layer's slice, not the shard's.
    """
    n_layers, _, width = arr.shape
    codes = np.empty(arr.shape, dtype=np.uint8)
    scale = np.ones((n_layers, width), dtype=np.float32)
    offset = np.zeros((n_layers, width), dtype=np.float32)
    for li in range(n_layers):
        x = np.asarray(arr[li], dtype=np.float32)
        if x.shape[0] == 0:
            continue
        lo, hi = x.min(axis=0), x.max(axis=0)
        step = (hi - lo) / LEVELS
        step[step == 0] = 1.0  # a constant unit: every code is 0 and decodes to lo exactly
        codes[li] = np.rint((x - lo) / step).clip(0, LEVELS).astype(np.uint8)
        scale[li], offset[li] = step, lo
    return codes, scale, offset


def decode(codes: np.ndarray, scale: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """[rows, width] uint8 codes of one layer -> float32 activations."""
    return codes.astype(np.float32) * scale + offset
