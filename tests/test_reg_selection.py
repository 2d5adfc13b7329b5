"""SparkALS ``regularization="auto"``: the selection rule and the line search as pure functions
over (regParam, validation score) pairs (no Spark needed; the Spark fit is in
test_distributed.py)."""

import pytest

from deepcuts.distributed.als import REG_TOLERANCE, search_regularization, select_regularization
from deepcuts.exceptions import DeepcutsError

GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)


def test_ties_within_the_tolerance_go_to_the_smaller_value():
    # 0.3 is within 1% of the best (1.0): a tie, and the smaller value wins
    assert select_regularization({0.1: 0.30, 0.3: 0.404, 1.0: 0.405, 3.0: 0.2}) == 0.3
    # the order of the pairs does not matter; an iterable of pairs works too
    assert select_regularization([(3.0, 0.2), (1.0, 0.405), (0.3, 0.404)]) == 0.3
    # exact ties: the smallest
    assert select_regularization({1.0: 0.5, 0.1: 0.5, 0.3: 0.5}) == 0.1
    # outside the tolerance the best score wins even if it is the larger value
    assert select_regularization({0.1: 0.30, 0.3: 0.39, 1.0: 0.405}) == 1.0
    # tolerance 0: only the best score (ties still to the smaller value)
    assert select_regularization({0.3: 0.404, 1.0: 0.405}, tolerance=0.0) == 1.0
    assert select_regularization({0.3: 0.405, 1.0: 0.405}, tolerance=0.0) == 0.3
    # the boundary: exactly best - tolerance * best ties
    best = 0.5
    edge = best - REG_TOLERANCE * best
    assert select_regularization({0.1: edge, 1.0: best}) == 0.1
    assert select_regularization({0.1: edge - 1e-9, 1.0: best}) == 1.0
    # negative scores: the tolerance is a share of |best|
    assert select_regularization({0.1: -1.005, 1.0: -1.0}) == 0.1
    with pytest.raises(DeepcutsError, match="at least one"):
        select_regularization({})


def _scorer(table):
    calls = []

    def score(v):
        calls.append(v)
        return table[v]

    return score, calls


def test_line_search_walks_up_then_prefers_the_smaller_tie():
    # the walk goes up from 0.1 to 1.0 (each step strictly better); 0.3 ties with 1.0
    table = {0.01: 0.1, 0.03: 0.2, 0.1: 0.30, 0.3: 0.404, 1.0: 0.405, 3.0: 0.2}
    score, calls = _scorer(table)
    chosen, scores = search_regularization(GRID, score)
    assert chosen == 0.3
    # (before the tie rule the search returned 1.0, its strict improvement)
    assert search_regularization(GRID, _scorer(table)[0], tolerance=0.0)[0] == 1.0
    assert calls == [0.1, 0.3, 1.0, 3.0]  # 0.1's smaller neighbour does not tie: not tried
    assert scores == {v: table[v] for v in calls}


def test_line_search_steps_down_while_smaller_values_tie():
    # a flat curve: 0.3 is best, 0.1 and 0.03 tie with it, 0.01 does not
    table = {0.01: 0.35, 0.03: 0.399, 0.1: 0.4, 0.3: 0.401, 1.0: 0.3, 3.0: 0.1}
    score, calls = _scorer(table)
    chosen, scores = search_regularization(GRID, score)
    assert chosen == 0.03
    assert calls == [0.1, 0.3, 1.0, 0.03, 0.01]
    assert len(set(calls)) == len(calls)  # every value scored once


def test_line_search_walking_down_and_at_the_grid_edge():
    table = {0.01: 0.5, 0.03: 0.45, 0.1: 0.4, 0.3: 0.3, 1.0: 0.2, 3.0: 0.1}
    chosen, scores = search_regularization(GRID, _scorer(table)[0])
    assert chosen == 0.01 and set(scores) == {0.01, 0.03, 0.1, 0.3}
    table = {v: -v for v in GRID}
    table[3.0] = 1.0  # best at the top edge, nothing ties
    chosen, _ = search_regularization(GRID, _scorer(table)[0], start=3.0)
    assert chosen == 3.0
    # a one-value grid: that value
    assert search_regularization([0.5], lambda v: 0.1) == (0.5, {0.5: 0.1})
