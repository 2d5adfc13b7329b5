"""Evaluation: train/test splits, metrics of top-k lists, the evaluation protocol and plots."""

from deepcuts.evaluation import metrics
from deepcuts.evaluation.plots import plot_sweep, plot_tradeoff, plot_tradeoffs
from deepcuts.evaluation.protocol import (
    DEFAULT_METRICS,
    METRICS,
    Evaluation,
    evaluate,
    score_lists,
    sweep,
)
from deepcuts.evaluation.simulator import (
    ListeningSimulator,
    SimulationResult,
    botify_world,
    listen_time,
)
from deepcuts.evaluation.splits import (
    SPLITS,
    leave_last_out_split,
    random_split,
    split,
    user_holdout_split,
)
from deepcuts.evaluation.strong import (
    StrongSplit,
    evaluate_strong,
    strong_generalization_split,
)

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "SPLITS",
    "Evaluation",
    "ListeningSimulator",
    "SimulationResult",
    "StrongSplit",
    "botify_world",
    "listen_time",
    "evaluate",
    "evaluate_strong",
    "leave_last_out_split",
    "metrics",
    "plot_sweep",
    "plot_tradeoff",
    "plot_tradeoffs",
    "random_split",
    "score_lists",
    "split",
    "strong_generalization_split",
    "sweep",
    "user_holdout_split",
]
