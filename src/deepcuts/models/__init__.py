"""Models: every one follows the :class:`Recommender` interface."""

from deepcuts.models._registry import make_model, model_params
from deepcuts.models._results import Recommendation, Recommendations
from deepcuts.models.als import ALS
from deepcuts.models.base import RankContext, Recommender, Reranker, load_model
from deepcuts.models.content import ContentKNN, feature_neighbors
from deepcuts.models.knn import ItemKNN
from deepcuts.models.persona import PersonaALS
from deepcuts.models.popularity import Popularity
from deepcuts.models.session import PopularNext, RandomNext, SessionCooccurrence, StickyArtist

#: registry name -> model class, for :func:`make_model` and ``deepcuts train/evaluate --model``
MODELS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "als": ALS,
    "persona": PersonaALS,
}

__all__ = [
    "ALS",
    "MODELS",
    "PersonaALS",
    "ContentKNN",
    "ItemKNN",
    "PopularNext",
    "Popularity",
    "RandomNext",
    "RankContext",
    "Recommendation",
    "Recommendations",
    "Recommender",
    "Reranker",
    "SessionCooccurrence",
    "StickyArtist",
    "feature_neighbors",
    "load_model",
    "make_model",
    "model_params",
]
