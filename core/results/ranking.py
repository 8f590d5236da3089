"""What a leaderboard ranking is made of: a row per entry (mean and Borda ranks, the paired test against
the entry above), a category's ranking, and the two rank rules (competition ranks, the Borda count)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RankRow:
    entry: str
    n_datasets: int
    mean: float
    mean_rank: int
    borda: float
    borda_rank: int
    # the paired test against the entry above (probebank.results.ties): tied -> it shares that entry's rank
    shared_rank: int | None = None
    tied_above: bool = False
    p_above: float | None = None
    n_paired: int = 0


@dataclass
class CategoryRanking:
    category: str
    datasets: list[str]
    rows: list[RankRow]
    refused: list[str]  # why no aggregate was computed (a dataset missing for an entry); empty when ranked


def competition_ranks(scores: dict[str, float]) -> dict[str, int]:
    """Competition ranks (1 = best; equal scores share a rank)."""
    ordered = sorted(scores.values(), reverse=True)
    return {e: 1 + ordered.index(s) for e, s in scores.items()}


def borda(per_dataset: dict[str, dict[str, float]]) -> dict[str, float]:
    """Borda count: on each dataset an entry gets one point per entry it beats and half a point per tie."""
    entries = sorted({e for scores in per_dataset.values() for e in scores})
    points = {e: 0.0 for e in entries}
    for scores in per_dataset.values():
        for e in scores:
            points[e] += sum(1.0 if scores[e] > scores[o] else 0.5 if scores[e] == scores[o] else 0.0
                             for o in scores if o != e)
    return points
