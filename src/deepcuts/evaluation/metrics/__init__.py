"""Metrics of top-k recommendation lists, one concept per module.

All take ranked lists as an int array ``rec`` of shape (b, n) (internal item indices, ``-1``
padding) and are vectorised over users. Per-user metrics return arrays of shape (b,);
catalogue-level metrics (coverage, Gini) return a float. See ``docs/evaluation.md``.
"""

from deepcuts.evaluation.metrics.accuracy import (
    hit_matrix,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)
from deepcuts.evaluation.metrics.coverage import catalogue_coverage
from deepcuts.evaluation.metrics.discovery import artist_discovery
from deepcuts.evaluation.metrics.diversity import intra_list_diversity, item_vectors_from_matrix
from deepcuts.evaluation.metrics.genre import genre_fit, tag_matrix
from deepcuts.evaluation.metrics.longtail import long_tail_mask, long_tail_recall, thin_share
from deepcuts.evaluation.metrics.novelty import novelty, self_information
from deepcuts.evaluation.metrics.popularity import arp, exposure, gini_exposure, popularity_share

__all__ = [
    "arp",
    "artist_discovery",
    "catalogue_coverage",
    "exposure",
    "genre_fit",
    "gini_exposure",
    "hit_matrix",
    "hit_rate_at_k",
    "intra_list_diversity",
    "item_vectors_from_matrix",
    "long_tail_mask",
    "long_tail_recall",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "novelty",
    "popularity_share",
    "precision_at_k",
    "recall_at_k",
    "self_information",
    "tag_matrix",
    "thin_share",
]
