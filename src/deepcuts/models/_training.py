"""The epoch loop shared by the iterative trainers (private).

:class:`~deepcuts.models.ALS`, the ranking-loss models (:class:`~deepcuts.models.BPR`,
:class:`~deepcuts.models.MixtureOfTastes`) and :class:`~deepcuts.models.PersonaALS` run
``iterations`` epochs behind a progress bar; the first two can score held-out plays after each
epoch, keep the best epoch's parameters and stop early. :class:`EpochLoop` holds that logic
once; each trainer keeps its own epoch body (and its own seeded random stream).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import numpy as np
from tqdm.auto import tqdm

from deepcuts.exceptions import DeepcutsError

__all__ = ["EpochLoop", "check_early_stopping"]

log = logging.getLogger(__name__)


def check_early_stopping(rounds, validation) -> None:
    """Raise unless ``rounds`` is None or an integer >= 1 given with ``validation`` data."""
    if rounds is None:
        return
    if not isinstance(rounds, int | np.integer) or isinstance(rounds, bool) or rounds < 1:
        raise DeepcutsError(f"early_stopping_rounds must be an integer >= 1, got {rounds!r}")
    if validation is None:
        raise DeepcutsError(
            "early_stopping_rounds needs validation data; pass validation=<held-out "
            "Interactions> or leave early_stopping_rounds=None"
        )


class EpochLoop:
    """``iterations`` epochs behind a progress bar, with validation and early stopping.

    Iterate over it for the epoch numbers; after an epoch, :meth:`validate` records the
    held-out score and says whether to stop: when ``early_stopping_rounds`` epochs in a row did
    not beat the best score. The best epoch's parameters (``snapshot()``, taken only when early
    stopping is on) come back from :attr:`kept`.

    Examples
    --------
    >>> loop = EpochLoop("demo", 10, early_stopping_rounds=2)
    >>> for it in loop:
    ...     if loop.validate(it, [0.1, 0.3, 0.2, 0.25, 0.9][it], lambda: it):
    ...         break
    >>> loop.scores, loop.best_epoch, loop.kept
    ([0.1, 0.3, 0.2, 0.25], 1, 1)
    """

    def __init__(
        self,
        name: str,
        iterations: int,
        *,
        show_progress: bool = False,
        early_stopping_rounds: int | None = None,
    ):
        self.early_stopping_rounds = early_stopping_rounds
        self.scores: list[float] = []
        self.best_score = -np.inf
        self.best_epoch = -1
        self._best = None
        self._bar = tqdm(range(int(iterations)), desc=name, disable=not show_progress, leave=False)

    def __iter__(self) -> Iterator[int]:
        return iter(self._bar)

    def progress(self, **values) -> None:
        """Show ``values`` (already formatted) beside the bar."""
        self._bar.set_postfix(**values)

    def validate(self, epoch: int, score: float, snapshot: Callable[[], object]) -> bool:
        """Record epoch ``epoch``'s held-out ``score``; True when training should stop."""
        self.scores.append(score)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, epoch
            if self.early_stopping_rounds is not None:
                self._best = snapshot()
            return False
        if self.early_stopping_rounds is not None and epoch - self.best_epoch >= (
            self.early_stopping_rounds
        ):
            log.info("early stopping after iteration %d (best %d)", epoch + 1, self.best_epoch + 1)
            return True
        return False

    @property
    def kept(self):
        """The best epoch's snapshot with early stopping on (None without it, or no score)."""
        return self._best
