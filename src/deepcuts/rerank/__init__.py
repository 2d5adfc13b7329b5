"""Re-ranking: the discovery knobs (depth; expert: rarity, obscurity band), diversity (MMR) and an
artist cap.

A layer above the models and below evaluation. Every re-ranker has ``rerank(scores, ctx)``
mapping a (b, n_items) float32 score block (``-inf`` = ineligible) to another one, and is passed
to ``Recommender.recommend(..., rerankers=[...])`` or ``evaluation.evaluate(...)``;
:func:`build_rerankers` builds the list from a request's knobs. See ``docs/rarity.md``.
"""

from deepcuts.rerank.artist import ArtistCap, item_artist_codes
from deepcuts.rerank.depth import (
    DEPTH_RANGE,
    DepthCatalogue,
    DepthKnob,
    depth_catalogue,
    depth_targets,
    item_evidence,
    parse_depth,
    taste_similarity,
)
from deepcuts.rerank.diversity import DIVERSITY_RANGE, MMR
from deepcuts.rerank.pipeline import build_rerankers, parse_band
from deepcuts.rerank.rarity import (
    BAND_RANGE,
    RARITY_RANGE,
    ObscurityBand,
    RarityKnob,
    item_frequency,
    popularity_percentiles,
)

__all__ = [
    "BAND_RANGE",
    "DEPTH_RANGE",
    "DIVERSITY_RANGE",
    "MMR",
    "RARITY_RANGE",
    "ArtistCap",
    "DepthCatalogue",
    "DepthKnob",
    "ObscurityBand",
    "RarityKnob",
    "build_rerankers",
    "depth_catalogue",
    "depth_targets",
    "item_evidence",
    "item_artist_codes",
    "item_frequency",
    "parse_band",
    "parse_depth",
    "popularity_percentiles",
    "taste_similarity",
]
