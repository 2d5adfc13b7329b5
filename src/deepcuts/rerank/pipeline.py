"""Build the re-ranker list of a request from its knobs, in the one order that composes well."""

from __future__ import annotations

from deepcuts.exceptions import DeepcutsError
from deepcuts.rerank.artist import ArtistCap
from deepcuts.rerank.depth import DEFAULT_FLOOR, DEFAULT_TASTE, DepthKnob
from deepcuts.rerank.diversity import MMR
from deepcuts.rerank.rarity import ObscurityBand, RarityKnob

__all__ = ["build_rerankers", "parse_band"]


def parse_band(band) -> tuple[float, float] | None:
    """``"60:90"``, ``(60, 90)`` or ``None`` -> ``(60.0, 90.0)`` or ``None`` (not validated).

    >>> parse_band("60:90"), parse_band([0, 50.5]), parse_band(None)
    ((60.0, 90.0), (0.0, 50.5), None)
    """
    if band is None:
        return None
    if isinstance(band, str):
        parts = band.split(":")
        if len(parts) != 2:
            raise DeepcutsError(
                f"band {band!r}: expected LOW:HIGH popularity percentiles in [0, 100], e.g. 60:90"
            )
    else:
        try:
            parts = list(band)
        except TypeError:
            parts = []
        if len(parts) != 2:
            raise DeepcutsError(
                f"band {band!r}: expected (low, high) popularity percentiles in [0, 100]"
            )
    try:
        return float(parts[0]), float(parts[1])
    except (TypeError, ValueError):
        raise DeepcutsError(
            f"band {band!r}: LOW and HIGH must be numbers in [0, 100], e.g. 60:90"
        ) from None


def build_rerankers(
    rarity=None,
    band=None,
    diversity=None,
    artist_cap=None,
    *,
    depth=None,
    floor=None,
    taste=None,
    pool=None,
) -> list:
    """The re-rankers for a request's knobs, in application order; ``None`` = knob unused.

    Order: the obscurity band (a filter), then the rarity knob (re-scores), then the depth knob
    (evidence floor and calibrated deep share), then MMR diversity (re-orders the top of the
    list), then the artist cap (demotes over-cap items of the final order). Only the band and
    the depth knob's evidence floor remove eligible items, so a list has ``n`` items whenever
    ``n`` items are played-filtered, allowed, not blocked, in the band and above the floor.

    Parameters
    ----------
    depth : float in [0, 1] or str, optional
        :class:`~deepcuts.rerank.DepthKnob` depth: 0 = neutral, 1 = deepest, ``"mine"`` = the
        listener's own popularity level, ``"mine+0.2"`` = a step deeper. The knob to use.
    floor : int, optional
        The depth knob's evidence floor (fewest training listeners, default 3); only with
        ``depth``.
    taste : float in [0, 1], optional
        The depth knob's weight of taste evidence in its deep slots (default 0.5: how much
        the listeners of a deep cut resemble this listener; 0 = base score only); only with
        ``depth``.
    rarity : float, optional
        Expert setting: :class:`~deepcuts.rerank.RarityKnob` factor in [-3, 3]; 1 = neutral
        (uncalibrated, no evidence floor; see ``docs/rarity.md``).
    band : (low, high) or "LOW:HIGH", optional
        :class:`~deepcuts.rerank.ObscurityBand` percentiles, ``0 <= low < high <= 100``.
    diversity : float, optional
        :class:`~deepcuts.rerank.MMR` weight in [0, 1]; 0 = model order.
    artist_cap : int, optional
        :class:`~deepcuts.rerank.ArtistCap` maximum items per artist (>= 1, track data).
    pool : int, optional
        MMR candidate pool (default ``max(5 n, 50)``).

    Returns
    -------
    list of re-rankers (possibly empty), for ``Recommender.recommend(..., rerankers=...)``.

    Examples
    --------
    >>> build_rerankers(depth=0.6)
    [DepthKnob(depth=0.6, floor=3, shrinkage=1)]
    >>> build_rerankers(rarity=0.5, band="60:90", diversity=0.2)
    [ObscurityBand(low=60, high=90), RarityKnob(rarity=0.5), MMR(diversity=0.2, pool=None)]
    >>> build_rerankers(rarity=9)
    Traceback (most recent call last):
    ...
    deepcuts.exceptions.DeepcutsError: rarity must be a number in [-3, 3] (1 = neutral, < 1 favours rare, > 1 popular), got 9
    """
    out: list = []
    b = parse_band(band)
    if b is not None:
        out.append(ObscurityBand(*b))
    if rarity is not None:
        out.append(RarityKnob(rarity))
    if depth is not None:
        out.append(
            DepthKnob(
                depth,
                floor=DEFAULT_FLOOR if floor is None else floor,
                taste=DEFAULT_TASTE if taste is None else taste,
            )
        )
    elif floor is not None:
        raise DeepcutsError("floor is the depth knob's evidence floor: give depth too")
    elif taste is not None:
        raise DeepcutsError("taste weighs the depth knob's deep slots: give depth too")
    if diversity is not None:
        out.append(MMR(diversity, pool=pool))
    if artist_cap is not None:
        out.append(ArtistCap(artist_cap))
    return out
