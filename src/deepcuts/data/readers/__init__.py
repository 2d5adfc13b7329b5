"""Readers that turn listening data files into :class:`~deepcuts.data.Interactions`."""

from deepcuts.data.readers.hetrec import read_hetrec_lastfm

__all__ = ["read_hetrec_lastfm"]
