"""PNG plots of evaluation results (matplotlib, Agg canvas; no global pyplot state).

:func:`plot_sweep` draws metrics against a hyperparameter; :func:`plot_tradeoff` draws
accuracy against a beyond-accuracy metric (novelty, ARP, coverage) for one or several curves,
e.g. a re-ranker's strength knob; :func:`plot_tradeoffs` draws accuracy against several
beyond-accuracy metrics in a small grid, one line per model (``deepcuts evaluate --sweep
... --plot``).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts._fileio import atomic_write_bytes
from deepcuts.exceptions import DeepcutsError

__all__ = ["plot_sweep", "plot_tradeoff", "plot_tradeoffs"]


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4, max_cols: int = 3):
    """A figure of ``n_panels`` panels in a grid at most ``max_cols`` wide (readable PNGs)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise DeepcutsError(
            "plots need matplotlib, in the 'plot' extra: pip install 'deepcuts[plot]'"
        ) from None

    cols = max(1, min(n_panels, max_cols))
    rows = -(-n_panels // cols)
    fig = Figure(figsize=(width * cols, height * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def _save(fig, path) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise DeepcutsError(f"{path}: plots are written as PNG; use a .png file name")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _check_columns(table: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in table.columns]
    if missing:
        raise DeepcutsError(
            f"column(s) {missing} not in the results; available: {list(table.columns)}"
        )


def _curves(ax, groups, x: str, y: str, label: str | None) -> None:
    """One marked line per ``(name, frame)`` group of ``y`` against ``x``; points annotated
    with the ``label`` column when given."""
    for name, g in groups:
        xs = g[x].to_numpy(np.float64)
        ys = g[y].to_numpy(np.float64)
        ax.plot(xs, ys, marker="o", label=None if name is None else str(name))
        if label is not None:
            for xv, yv, lv in zip(xs, ys, g[label].tolist()):
                ax.annotate(str(lv), (xv, yv), textcoords="offset points", xytext=(4, 4),
                            fontsize="x-small")  # fmt: skip


def plot_sweep(
    table: pd.DataFrame,
    param: str,
    metrics: Sequence[str] | None = None,
    path="sweep.png",
    *,
    title: str | None = None,
    group: str | None = None,
    logx: bool | None = None,
) -> Path:
    """One panel per metric, metric value against ``param`` (a :func:`~.protocol.sweep` table).

    Parameters
    ----------
    table : DataFrame
        Rows with a ``param`` column and metric columns such as ``"ndcg@10"``.
    param : str
        Column on the x axis.
    metrics : sequence of str, optional
        Metric columns to draw; default every ``name@k`` column.
    path : str or Path, default="sweep.png"
    title : str, optional
    group : str, optional
        Column whose values give one line each (e.g. ``"model"``).
    logx : bool, optional
        Log-scaled x axis; default when the positive values span more than a factor 20.

    Returns
    -------
    Path of the written PNG.
    """
    if metrics is None:
        metrics = [c for c in table.columns if "@" in c]
    _check_columns(table, [param, *metrics, *([group] if group else [])])
    if not metrics:
        raise DeepcutsError("nothing to plot: the table has no metric columns")
    x_all = pd.to_numeric(table[param], errors="coerce")
    numeric = x_all.notna().all()
    if logx is None:
        pos = x_all[x_all > 0]
        logx = bool(numeric and len(pos) == len(x_all) and pos.max() / pos.min() > 20)
    fig, axes = _figure(len(metrics))
    groups = [(None, table)] if group is None else list(table.groupby(group, sort=False))
    for ax, m in zip(axes, metrics):
        for name, g in groups:
            x = pd.to_numeric(g[param]) if numeric else g[param].astype(str)
            ax.plot(x, g[m], marker="o", label=None if name is None else str(name))
        ax.set_xlabel(param)
        ax.set_ylabel(m)
        ax.grid(alpha=0.3)
        if logx:
            ax.set_xscale("log")
        if group is not None:
            ax.legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_tradeoffs(
    table: pd.DataFrame,
    accuracy: str,
    beyond: Sequence[str],
    path="tradeoffs.png",
    *,
    group: str | None = "model",
    label: str | None = None,
    title: str | None = None,
) -> Path:
    """Accuracy against each beyond-accuracy metric: one panel per metric (a grid at most two
    panels wide), one line per ``group`` (model), each point annotated with ``label``.

    Parameters
    ----------
    table : DataFrame
        One row per configuration, e.g. the rows of ``deepcuts evaluate --sweep``.
    accuracy : str
        Column on the y axes, e.g. ``"ndcg@10"``.
    beyond : sequence of str
        Columns on the x axes, e.g. ``["novelty@10", "coverage@10"]``.
    path : str or Path, default="tradeoffs.png"
    group : str, optional, default="model"
        Column naming the line of each row; rows of a line are joined in table order.
    label : str, optional
        Column annotating each point (e.g. the swept knob value).
    title : str, optional

    Returns
    -------
    Path of the written PNG.
    """
    beyond = list(beyond)
    _check_columns(table, [accuracy, *beyond, *(c for c in (group, label) if c)])
    if not beyond:
        raise DeepcutsError("nothing to plot: give at least one beyond-accuracy metric")
    fig, axes = _figure(len(beyond), width=5.2, height=4.0, max_cols=2)
    groups = [(None, table)] if group is None else list(table.groupby(group, sort=False))
    for ax, metric in zip(axes, beyond):
        _curves(ax, groups, metric, accuracy, label)
        ax.set_xlabel(f"{metric} (beyond accuracy)")
        ax.set_ylabel(accuracy)
        ax.set_title(f"{accuracy} vs {metric}", fontsize="medium")
        ax.grid(alpha=0.3)
    if group is not None:
        axes[0].legend(fontsize="small", title=group)
    if title:
        fig.suptitle(title + (f" (points: {label})" if label else ""))
    return _save(fig, path)


def plot_tradeoff(
    table: pd.DataFrame,
    x: str = "novelty@10",
    y: str = "ndcg@10",
    path="tradeoff.png",
    *,
    group: str | None = None,
    label: str | None = None,
    title: str | None = None,
) -> Path:
    """Accuracy against a beyond-accuracy metric: one curve per ``group``, points labelled.

    Parameters
    ----------
    table : DataFrame
        One row per configuration (e.g. per re-ranker strength).
    x, y : str, default="novelty@10", "ndcg@10"
        Columns for the axes (e.g. ``"arp@10"`` or ``"coverage@10"`` against ``"ndcg@10"``).
    path : str or Path, default="tradeoff.png"
    group : str, optional
        Column naming the curve of each row (e.g. ``"reranker"``); rows of a curve are joined
        in table order.
    label : str, optional
        Column whose value annotates each point (e.g. the knob value).
    title : str, optional

    Returns
    -------
    Path of the written PNG.
    """
    _check_columns(table, [x, y, *(c for c in (group, label) if c)])
    fig, axes = _figure(1, width=5.5, height=4.2)
    ax = axes[0]
    groups = [(None, table)] if group is None else list(table.groupby(group, sort=False))
    _curves(ax, groups, x, y, label)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if group is not None:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)
