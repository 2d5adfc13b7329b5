"""Build models by name (used by the CLI): ``make_model("itemknn", k=50)``."""

from __future__ import annotations

import inspect
from typing import Any

from deepcuts.exceptions import DeepcutsError
from deepcuts.models.als import ALS
from deepcuts.models.base import Recommender
from deepcuts.models.ease import EASE
from deepcuts.models.knn import ItemKNN
from deepcuts.models.persona import PersonaALS, PostHocPersonas
from deepcuts.models.popularity import Popularity
from deepcuts.models.ranking import BPR, MixtureOfTastes
from deepcuts.models.rp3beta import RP3beta

__all__ = ["MODELS", "make_model", "model_params"]

#: registry name -> model class, for :func:`make_model` and ``deepcuts train/evaluate --model``
MODELS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "itemknn": ItemKNN,
    "als": ALS,
    "persona": PostHocPersonas,
    "persona-als": PersonaALS,
    "bpr": BPR,
    "mixture": MixtureOfTastes,
    "ease": EASE,
    "rp3beta": RP3beta,
}


def _models() -> dict[str, type]:
    return MODELS


def model_params(name: str) -> dict[str, Any]:
    """Hyperparameters of model ``name`` with their defaults."""
    cls = _get(name)
    sig = inspect.signature(cls.__init__)
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    }


def _get(name: str) -> type:
    models = _models()
    key = str(name).lower()
    if key not in models:
        raise DeepcutsError(f"unknown model {name!r}; choose one of {sorted(models)}")
    return models[key]


def _coerce(name: str, key: str, value, default):
    """Convert a string from the command line to the type of the parameter's default."""
    if not isinstance(value, str) or isinstance(default, str):
        return value
    if default is None:  # optional parameter (e.g. random_state): a number, none, or a string
        if value.strip().lower() in ("none", "null"):
            return None
        for convert in (int, float):
            try:
                return convert(value)
            except ValueError:
                pass
        return value
    try:
        if isinstance(default, bool):
            low = value.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        raise DeepcutsError(
            f"model {name!r}: parameter {key}={value!r} must be of type {type(default).__name__}"
        ) from None
    return value


def make_model(name: str, **params):
    """An unfitted model from its registry name and hyperparameters.

    String values (from the command line) are converted to the type of the parameter's
    default. Unknown names, unknown parameters and invalid values (checked by the model's
    ``_check_params`` method, when it has one) raise
    :class:`~deepcuts.exceptions.DeepcutsError`.

    Examples
    --------
    >>> make_model("itemknn", k="50", similarity="bm25")
    ItemKNN(k=50, similarity='bm25', shrink=0.0, bm25_k1=1.2, bm25_b=0.75)
    """
    cls = _get(name)
    defaults = model_params(name)
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise DeepcutsError(
            f"model {name!r} has no parameter(s) {unknown}; valid: {sorted(defaults)}"
        )
    kw = {k: _coerce(name, k, v, defaults[k]) for k, v in params.items()}
    try:
        model = cls(**kw)
        # models that validate hyperparameters in a ``_check_params`` method (called by their
        # ``fit``) are checked now, so a bad value fails before any data is loaded
        check = getattr(model, "_check_params", None)
        if check is not None:
            check()
    except (TypeError, ValueError) as e:
        raise DeepcutsError(f"model {name!r}: {e}") from None
    return model
