"""Models: every one follows the :class:`Recommender` interface."""

from deepcuts.models._results import Recommendations
from deepcuts.models.als import ALS
from deepcuts.models.base import RankContext, Recommender, Reranker, load_model
from deepcuts.models.popularity import Popularity

__all__ = [
    "ALS",
    "Popularity",
    "RankContext",
    "Recommendations",
    "Recommender",
    "Reranker",
    "load_model",
]
