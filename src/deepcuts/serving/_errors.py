"""The service's errors, each with its HTTP status (:mod:`deepcuts.serving.app` maps them)."""

from __future__ import annotations

from deepcuts.exceptions import DeepcutsError

__all__ = ["ConflictError", "RetrainBusyError", "ServiceUnavailable"]


class ConflictError(DeepcutsError):
    """The request conflicts with the stored state (HTTP 409)."""


class RetrainBusyError(ConflictError):
    """A retrain is already running."""


class ServiceUnavailable(DeepcutsError):
    """No model to answer with yet (HTTP 503): starting, or loading a newer model."""

    http_status = 503
