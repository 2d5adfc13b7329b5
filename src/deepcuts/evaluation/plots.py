"""PNG plots of evaluation results (matplotlib, Agg canvas; no global pyplot state).

:func:`plot_sweep` draws metrics against a hyperparameter; :func:`plot_tradeoff` draws
accuracy against a beyond-accuracy metric (novelty, ARP, coverage) for one or several curves,
e.g. a re-ranker's strength knob.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.exceptions import DeepcutsError
from deepcuts.models._io import atomic_write_bytes

__all__ = ["plot_sweep", "plot_tradeoff"]


def _figure(n_panels: int, width: float = 4.2, height: float = 3.4):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * n_panels, height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]
    return fig, axes


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
    for name, g in groups:
        xs = g[x].to_numpy(np.float64)
        ys = g[y].to_numpy(np.float64)
        ax.plot(xs, ys, marker="o", label=None if name is None else str(name))
        if label is not None:
            for xv, yv, lv in zip(xs, ys, g[label].tolist()):
                ax.annotate(str(lv), (xv, yv), textcoords="offset points", xytext=(4, 4),
                            fontsize="x-small")  # fmt: skip
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    if group is not None:
        ax.legend(fontsize="small")
    if title:
        ax.set_title(title)
    return _save(fig, path)
