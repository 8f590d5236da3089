"""One progress bar per dataset's probing phase that counts finished work units, whoever runs them."""
from __future__ import annotations

from typing import Any

from probebank.scale.units import ProbeUnit


class UnitProgress:
    """Counts a dataset's units as reused (finished before this run) or computed; a bar on a terminal."""

    def __init__(self, total: int, *, desc: str, enabled: bool) -> None:
        from tqdm.auto import tqdm

        self.reused = 0
        self.computed = 0
        self._bar: Any = tqdm(total=total, desc=desc, unit="layer", disable=not enabled, leave=False)

    def skip_if_done(self, unit: ProbeUnit) -> bool:
        """True (and counted as reused) when the unit's records are already in the cache."""
        if not unit.done:
            return False
        self.reused += 1
        self._bar.update(1)
        return True

    def finished(self, unit: ProbeUnit) -> None:
        self.computed += 1
        self._bar.update(1)

    def note(self, message: str) -> None:
        """A line above the bar (stderr), e.g. a retried unit."""
        import sys

        self._bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> UnitProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
