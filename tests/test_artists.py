"""Artist-name normalisation (issue 2)."""

import json

import pytest

from deepcuts.data.artists import (
    artist_credits,
    artist_key,
    normalize_artists,
    primary_artist,
    split_artists,
)
from deepcuts.data.datasets import shared_data_path


@pytest.mark.parametrize(
    ("credit", "parts"),
    [
        ("Jazzanova Feat. Ben Westbeech", ("Jazzanova", "Ben Westbeech")),
        ("2-Pac ft. Nate Dogg", ("2-Pac", "Nate Dogg")),
        ("Alicia Keys featuring John Mayer", ("Alicia Keys", "John Mayer")),
        ("Alborosie [feat. Gramps Morgan]", ("Alborosie", "Gramps Morgan")),
        ("Andre Nickatina (ft. Equipto)", ("Andre Nickatina", "Equipto")),
        ("112 / Ludacris / Chingy", ("112", "Ludacris", "Chingy")),
        ("A Tribe Called Quest;Spanky", ("A Tribe Called Quest", "Spanky")),
        ("AC/DC", ("AC/DC",)),
        ("Akron/Family", ("Akron/Family",)),
        ("Earth, Wind & Fire", ("Earth, Wind & Fire",)),
        ("Simon and Garfunkel", ("Simon and Garfunkel",)),
        ("Daft Punk", ("Daft Punk",)),
        ("+ / -", ("+ / -",)),
        ("", ()),
    ],
)
def test_split(credit, parts):
    assert split_artists(credit) == parts


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Beyoncé", "BEYONCE"),
        ("Sigur Rós", "sigur ros"),
        ("The Beatles", "Beatles, The"),
        ("the  beatles ", "Beatles"),
        ("Guns N’ Roses", "Guns N' Roses"),
        ("Mötley Crüe", "Motley Crue"),
        ("Ｍｏｎｏ", "mono"),  # full-width letters (NFKD)
    ],
)
def test_same_key(a, b):
    assert artist_key(a) == artist_key(b)


def test_keys_keep_what_matters():
    assert artist_key("The") == "the"  # a name that is only "The" keeps it
    assert artist_key("The The") == "the"
    assert artist_key("ガゼット") != artist_key("カセット")  # dakuten are kept
    assert artist_key("Moño") == "mono"  # accents on Latin letters are folded


def test_credits_and_vectorised():
    assert primary_artist("Cam Feat. Anggun") == "Cam"
    assert artist_credits("A feat. A", credit="split") == [("a", "A", 1.0)]
    df = normalize_artists(["X feat. Y", "X feat. Y", "", "Z"], credit="split")
    assert df["row"].tolist() == [0, 0, 1, 1, 3]
    assert df.groupby("row")["share"].sum().tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="credit"):
        artist_credits("A", credit="all")


@pytest.mark.realdata
def test_botify_artist_names():
    folder = shared_data_path("botify")
    if folder is None:
        pytest.skip("botify not found: ../shared/data/botify is absent in this checkout")
    names = {json.loads(line)["artist"] for line in open(folder / "tracks.json", encoding="utf-8")}
    assert len(names) == 11464  # SOURCE.md
    keys = {artist_key(primary_artist(n)) for n in names}
    # collaboration credits fold into their primary artist: fewer keys than raw names
    assert len(keys) < len(names) - 500
    assert artist_key(primary_artist("2Pac featuring Val Young")) in keys
    assert "ac/dc" in keys
    assert all(k for k in keys)
