"""Evaluation: train/test splits, metrics of top-k lists, the evaluation protocol and plots."""

from deepcuts.evaluation import metrics
from deepcuts.evaluation.splits import (
    SPLITS,
    leave_last_out_split,
    random_split,
    split,
    user_holdout_split,
)

__all__ = [
    "SPLITS",
    "leave_last_out_split",
    "metrics",
    "random_split",
    "split",
    "user_holdout_split",
]
