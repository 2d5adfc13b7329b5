"""Persona health: collapse, closeness and overlap of a user's personas."""

from __future__ import annotations

import numpy as np
import pandas as pd

from deepcuts.models._topk import topk_rows
from deepcuts.models.persona._scoring import PersonaState, unit_rows

__all__ = ["PersonaDiagnostics"]


def _health_state(model, ub, rows) -> PersonaState:
    """The personas of users ``ub``: the model's own state, or (tastes, shares) for models
    that give ``_user_vectors`` -> (tastes, attention, counts) and ``_shares``."""
    if hasattr(model, "_persona_state"):
        return model._persona_state(ub, rows)
    U, _, n = model._user_vectors(ub, rows)
    return PersonaState(U, n, unit_rows(U), model._shares(U, n, rows))


class PersonaDiagnostics:
    """Mixin: :meth:`persona_health` (needs the model's ``_persona_state``)."""

    def persona_health(self, users=None, *, k: int = 20, collapse_share: float = 0.9,
                       batch_size: int = 512) -> pd.DataFrame:  # fmt: skip
        """Health diagnostics of users' personas.

        Parameters
        ----------
        users : array-like of user ids, optional
            Default: every user.
        k : int, default=20
            List length for the overlap of personas' recommendations.
        collapse_share : float, default=0.9
            A user with several personas is *collapsed* when one persona holds at least this
            share of their plays.
        batch_size : int, default=512

        Returns
        -------
        DataFrame with one row per user
            Columns user, n_personas, max_share, min_share, collapsed, max_cosine (largest
            cosine between two of the user's persona vectors), list_overlap (mean Jaccard
            overlap of the top-``k`` lists of two of the user's personas; NaN with one persona).
            ``df.attrs["summary"]`` holds the means and the collapsed fraction.
        """
        self._check_fitted()
        x = self.interactions_
        uidx = (
            np.arange(x.n_users)
            if users is None
            else x.user_map.index(np.atleast_1d(np.asarray(users, dtype=object)))
        )
        P = self.persona_factors_.shape[1]
        iu, ju = np.triu_indices(P, 1)
        parts = []
        for s in range(0, len(uidx), batch_size):
            ub = uidx[s : s + batch_size]
            rows = x.matrix[ub]
            st = _health_state(self, ub, rows)
            U, n = st.U, st.n
            sh = st.shares
            act = np.arange(P)[None, :] < n[:, None]
            Un = U / np.maximum(np.linalg.norm(U, axis=2, keepdims=True), 1e-12)
            cos = np.einsum("bpf,bqf->bpq", Un, Un)[:, iu, ju]
            pair_ok = act[:, iu] & act[:, ju]
            max_cos = np.where(pair_ok, cos, -np.inf).max(axis=1, initial=-np.inf)
            lists = np.empty((len(ub), P, k), np.int64)
            played_r = np.repeat(np.arange(len(ub)), np.diff(rows.indptr))
            for p in range(P):  # loop over personas, not users
                S = (
                    np.array(self._persona_scores(st, p), np.float32)
                    if hasattr(self, "_persona_scores")
                    else U[:, p] @ self.item_factors_.T
                )
                S[played_r, rows.indices] = -np.inf
                lists[:, p] = topk_rows(S, k)[0]
            same = (lists[:, iu, :, None] == lists[:, ju, None, :]) & (lists[:, iu, :, None] >= 0)
            inter = same.any(axis=3).sum(axis=2)
            jac = inter / np.maximum(2 * k - inter, 1)
            overlap = np.where(pair_ok, jac, np.nan)
            with np.errstate(invalid="ignore"):
                mean_overlap = np.nanmean(np.where(pair_ok.any(axis=1)[:, None], overlap, 0.0),
                                          axis=1) if len(iu) else np.full(len(ub), np.nan)  # fmt: skip
            mean_overlap = np.where(pair_ok.any(axis=1), mean_overlap, np.nan)
            shm = np.where(act, sh, np.nan)
            parts.append(
                pd.DataFrame(
                    {
                        "user": x.user_map.external(ub),
                        "n_personas": n,
                        "max_share": np.nanmax(shm, axis=1),
                        "min_share": np.nanmin(shm, axis=1),
                        "collapsed": (n > 1) & (np.nanmax(shm, axis=1) >= collapse_share),
                        "max_cosine": np.where(n > 1, max_cos, np.nan),
                        "list_overlap": mean_overlap,
                    }
                )
            )
        df = pd.concat(parts, ignore_index=True)
        multi = df[df.n_personas > 1]
        df.attrs["summary"] = {
            "users": len(df),
            "mean_personas": float(df.n_personas.mean()),
            "collapsed_fraction": float(multi.collapsed.mean()) if len(multi) else 0.0,
            "mean_max_cosine": float(multi.max_cosine.mean()) if len(multi) else float("nan"),
            "mean_list_overlap": float(multi.list_overlap.mean()) if len(multi) else float("nan"),
        }
        return df
