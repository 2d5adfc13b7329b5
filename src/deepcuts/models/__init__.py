"""Models: every one follows the :class:`Recommender` interface."""

from deepcuts.models._registry import MODELS, make_model, model_params
from deepcuts.models._results import Recommendation, Recommendations
from deepcuts.models.als import ALS
from deepcuts.models.base import RankContext, Recommender, Reranker, load_model
from deepcuts.models.content import ContentKNN, feature_neighbors
from deepcuts.models.ease import EASE
from deepcuts.models.knn import ItemKNN
from deepcuts.models.persona import PersonaALS, PostHocPersonas
from deepcuts.models.popularity import Popularity
from deepcuts.models.ranking import BPR, MixtureOfTastes
from deepcuts.models.rp3beta import RP3beta
from deepcuts.models.session import PopularNext, RandomNext, SessionCooccurrence, StickyArtist

__all__ = [
    "ALS",
    "BPR",
    "MODELS",
    "MixtureOfTastes",
    "PersonaALS",
    "PostHocPersonas",
    "ContentKNN",
    "EASE",
    "ItemKNN",
    "PopularNext",
    "Popularity",
    "RP3beta",
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
