"""Data layer: id maps, interaction matrices, readers, filters, weighting and splits."""

from deepcuts.data.aggregate import aggregate_to_artists
from deepcuts.data.artists import artist_key, normalize_artists, primary_artist, split_artists
from deepcuts.data.datasets import load_lastfm2k
from deepcuts.data.filters import filter_interactions
from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers import (
    read_hetrec_lastfm,
    read_interactions,
    read_lastfm1k,
    read_listenbrainz,
    read_msd_mapping,
    read_msd_taste_profile,
    read_table,
)
from deepcuts.data.synthetic import SyntheticListening, generate_listening, taste_profile_shape

__all__ = [
    "IdMap",
    "SyntheticListening",
    "Interactions",
    "aggregate_to_artists",
    "artist_key",
    "filter_interactions",
    "generate_listening",
    "taste_profile_shape",
    "load_lastfm2k",
    "normalize_artists",
    "primary_artist",
    "read_hetrec_lastfm",
    "read_interactions",
    "read_lastfm1k",
    "read_listenbrainz",
    "read_msd_mapping",
    "read_msd_taste_profile",
    "read_table",
    "split_artists",
]
