"""Process settings for forward passes: torch's thread count and where hub files go.
"""
from __future__ import annotations

import os

import torch

from probebank.paths import keep_hub_in_cache


def runtime_threads() -> int:
    """Threads for the forward passes: OMP_NUM_THREADS when set to a positive integer (the user's
    choice, e.g. on a shared machine), else every core (torch's default may be fewer)."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    return os.cpu_count() or 1


def prepare_runtime() -> None:
    """Keep hub files in our cache and set torch's thread count (runtime_threads)."""
    keep_hub_in_cache()
    n = runtime_threads()
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
