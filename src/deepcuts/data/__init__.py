"""Data layer: id maps, interaction matrices, readers, weighting and splits."""

from deepcuts.data.datasets import load_lastfm2k
from deepcuts.data.idmap import IdMap
from deepcuts.data.interactions import Interactions
from deepcuts.data.readers import read_hetrec_lastfm

__all__ = ["IdMap", "Interactions", "load_lastfm2k", "read_hetrec_lastfm"]
