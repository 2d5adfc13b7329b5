"""Models: every one follows the :class:`Recommender` interface."""

from deepcuts.models._results import Recommendations
from deepcuts.models.als import ALS
from deepcuts.models.base import RankContext, Recommender, Reranker, load_model
from deepcuts.models.content import ContentKNN, feature_neighbors
from deepcuts.models.popularity import Popularity

__all__ = [
    "ALS",
    "ContentKNN",
    "Popularity",
    "RankContext",
    "Recommendations",
    "Recommender",
    "Reranker",
    "feature_neighbors",
    "load_model",
]
