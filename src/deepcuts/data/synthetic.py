"""Seeded listening data with planted structure: tastes, scenes, a long tail and known deep cuts.

One generator serves every benchmark and test that needs data whose truth is known (the
discovery knob, personas, accuracy at catalogue scale). Its generative story:

* **Catalogue.** ``n_genres`` genres (a listener's *tastes*), each split into ``scenes_per_genre``
  scenes (sub-styles). Songs are grouped into artists, each artist in one scene. Artist and song
  popularity weights follow power laws (Zipf exponent ``item_zipf``), so a few artists hold most
  plays and most of the catalogue is a long tail. Genre sizes follow a milder power law.
* **Listeners.** A listener has ``k`` tastes (``k = 1`` with probability ``one_taste_share``,
  otherwise 2..``max_tastes``), each a distinct genre with a weight (Dirichlet), a *home scene*
  in each taste, and a *mainstreamness* ``m_u`` in [0, 1]. Activity (number of listens) is
  log-normal, so a few listeners play a lot.
* **A listen** picks a taste by its weight, then the home scene with probability
  ``scene_loyalty`` (else any scene of that genre), then a song of that scene: with probability
  ``m_u`` in proportion to popularity (the hits), else in proportion to ``popularity **
  flat_exponent`` (a flatter draw that reaches deep cuts). Repeated draws of a song add up to
  its play count.

So the truth is known: which tastes each listener has and how big they are, and which rare songs
they would like (:meth:`SyntheticListening.deep_cuts`: rare songs of their home scenes). Items
carry names, tags ``[genre, genre/scene]`` and an ``artist`` column, so tag-based metrics
(genre fit, persona labels) and song -> artist aggregation work. :meth:`write_taste_profile`
writes the Million Song Dataset Taste Profile's own format (``user \\t song \\t count``) with a
song -> artist mapping, so the real reader is the one under test at scale.

Examples
--------
>>> d = generate_listening(n_users=200, n_items=500, random_state=0)
>>> d.interactions.shape[0]
200
>>> d.user_tastes(0)  # doctest: +SKIP
{'genre3': 0.62, 'genre0': 0.38}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.exceptions import DeepcutsError

__all__ = ["SyntheticListening", "generate_listening", "taste_profile_shape", "TASTE_PROFILE_SHAPE"]

#: users, songs and (user, song) pairs of the Million Song Dataset Taste Profile
TASTE_PROFILE_SHAPE = (1_019_318, 384_546, 48_373_586)


def taste_profile_shape(scale: float = 1.0) -> dict:
    """Keyword arguments of :func:`generate_listening` for ``scale`` x the Taste Profile's shape.

    Users and songs are ``scale`` times the Taste Profile's 1,019,318 x 384,546, at song level
    with 8 songs per artist on average, 20 genres of 8 scenes each. ``listens_per_user=40``
    (median draws; mean 55 with the default log-normal activity) gives about 47 distinct songs
    per user on the full catalogue, the Taste Profile's 47.5 (48.4M pairs). Smaller catalogues
    repeat songs more often, so they hold fewer distinct pairs per user (about 30 at 1%).

    Parameters
    ----------
    scale : float, default=1.0
        Fraction of the Taste Profile's shape, in (0, 1] (larger values are allowed).

    Returns
    -------
    dict
        ``n_users``, ``n_items``, ``level``, ``songs_per_artist``, ``listens_per_user``,
        ``n_genres``, ``scenes_per_genre``; pass them on with a seed.

    Examples
    --------
    >>> kw = taste_profile_shape(0.01)
    >>> kw["n_users"], kw["n_items"]
    (10193, 3845)
    >>> d = generate_listening(**taste_profile_shape(0.001), random_state=0)
    >>> d.interactions.shape
    (1019, 385)
    """
    if not isinstance(scale, int | float) or not np.isfinite(scale) or scale <= 0:
        raise DeepcutsError(f"scale must be a positive number such as 0.01 or 1.0, got {scale!r}")
    n_users, n_items, _ = TASTE_PROFILE_SHAPE
    return dict(
        n_users=max(1, int(round(n_users * scale))),
        n_items=max(160, int(round(n_items * scale))),
        level="song",
        songs_per_artist=8.0,
        listens_per_user=40.0,
        n_genres=20,
        scenes_per_genre=8,
    )


@dataclass(frozen=True, eq=False)
class SyntheticListening:
    """The generated interactions plus the planted truth (internal indices throughout).

    Attributes
    ----------
    interactions : Interactions
        Users x items play counts; ``items`` has ``item``, ``name``, ``tags``, ``artist``,
        ``genre``, ``scene``. Every user and item index matches the arrays below.
    item_genre, item_scene, item_artist : ndarray of shape (n_items,) int32
        Planted genre, global scene and artist of each item.
    item_weight : ndarray of shape (n_items,) float64
        Planted popularity weight (sums to 1 within each scene).
    user_genres : ndarray of shape (n_users, max_tastes) int32
        Each user's taste genres, ``-1`` past the user's number of tastes.
    user_taste_weights : ndarray of shape (n_users, max_tastes) float64
        Weights of those tastes (rows sum to 1, 0 past the user's tastes).
    user_home_scene : ndarray of shape (n_users, max_tastes) int32
        Home scene (global index) of each taste, ``-1`` where unused.
    user_mainstream : ndarray of shape (n_users,) float64
        Share of listens drawn by popularity rather than by the flat draw.
    params : dict
        The generator's arguments.
    """

    interactions: Interactions
    item_genre: np.ndarray
    item_scene: np.ndarray
    item_artist: np.ndarray
    item_weight: np.ndarray
    user_genres: np.ndarray
    user_taste_weights: np.ndarray
    user_home_scene: np.ndarray
    user_mainstream: np.ndarray
    params: dict = field(default_factory=dict)

    @property
    def n_tastes(self) -> np.ndarray:
        """Number of planted tastes of each user, shape (n_users,) int."""
        return (self.user_genres >= 0).sum(axis=1)

    def user_tastes(self, user: int) -> dict[str, float]:
        """``{genre tag: weight}`` of one user (internal index), heaviest first."""
        g, w = self.user_genres[user], self.user_taste_weights[user]
        order = np.argsort(-w)
        return {f"genre{int(g[k])}": round(float(w[k]), 4) for k in order if g[k] >= 0}

    def deep_cuts(self, user: int, *, rarest_share: float = 0.8) -> np.ndarray:
        """Items this user would like that few people know: the ``rarest_share`` least popular
        items (by planted weight, catalogue-wide) of the user's home scenes, internal indices."""
        scenes = self.user_home_scene[user]
        scenes = scenes[scenes >= 0]
        cut = np.quantile(self.item_weight, rarest_share)
        return np.flatnonzero(np.isin(self.item_scene, scenes) & (self.item_weight <= cut))

    def item_taste_of(self, user: int, items) -> np.ndarray:
        """Index (0..max_tastes-1) of the user's taste that each item belongs to, ``-1`` if none."""
        g = self.item_genre[np.asarray(items)]
        ug = self.user_genres[user]
        out = np.full(len(g), -1, dtype=np.int64)
        for k, gk in enumerate(ug):
            if gk >= 0:
                out[g == gk] = k
        return out

    def write_taste_profile(
        self, directory, *, gzip: bool = False, chunk_rows: int = 2_000_000
    ) -> tuple[Path, Path]:
        """Write ``train_triplets.txt`` (``user \\t song \\t count``) and a song -> artist mapping
        CSV (``song_id,artist_name``) in the Taste Profile's format; returns both paths.

        Read them back with :func:`deepcuts.data.read_msd_taste_profile` (``level="track"``).
        The triplets are streamed ``chunk_rows`` lines at a time, so memory holds one chunk of
        text, never the whole file (48M lines at the Taste Profile's size). Both files are
        written atomically (temporary name, then rename).
        """
        import gzip as gz
        import os
        import tempfile

        from deepcuts._fileio import atomic_write_bytes

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        x = self.interactions
        m = x.matrix.tocsr()
        trip = d / ("train_triplets.txt.gz" if gzip else "train_triplets.txt")
        user_ids = x.user_map.ids
        item_ids = x.item_map.ids
        fd, tmp = tempfile.mkstemp(dir=d, prefix=f".{trip.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as raw:
                out = gz.GzipFile(fileobj=raw, mode="wb", mtime=0) if gzip else raw
                # cut between users so each chunk is whole rows of the CSR matrix
                cuts = np.searchsorted(m.indptr, np.arange(0, m.nnz, max(1, int(chunk_rows))))
                cuts = np.unique(np.r_[cuts, m.shape[0]])
                for a, b in zip(cuts[:-1], cuts[1:]):
                    lo, hi = m.indptr[a], m.indptr[b]
                    rows = np.repeat(np.arange(a, b), np.diff(m.indptr[a : b + 1]))
                    df = pd.DataFrame(
                        {
                            "user": user_ids[rows],
                            "song": item_ids[m.indices[lo:hi]],
                            "count": np.maximum(np.rint(m.data[lo:hi]), 1).astype(np.int64),
                        }
                    )
                    out.write(df.to_csv(sep="\t", header=False, index=False).encode())
                if gzip:
                    out.close()
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(tmp, trip)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        mapping = d / "song_artist.csv"
        songs = pd.DataFrame({"song_id": item_ids, "artist_name": x.items["artist"]})
        atomic_write_bytes(mapping, songs.to_csv(index=False).encode())
        return trip, mapping


def generate_listening(
    n_users: int = 2000,
    n_items: int = 15000,
    *,
    n_genres: int = 12,
    scenes_per_genre: int = 4,
    songs_per_artist: float = 1.0,
    listens_per_user: float = 60.0,
    activity_sigma: float = 0.8,
    max_tastes: int = 3,
    one_taste_share: float = 0.3,
    taste_concentration: float = 1.5,
    scene_loyalty: float = 0.7,
    item_zipf: float = 1.3,
    flat_exponent: float = 0.7,
    mainstream_range: tuple[float, float] = (0.3, 0.95),
    plays_per_listen: float = 3.0,
    level: str = "artist",
    random_state: int = 0,
) -> SyntheticListening:
    """Generate listening data with planted tastes, scenes, a long tail and known deep cuts.

    Parameters
    ----------
    n_users, n_items : int, default=2000, 15000
        Listeners and items (artists, or songs when ``level="song"``).
    n_genres : int, default=12
        Genres; each user's tastes are distinct genres.
    scenes_per_genre : int, default=4
        Sub-styles per genre; a taste has one home scene.
    songs_per_artist : float, default=1.0
        Mean songs per artist (1 at artist level; e.g. 8 at song level).
    listens_per_user : float, default=60
        Median number of listens (draws) per user; log-normal with ``activity_sigma``.
    max_tastes : int, default=3
        Most tastes a user has.
    one_taste_share : float, default=0.3
        Share of users with a single taste.
    taste_concentration : float, default=1.5
        Dirichlet concentration of taste weights (higher = more even).
    scene_loyalty : float, default=0.7
        Probability that a listen comes from the taste's home scene.
    item_zipf : float, default=1.3
        Power-law exponent of artist popularity within a scene.
    flat_exponent : float, default=0.7
        Exponent on popularity of the flat (deep-cut) draw.
    mainstream_range : (float, float), default=(0.3, 0.95)
        Users' mainstreamness is uniform in this range.
    plays_per_listen : float, default=3
        Mean play count of one drawn listen (geometric), so counts vary like real play counts.
    level : {"artist", "song"}, default="artist"
        Item ids ``a<k>`` (artist level) or ``s<k>`` with an artist (song level).
    random_state : int, default=0
        Seed: the same seed gives the same data.

    Returns
    -------
    SyntheticListening
        Every user has at least one listen; every item keeps its index (items never played have
        an empty column).
    """
    for name, v in (("n_users", n_users), ("n_items", n_items), ("n_genres", n_genres),
                    ("scenes_per_genre", scenes_per_genre), ("max_tastes", max_tastes)):  # fmt: skip
        if int(v) < 1:
            raise DeepcutsError(f"{name} must be >= 1, got {v!r}")
    if max_tastes > n_genres:
        raise DeepcutsError(f"max_tastes ({max_tastes}) must be <= n_genres ({n_genres})")
    if level not in ("artist", "song"):
        raise DeepcutsError(f"level must be 'artist' or 'song', got {level!r}")
    if not 0 <= one_taste_share <= 1 or not 0 <= scene_loyalty <= 1:
        raise DeepcutsError("one_taste_share and scene_loyalty must be in [0, 1]")
    rng = np.random.default_rng(random_state)
    n_scenes = n_genres * scenes_per_genre

    # --- catalogue: scenes of power-law size, artists in scenes, songs of artists
    genre_size = 1.0 / np.arange(1, n_genres + 1) ** 0.5
    scene_size = np.repeat(genre_size / scenes_per_genre, scenes_per_genre)
    scene_size *= rng.uniform(0.6, 1.4, n_scenes)
    item_scene = np.sort(rng.choice(n_scenes, size=n_items, p=scene_size / scene_size.sum()))
    # every scene gets at least one item
    item_scene[:n_scenes] = np.arange(n_scenes) if n_items >= n_scenes else item_scene[:n_scenes]
    item_scene = np.sort(item_scene).astype(np.int32)
    item_genre = (item_scene // scenes_per_genre).astype(np.int32)
    n_artists = max(1, int(round(n_items / max(songs_per_artist, 1.0))))
    # artist of each item: consecutive runs within each scene
    artist_cut = np.sort(rng.choice(np.arange(1, n_items), size=min(n_artists, n_items) - 1,
                                    replace=False)) if n_artists > 1 else np.zeros(0, int)  # fmt: skip
    boundary = np.zeros(n_items, dtype=bool)
    boundary[artist_cut] = True
    boundary[1:] |= item_scene[1:] != item_scene[:-1]
    item_artist = np.cumsum(boundary).astype(np.int32)
    # popularity weight: artist rank^-zipf within scene, times song rank^-1 within artist
    weight = np.empty(n_items, dtype=np.float64)
    a_starts = np.flatnonzero(np.r_[True, item_artist[1:] != item_artist[:-1]])
    a_scene = item_scene[a_starts]
    a_rank = np.empty(len(a_starts))
    perm = rng.permutation(len(a_starts))  # random rank order within each scene
    order = np.lexsort((perm, a_scene))
    first = np.r_[True, a_scene[order][1:] != a_scene[order][:-1]]
    run_start = np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))
    a_rank[order] = np.arange(len(order)) - run_start + 1
    a_weight = a_rank ** -float(item_zipf)
    song_rank = np.arange(n_items) - a_starts[item_artist] + 1
    weight[:] = a_weight[item_artist] / song_rank
    scene_total = np.bincount(item_scene, weights=weight, minlength=n_scenes)
    weight /= np.where(scene_total[item_scene] > 0, scene_total[item_scene], 1.0)

    # --- listeners
    k = np.where(rng.random(n_users) < one_taste_share, 1,
                 rng.integers(2, max_tastes + 1, n_users) if max_tastes > 1 else 1)  # fmt: skip
    p_genre = genre_size / genre_size.sum()
    keys = rng.random((n_users, n_genres)) ** (1.0 / p_genre)  # weighted sampling w/o replacement
    user_genres_all = np.argsort(-keys, axis=1)[:, :max_tastes].astype(np.int32)
    used = np.arange(max_tastes)[None, :] < k[:, None]
    user_genres = np.where(used, user_genres_all, -1).astype(np.int32)
    w = rng.gamma(taste_concentration, size=(n_users, max_tastes)) * used
    w /= w.sum(axis=1, keepdims=True)
    home = user_genres_all * scenes_per_genre + rng.integers(
        0, scenes_per_genre, (n_users, max_tastes)
    )
    user_home = np.where(used, home, -1).astype(np.int32)
    mainstream = rng.uniform(*mainstream_range, n_users)

    # --- listens, fully vectorised
    n_draw = np.maximum(1, np.rint(listens_per_user * rng.lognormal(0, activity_sigma, n_users)))
    n_draw = n_draw.astype(np.int64)
    du = np.repeat(np.arange(n_users), n_draw)
    cw = np.cumsum(w, axis=1)
    taste = (rng.random(len(du))[:, None] > cw[du]).sum(axis=1)
    taste = np.minimum(taste, k[du] - 1)
    g = user_genres_all[du, taste]
    scene = np.where(rng.random(len(du)) < scene_loyalty, home[du, taste],
                     g * scenes_per_genre + rng.integers(0, scenes_per_genre, len(du)))  # fmt: skip
    # inverse-CDF draw of a song within the scene from two cumulative tables
    s_start = np.searchsorted(item_scene, np.arange(n_scenes))
    s_end = np.searchsorted(item_scene, np.arange(n_scenes), side="right")
    flat = weight**flat_exponent
    flat_total = np.bincount(item_scene, weights=flat, minlength=n_scenes)
    flat = flat / np.where(flat_total[item_scene] > 0, flat_total[item_scene], 1.0)
    popular = rng.random(len(du)) < mainstream[du]
    cum_pop = np.cumsum(weight)
    cum_flat = np.cumsum(flat)
    base = np.r_[0.0, cum_pop][s_start[scene]]
    base_f = np.r_[0.0, cum_flat][s_start[scene]]
    r = rng.random(len(du))
    target = np.where(popular, base + r * (cum_pop[s_end[scene] - 1] - base),
                      base_f + r * (cum_flat[s_end[scene] - 1] - base_f))  # fmt: skip
    item = np.where(popular, np.searchsorted(cum_pop, target, side="right"),
                    np.searchsorted(cum_flat, target, side="right"))  # fmt: skip
    item = np.clip(item, s_start[scene], s_end[scene] - 1)
    plays = rng.geometric(1.0 / max(plays_per_listen, 1.0), len(du)).astype(np.float32)
    m = sp.csr_matrix((plays, (du, item)), shape=(n_users, n_items))
    m.sum_duplicates()

    prefix = "a" if level == "artist" else "s"
    ids = np.array([f"{prefix}{i}" for i in range(n_items)], dtype=object)
    artist_names = np.array([f"artist {a}" for a in range(item_artist.max() + 1)], dtype=object)
    if level == "artist":
        names = artist_names[item_artist]
    else:
        names = np.array([f"song {i}" for i in range(n_items)], dtype=object)
    items = pd.DataFrame(
        {
            "item": ids,
            "name": names,
            "tags": [
                [f"genre{item_genre[i]}", f"genre{item_genre[i]}/scene{item_scene[i]}"]
                for i in range(n_items)
            ],  # fmt: skip
            "artist": artist_names[item_artist],
            "genre": item_genre,
            "scene": item_scene,
        }
    )
    user_map = IdMap([f"u{u}" for u in range(n_users)], name="user")
    x = Interactions(m, user_map, IdMap(ids, name="item"), items=items)
    params = dict(
        n_users=n_users, n_items=n_items, n_genres=n_genres, scenes_per_genre=scenes_per_genre,
        songs_per_artist=songs_per_artist, listens_per_user=listens_per_user,
        activity_sigma=activity_sigma, max_tastes=max_tastes, one_taste_share=one_taste_share,
        taste_concentration=taste_concentration, scene_loyalty=scene_loyalty, item_zipf=item_zipf,
        flat_exponent=flat_exponent, mainstream_range=tuple(mainstream_range),
        plays_per_listen=plays_per_listen, level=level, random_state=random_state,
    )  # fmt: skip
    x.meta["synthetic"] = params
    return SyntheticListening(
        interactions=x,
        item_genre=item_genre,
        item_scene=item_scene,
        item_artist=item_artist,
        item_weight=weight,
        user_genres=user_genres,
        user_taste_weights=w,
        user_home_scene=user_home,
        user_mainstream=mainstream,
        params=params,
    )
