"""Helpers shared by the ``train``, ``recommend`` and ``evaluate`` commands."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts._fileio import atomic_write_bytes
from deepcuts.data import Interactions, load_lastfm2k
from deepcuts.data._persist import interactions_paths
from deepcuts.exceptions import DeepcutsError
from deepcuts.models import MODELS, make_model

#: names accepted by ``--data`` besides a file path
BUNDLED = {"lastfm2k": load_lastfm2k}

DATA_HELP = (
    "dataset: 'lastfm2k' (bundled HetRec 2011 Last.fm 2K) or the path of interactions saved by "
    "'deepcuts ingest' (PATH, PATH.npz or PATH.json)"
)


def load_data(spec: str) -> Interactions:
    """The interactions named by ``--data``: a bundled name or a file written by ``ingest``."""
    key = str(spec).strip().lower()
    if key in BUNDLED:
        return BUNDLED[key]()
    _, manifest = interactions_paths(spec)
    if manifest.exists():
        return Interactions.load(spec)
    if Path(spec).exists():
        raise DeepcutsError(
            f"--data {spec}: not a saved deepcuts dataset (no {manifest.name} next to it); "
            f"convert it first with `deepcuts ingest {spec} -o DATASET` and pass --data DATASET"
        )
    raise DeepcutsError(
        f"--data {spec!r}: no such file or bundled dataset; use one of {sorted(BUNDLED)} or "
        f"a dataset written by `deepcuts ingest`"
    )


def recommend_from_data(model, data: Interactions, users: list, **kw) -> pd.DataFrame:
    """Recommendations for ``users`` of ``data`` from their histories there (folded in).

    ``data`` may be newer than the model's training data: its items unknown to the model are
    ignored. Returns the concatenated ``Recommendations.to_frame()`` of every user.
    """
    if not getattr(model, "supports_fold_in", False):
        raise DeepcutsError(
            f"--data: {type(model).__name__} cannot recommend from new histories; "
            f"leave out --data to use the model's training data"
        )
    idx = data.user_map.index(users)  # unknown users raise UnknownIdError
    frames = []
    for u, i in zip(users, idx):
        row = data.matrix[int(i)]
        history = dict(zip(data.item_map.external(row.indices).tolist(), row.data.tolist()))
        frames.append(model.recommend_history(history, user_id=u, **kw).to_frame())
    return pd.concat(frames, ignore_index=True)


def parse_assignments(items, *, option: str) -> dict[str, str]:
    """``["k=50", "similarity=bm25"]`` -> ``{"k": "50", "similarity": "bm25"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise DeepcutsError(f"{option} {item!r}: expected NAME=VALUE, e.g. {option} k=50")
        out[key.strip()] = value.strip()
    return out


def parse_model_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"itemknn:k=50,similarity=bm25"`` -> ``("itemknn", {"k": "50", ...})``."""
    name, _, rest = str(spec).partition(":")
    name = name.strip().lower()
    if name not in MODELS:
        raise DeepcutsError(
            f"--model {spec!r}: unknown model {name!r}; choose one of {sorted(MODELS)}"
        )
    params = parse_assignments([p for p in rest.split(",") if p.strip()], option="--model")
    return name, params


def build_model(name: str, params: dict, seed: int | None):
    """A model from the registry; ``seed`` fills ``random_state`` unless given explicitly."""
    from deepcuts.models import model_params

    params = dict(params)
    if seed is not None and "random_state" in model_params(name):
        params.setdefault("random_state", seed)
    return make_model(name, **params)


def to_external_ids(values, ids: np.ndarray, what: str) -> list:
    """Command-line strings converted to the id type of a trained model (ints stay ints)."""
    if ids.dtype.kind in "iu" or (ids.dtype == object and len(ids) and isinstance(ids[0], int)):
        out = []
        for v in values:
            try:
                out.append(int(v))
            except ValueError:
                raise DeepcutsError(
                    f"{what} id {v!r} is not an integer; this model's ids are"
                ) from None
        return out
    return [str(v) for v in values]


def write_text(path, text: str) -> Path:
    """Write ``text`` atomically (no half-written files)."""
    path = Path(path)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def frame_to_csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def to_json(obj) -> str:
    def default(o):
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return None if not np.isfinite(o) else float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        return str(o)

    return json.dumps(obj, indent=2, default=default, allow_nan=False) + "\n"


def add_model_file_argument(p, help: str) -> None:
    """``--model-file PATH`` (a saved model), with the old spelling ``--model PATH`` still
    accepted and flagged as deprecated: ``--model`` names a model *class* in ``train``,
    ``evaluate`` and ``serve``, and ``--model-file`` a saved model everywhere."""
    import argparse
    import sys

    command = p.prog.split()[-1]

    class _Deprecated(argparse.Action):
        def __call__(self, parser, namespace, values, option_string=None):
            print(
                f"deepcuts {command}: --model PATH is deprecated here; use --model-file PATH "
                "(--model names a model class in train, evaluate and serve)",
                file=sys.stderr,
            )
            setattr(namespace, self.dest, values)

    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--model-file", dest="model_file", metavar="PATH", help=help)
    g.add_argument("--model", dest="model_file", metavar="PATH", action=_Deprecated,
                   help="deprecated spelling of --model-file")  # fmt: skip


#: request knobs that ``--sweep`` may vary without refitting (re-rankers, not model parameters)
KNOBS = ("depth", "floor", "taste", "rarity", "band", "diversity", "artist_cap")


def add_knob_arguments(p) -> None:
    """``--depth``, ``--floor``, ``--taste``, ``--rarity``, ``--band``, ``--diversity`` and ``--artist-cap``
    (see ``docs/rarity.md``)."""
    g = p.add_argument_group("discovery knobs (re-ranking, see docs/rarity.md)")
    g.add_argument(
        "--depth",
        metavar="D",
        help="how deep into the long tail: the share of the list given to the catalogue's long "
        "tail, 0 = the model's ranking, 1 = deepest; "
        "'mine' = your own history's popularity level, 'mine+0.2' = a step deeper. Items "
        "with fewer than --floor listeners are left out",
    )
    g.add_argument(
        "--floor",
        type=int,
        metavar="N",
        help="with --depth: fewest training listeners a recommended item needs (default: 3)",
    )
    g.add_argument(
        "--taste",
        type=float,
        metavar="W",
        help="with --depth: weight in [0, 1] of taste evidence when picking deep cuts (how "
        "much their listeners resemble you; default: 0.3, 0 = model score only)",
    )
    g.add_argument(
        "--rarity",
        type=float,
        metavar="X",
        help="expert setting, uncalibrated and without an evidence floor (prefer --depth): "
        "scores times item frequency ** (X - 1); 1 = neutral, < 1 favours rare items, > 1 "
        "popular ones; X in [-3, 3]. On Last.fm 2K 0.85 already fills lists with "
        "one-listener artists",
    )
    g.add_argument(
        "--band",
        metavar="LO:HI",
        help="only items whose popularity percentile is in [LO, HI], 0 <= LO < HI <= 100, "
        "e.g. 60:90",
    )
    g.add_argument(
        "--diversity",
        type=float,
        metavar="D",
        help="MMR diversity weight in [0, 1]: 0 = model order, 1 = most diverse",
    )
    g.add_argument(
        "--artist-cap",
        type=int,
        metavar="N",
        help="at most N tracks per artist in a list (track data with an artist column)",
    )


def knobs_from_args(args) -> dict:
    """The knob values given on the command line (unset ones left out)."""
    out = {}
    for k in KNOBS:
        v = getattr(args, k, None)
        if v is not None:
            out[k] = v
    return out


def rerankers_from_knobs(knobs: dict) -> list:
    """Re-rankers for knob values; out-of-range values raise a one-line DeepcutsError."""
    from deepcuts.rerank import build_rerankers

    try:
        return build_rerankers(**knobs)
    except DeepcutsError as e:
        raise DeepcutsError(f"--{str(e).replace('artist_cap', 'artist-cap')}") from None
