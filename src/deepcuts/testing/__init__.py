"""Testing helpers shipped with deepcuts: contract tests every model must pass, and data."""

from deepcuts.testing.contract import RecommenderContract
from deepcuts.testing.synthetic import planted_blocks

__all__ = ["RecommenderContract", "planted_blocks"]
