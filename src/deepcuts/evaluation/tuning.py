"""Automatic model selection: an Optuna search across model families within a time budget.

Which model is most accurate depends on the data, so :func:`tune` searches the families
``als`` (Hu et al. with the ALS-WR option), ``ials`` (ALS with the tuned-iALS options of Rendle
et al. 2022), ``ease``, ``rp3beta`` and ``itemknn`` together: one seeded TPE sampler picks a
family and its settings per trial, after one trial per family at its published or default
settings. Every trial is fitted on a *validation split inside the training data* (a per-user
20% holdout of it) and scored there; the test data is never looked at. Trials are pruned by a
median rule on the metric over the first quarters of the validation users (a weak trial stops
after one quarter), and ALS trials stop iterating when their validation NDCG@10 stalls. The
winner is refitted on the whole training data.

Optuna is an optional dependency: ``pip install 'deepcuts[tune]'``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from deepcuts.data.interactions import Interactions
from deepcuts.evaluation.protocol import evaluate
from deepcuts.evaluation.splits import user_holdout_split
from deepcuts.exceptions import DeepcutsError

__all__ = [
    "AUTO_DEFAULTS",
    "FAMILIES",
    "TuneResult",
    "check_auto_params",
    "fit_auto",
    "parse_budget",
    "plot_trials",
    "require_optuna",
    "tune",
]

log = logging.getLogger(__name__)

#: model families searched by :func:`tune`: family -> registry name of the model class
FAMILIES = {"als": "als", "ials": "als", "ease": "ease", "rp3beta": "rp3beta", "itemknn": "itemknn"}
#: metrics :func:`tune` can maximise
TUNE_METRICS = ("ndcg@10", "recall@20", "ndcg@20", "recall@10")
#: first trial of each family: the library defaults and the papers' suggested settings (Rendle
#: et al. 2022's ML-20M iALS settings; Steck's lambda = 500), so a short budget covers them
STARTING_POINTS = {
    "als": {"als.factors": 64, "als.alpha": 1.0, "als.weighting": "log",
            "als.reg_scaling": "none", "als.regularization.none": 0.01},
    "ials": {"ials.factors": 64, "ials.alpha": 1.0, "ials.weighting": "log",
             "ials.unobserved_weight": 0.1, "ials.regularization": 0.003,
             "ials.reg_exponent": 1.0},
    "ease": {"ease.regularization": 500.0},
    "rp3beta": {"rp3beta.alpha": 1.0, "rp3beta.beta": 0.6, "rp3beta.neighbors": 100},
    "itemknn": {"itemknn.similarity": "bm25", "itemknn.k": 100},
}  # fmt: skip
#: validation users are scored in this many chunks; the pruner sees the running mean after each
_CHUNKS = 4


def require_optuna():
    """The ``optuna`` module, or a :class:`DeepcutsError` saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise DeepcutsError(
            "tuning needs Optuna, an optional dependency: pip install 'deepcuts[tune]' "
            "(or pip install optuna)"
        ) from None
    return optuna


def parse_budget(text) -> float:
    """Seconds of a budget such as ``"10m"``, ``"90s"``, ``"1h"`` or ``"45"`` (seconds).

    Examples
    --------
    >>> parse_budget("10m"), parse_budget("90s"), parse_budget("1.5h"), parse_budget(30)
    (600.0, 90.0, 5400.0, 30.0)
    """
    s = str(text).strip().lower()
    unit = {"s": 1.0, "m": 60.0, "h": 3600.0}
    scale = 1.0
    if s and s[-1] in unit:
        scale, s = unit[s[-1]], s[:-1]
    try:
        value = float(s) * scale
    except ValueError:
        raise DeepcutsError(
            f"budget {text!r}: expected a number of seconds or e.g. '90s', '10m', '1h'"
        ) from None
    if not np.isfinite(value) or value <= 0:
        raise DeepcutsError(f"budget {text!r} must be positive")
    return value


def _suggest(trial, family: str, seed: int) -> dict:
    """Hyperparameters of one trial of ``family`` (search spaces from the papers' tables)."""
    if family in ("als", "ials"):
        p = {
            "factors": trial.suggest_categorical(f"{family}.factors", [32, 64, 128, 192, 256]),
            "alpha": trial.suggest_float(f"{family}.alpha", 0.1, 50.0, log=True),
            "weighting": trial.suggest_categorical(f"{family}.weighting", ["log", "bm25"]),
            "iterations": 15,
            "random_state": seed,
        }
        if family == "als":
            scaling = trial.suggest_categorical("als.reg_scaling", ["none", "activity"])
            lo, hi = (1e-3, 10.0) if scaling == "none" else (1e-2, 3.0)
            p["reg_scaling"] = scaling
            p["regularization"] = trial.suggest_float(
                f"als.regularization.{scaling}", lo, hi, log=True
            )
        else:  # Rendle et al. 2022: alpha0, lambda (n + alpha0 N)^nu, N(0, 0.1^2 / f) init
            p["reg_scaling"] = "frequency"
            p["unobserved_weight"] = trial.suggest_float(
                "ials.unobserved_weight", 1e-3, 1.0, log=True
            )
            p["regularization"] = trial.suggest_float("ials.regularization", 1e-4, 1.0, log=True)
            p["reg_exponent"] = trial.suggest_float("ials.reg_exponent", 0.0, 1.0)
            p["init_scale"] = 0.1
        return p
    if family == "ease":
        return {"regularization": trial.suggest_float("ease.regularization", 1.0, 1e4, log=True)}
    if family == "rp3beta":
        return {
            "alpha": trial.suggest_float("rp3beta.alpha", 0.2, 1.5),
            "beta": trial.suggest_float("rp3beta.beta", 0.0, 1.0),
            "neighbors": trial.suggest_int("rp3beta.neighbors", 10, 1000, log=True),
        }
    if family == "itemknn":
        sim = trial.suggest_categorical("itemknn.similarity", ["cosine", "bm25"])
        p = {"k": trial.suggest_int("itemknn.k", 10, 1000, log=True), "similarity": sim}
        if sim == "cosine":
            p["shrink"] = trial.suggest_float("itemknn.shrink", 0.0, 100.0)
        return p
    raise DeepcutsError(f"unknown family {family!r}; choose from {sorted(FAMILIES)}")


@dataclass
class TuneResult:
    """What :func:`tune` found.

    Attributes
    ----------
    family : str
        Winning family (``"als"``, ``"ials"``, ``"ease"``, ``"rp3beta"``, ``"itemknn"``).
    model_name : str
        Its registry name (``make_model(model_name, **params)``).
    params : dict
        Its hyperparameters (for ALS, ``iterations`` is the early-stopped count).
    value : float
        Its validation score.
    metric : str
    table : DataFrame
        One row per trial: number, family, state, value, the validation metrics, fit_s, params.
    model : Recommender or None
        The winner refitted on all the training data (``None`` with ``refit=False``).
    """

    family: str
    model_name: str
    params: dict
    value: float
    metric: str
    table: pd.DataFrame
    model: object = None
    n_trials: int = 0
    elapsed_s: float = 0.0
    notes: list = field(default_factory=list)


def tune(
    train: Interactions,
    *,
    families: Sequence[str] = tuple(FAMILIES),
    budget_s: float | None = 600.0,
    n_trials: int | None = None,
    metric: str = "ndcg@10",
    validation_fraction: float = 0.2,
    random_state: int = 0,
    refit: bool = True,
    show_progress: bool = False,
) -> TuneResult:
    """Search model families and their settings on a validation split of ``train``.

    Parameters
    ----------
    train : Interactions
        Training data, shape (n_users, n_items); a per-user holdout of it is the validation set.
    families : sequence of str, default=all of FAMILIES
    budget_s : float or None, default=600
        Wall-clock seconds for the search (a started trial finishes; the refit comes after).
    n_trials : int, optional
        Stop after this many trials (with ``budget_s=None``, a seeded run is reproducible).
    metric : {"ndcg@10", "recall@20", "ndcg@20", "recall@10"}, default="ndcg@10"
    validation_fraction : float, default=0.2
    random_state : int, default=0
        Seeds the validation split, the sampler and every model.
    refit : bool, default=True
        Refit the winner on all of ``train``.
    show_progress : bool, default=False
        A progress bar over the budget (or the trials) with the best score so far.

    Returns
    -------
    TuneResult

    Examples
    --------
    >>> from deepcuts.testing import planted_blocks
    >>> x = planted_blocks(120, 40, 4, random_state=0)
    >>> res = tune(x, families=["rp3beta", "ease"], budget_s=None, n_trials=4, random_state=0)
    >>> res.family in ("rp3beta", "ease"), len(res.table), res.model is not None
    (True, 4, True)
    """
    optuna = require_optuna()
    families = [str(f).lower() for f in families]
    bad = sorted(set(families) - set(FAMILIES))
    if bad or not families:
        raise DeepcutsError(f"families {bad or families}: choose from {sorted(FAMILIES)}")
    if metric not in TUNE_METRICS:
        raise DeepcutsError(f"metric {metric!r}: choose one of {list(TUNE_METRICS)}")
    if budget_s is None and n_trials is None:
        raise DeepcutsError("give a time budget (budget_s) or a number of trials (n_trials)")
    notes: list[str] = []
    if "ease" in families:
        from deepcuts.models import EASE

        limit = EASE.max_items()
        if train.n_items > limit:
            families.remove("ease")
            notes.append(
                f"EASE left out: {train.n_items} items exceed the {limit} this machine takes"
            )
            log.warning(notes[-1])
            if not families:
                raise DeepcutsError(notes[-1] + "; add other families")
    from deepcuts.models import make_model

    tr, val = user_holdout_split(
        train, test_fraction=validation_fraction, random_state=random_state
    )
    val_users = np.flatnonzero(val.matrix.getnnz(axis=1) > 0)
    rng = np.random.default_rng(random_state)
    chunks = np.array_split(rng.permutation(val_users), _CHUNKS)

    def objective(trial):
        family = trial.suggest_categorical("family", families)
        params = _suggest(trial, family, random_state)
        name = FAMILIES[family]
        extra = {"validation": val, "early_stopping_rounds": 3} if name == "als" else {}
        model = make_model(name, **params, **extra)
        t0 = time.perf_counter()
        model.fit(tr)
        fit_s = time.perf_counter() - t0
        if name == "als":
            params["iterations"] = int(model.n_iterations_)
        trial.set_user_attr("family", family)
        trial.set_user_attr("params", params)
        trial.set_user_attr("fit_s", fit_s)
        frames = []
        for step, users in enumerate(chunks):
            per_user, _ = evaluate(
                model,
                tr,
                val,
                k=(10, 20),
                metrics=("recall", "ndcg"),
                users=tr.user_map.external(np.sort(users)),
            )
            frames.append(per_user)
            running = pd.concat(frames)
            value = float(running[metric].mean())
            trial.report(value, step)
            if step < _CHUNKS - 1 and trial.should_prune():
                raise optuna.TrialPruned()
        for m in ("ndcg@10", "recall@20"):
            trial.set_user_attr(m, float(running[m].mean()))
        return value

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=random_state, n_startup_trials=8),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0),
    )
    for fam in families:
        study.enqueue_trial({"family": fam, **STARTING_POINTS[fam]})
    start = time.perf_counter()
    total = n_trials if budget_s is None else int(np.ceil(budget_s))
    bar = tqdm(
        total=total,
        desc="tune",
        unit="trial" if budget_s is None else "s",
        disable=not show_progress,
        leave=False,
    )

    def progress(study, trial):
        if budget_s is None:
            bar.update(1)
        else:
            bar.n = min(total, int(time.perf_counter() - start))
            bar.refresh()
        done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if done:
            best = study.best_trial
            bar.set_postfix_str(f"best {metric}={best.value:.4f} ({best.user_attrs['family']})")

    try:
        study.optimize(
            objective,
            n_trials=n_trials,
            timeout=budget_s,
            callbacks=[progress],
            catch=(DeepcutsError, MemoryError),
        )
    finally:
        bar.close()
    elapsed = time.perf_counter() - start
    table = _trials_table(study, metric)
    complete = table[table["state"] == "COMPLETE"]
    if complete.empty:
        raise DeepcutsError(
            f"no trial finished within the budget ({elapsed:.0f}s); give a larger budget"
        )
    best = study.best_trial
    family = best.user_attrs["family"]
    params = dict(best.user_attrs["params"])
    result = TuneResult(
        family=family,
        model_name=FAMILIES[family],
        params=params,
        value=float(best.value),
        metric=metric,
        table=table,
        n_trials=len(table),
        elapsed_s=elapsed,
        notes=notes,
    )
    log.info("tune: %d trials in %.0fs; best %s %s=%.4f", len(table), elapsed, family, metric,
             best.value)  # fmt: skip
    if refit:
        result.model = make_model(result.model_name, **params).fit(train)
    return result


def _trials_table(study, metric: str) -> pd.DataFrame:
    rows = []
    for t in study.trials:
        rows.append(
            {
                "trial": t.number,
                "family": t.user_attrs.get("family", t.params.get("family")),
                "state": t.state.name,
                metric: t.value if t.value is not None else np.nan,
                "ndcg@10": t.user_attrs.get("ndcg@10", np.nan),
                "recall@20": t.user_attrs.get("recall@20", np.nan),
                "fit_s": t.user_attrs.get("fit_s", np.nan),
                "seconds": t.duration.total_seconds() if t.duration else np.nan,
                "params": t.user_attrs.get("params", {}),
            }
        )
    table = pd.DataFrame(rows)
    if metric in ("ndcg@10", "recall@20"):  # the column is there once
        table = table.loc[:, ~table.columns.duplicated()]
    return table


def plot_trials(table: pd.DataFrame, metric: str, path) -> Path:
    """PNG of a search: each trial's validation score by trial number (colour = family, the
    best so far as a line) and against its fit time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    done = table[table["state"] == "COMPLETE"]
    pruned = table[table["state"] == "PRUNED"]
    colours = dict(zip(sorted(table["family"].dropna().unique()), plt.cm.tab10.colors))
    for fam, g in done.groupby("family"):
        axes[0].scatter(g["trial"], g[metric], s=22, color=colours[fam], label=fam)
        axes[1].scatter(g["fit_s"], g[metric], s=22, color=colours[fam], label=fam)
    if len(pruned):
        axes[0].scatter(pruned["trial"], np.zeros(len(pruned)) + done[metric].min(), marker="x",
                        s=14, color="0.6", label="pruned (at the bottom)")  # fmt: skip
    best = done.sort_values("trial")[metric].cummax()
    axes[0].step(done.sort_values("trial")["trial"], best, where="post", color="k", lw=1,
                 label="best so far")  # fmt: skip
    axes[0].set_xlabel("trial")
    axes[1].set_xlabel("fit seconds (validation fit)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel(f"validation {metric}")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right")
    axes[0].set_title("search by trial")
    axes[1].set_title("score against fit time")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


#: settings of an automatically picked model (``RecommenderService(model="auto")``,
#: ``deepcuts serve --model auto``): a short search, every family, seeded
AUTO_DEFAULTS = {"budget_s": 60.0, "families": list(FAMILIES), "metric": "ndcg@10",
                 "random_state": 0}  # fmt: skip


def check_auto_params(params: dict | None) -> dict:
    """The settings of an automatic pick, defaults filled in and command-line strings
    converted (``budget_s="2m"``, ``families="als,ease"``); bad ones raise.

    Examples
    --------
    >>> check_auto_params({"budget_s": "2m", "families": "als,ease"})["families"]
    ['als', 'ease']
    """
    params = dict(params or {})
    unknown = sorted(set(params) - set(AUTO_DEFAULTS))
    if unknown:
        raise DeepcutsError(
            f"model 'auto' has no parameter(s) {unknown}; valid: {sorted(AUTO_DEFAULTS)}"
        )
    out = {**AUTO_DEFAULTS, **params}
    out["budget_s"] = parse_budget(out["budget_s"])
    fams = out["families"]
    if isinstance(fams, str):
        fams = [f.strip() for f in fams.split(",") if f.strip()]
    out["families"] = [str(f).lower() for f in fams]
    bad = sorted(set(out["families"]) - set(FAMILIES))
    if bad or not out["families"]:
        raise DeepcutsError(f"model 'auto': families {bad or fams} unknown; use {list(FAMILIES)}")
    if out["metric"] not in TUNE_METRICS:
        raise DeepcutsError(f"model 'auto': metric must be one of {list(TUNE_METRICS)}")
    try:
        out["random_state"] = int(out["random_state"])
    except (TypeError, ValueError):
        raise DeepcutsError(
            f"model 'auto': random_state {out['random_state']!r} is not an int"
        ) from None
    return out


def fit_auto(x: Interactions, params: dict | None = None, *, show_progress: bool = False):
    """Pick a model for ``x`` with :func:`tune` (validation split of ``x``, budget
    ``params["budget_s"]``) and return the winner refitted on all of ``x``."""
    p = check_auto_params(params)
    res = tune(x, families=p["families"], budget_s=p["budget_s"], metric=p["metric"],
               random_state=p["random_state"], show_progress=show_progress)  # fmt: skip
    log.info("picked %s %s (validation %s %.4f, %d trials)", res.family, res.params, res.metric,
             res.value, res.n_trials)  # fmt: skip
    return res.model
