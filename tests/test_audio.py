"""Audio feature extraction (issue 7): synthetic signals with known answers and real clips."""

import os
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("librosa")

from deepcuts.data.audio import (  # noqa: E402
    FEATURE_COLUMNS,
    PITCH_CLASSES,
    extract_features,
    extract_file,
    extract_folder,
    mood_tags,
)
from deepcuts.data.datasets import shared_data_path  # noqa: E402
from deepcuts.exceptions import DataError, DeepcutsError  # noqa: E402

SR = 22050
TRUMPET = Path(__file__).parent / "data" / "audio" / "sorohanro_solo_trumpet_06.ogg"


def click_track(bpm: float, seconds: float = 8.0) -> np.ndarray:
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.02 * SR)) / SR
    burst = (np.sin(2 * np.pi * 1000 * t) * np.exp(-t * 200)).astype(np.float32)
    for s in range(0, len(y) - len(burst), int(round(60 / bpm * SR))):
        y[s : s + len(burst)] += burst
    return y


def chord(freqs, seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return sum(0.2 * np.sin(2 * np.pi * f * t) for f in freqs).astype(np.float32)


def write_wav(path, y):
    import soundfile as sf

    sf.write(path, y, SR)


def tone_pulses(bpm: float = 120.0, freq: float = 440.0, seconds: float = 4.0) -> np.ndarray:
    """Decaying ``freq`` Hz notes on every beat at ``bpm``: known tempo and known pitch."""
    y = np.zeros(int(seconds * SR), np.float32)
    t = np.arange(int(0.25 * SR)) / SR
    note = (0.5 * np.sin(2 * np.pi * freq * t) * np.exp(-t * 12)).astype(np.float32)
    for s in range(0, len(y) - len(note), int(round(60 / bpm * SR))):
        y[s : s + len(note)] += note
    return y


def _can_write(fmt: str) -> bool:
    import soundfile as sf

    return fmt.upper() in sf.available_formats()


FORMATS = [
    pytest.param("wav", {}, id="wav"),
    pytest.param("flac", {}, id="flac"),
    pytest.param("ogg", {"subtype": "VORBIS"}, id="ogg-vorbis"),
    pytest.param(
        "mp3",
        {"format": "MP3"},
        id="mp3",
        marks=pytest.mark.skipif(
            not _can_write("mp3"), reason="this libsndfile (< 1.1) cannot write MP3 files"
        ),
    ),
]


@pytest.mark.parametrize("ext, kw", FORMATS)
def test_every_format_decodes_with_known_tempo_and_pitch(tmp_path, ext, kw):
    import soundfile as sf

    path = tmp_path / f"pulses.{ext}"
    sf.write(path, tone_pulses(), SR, **kw)
    f = extract_file(path)
    # lossy encoders pad a few ms (mp3: encoder delay)
    assert f["duration_s"] == pytest.approx(4.0, abs=0.1)
    assert abs(f["tempo"] - 120) / 120 < 0.04
    chroma = np.array([f[f"chroma_{p}"] for p in PITCH_CLASSES])
    assert PITCH_CLASSES[int(np.argmax(chroma))] == "A"


@pytest.mark.parametrize("bpm", [120, 140])
def test_click_track_tempo(bpm):
    f = extract_features(click_track(bpm), SR)
    assert abs(f["tempo"] - bpm) / bpm < 0.04
    # a click track has a very clear pulse
    assert f["beat_strength"] > 5


def test_sine_440_is_pitch_class_a():
    t = np.arange(2 * SR) / SR
    f = extract_features(0.5 * np.sin(2 * np.pi * 440.0 * t), SR)
    chroma = np.array([f[f"chroma_{p}"] for p in PITCH_CLASSES])
    assert PITCH_CLASSES[int(np.argmax(chroma))] == "A"
    assert set(FEATURE_COLUMNS) <= set(f)
    assert all(np.isfinite(f[c]) for c in FEATURE_COLUMNS)


C4 = 261.63


@pytest.mark.parametrize(
    "freqs, key, mode",
    [
        ([C4, C4 * 2 ** (4 / 12), C4 * 2 ** (7 / 12)], "C", 1),  # C major triad
        ([C4, C4 * 2 ** (3 / 12), C4 * 2 ** (7 / 12)], "C", 0),  # C minor triad
        ([220.0, 220 * 2 ** (3 / 12), 220 * 2 ** (7 / 12)], "A", 0),  # A minor triad
    ],
)
def test_triad_key_and_mode(freqs, key, mode):
    f = extract_features(chord(freqs), SR)
    assert (PITCH_CLASSES[f["key"]], f["mode"]) == (key, mode)


def test_louder_is_more_aroused_and_brighter_is_happier():
    quiet = extract_features(0.01 * click_track(120), SR)
    loud = extract_features(click_track(120), SR)
    assert loud["loudness_db"] - quiet["loudness_db"] == pytest.approx(40, abs=0.5)
    assert loud["arousal"] > quiet["arousal"]
    base = {"mode": 0, "tempo": 100, "loudness_db": -20}
    assert (
        mood_tags({**base, "centroid_mean": 3000})[0] > mood_tags({**base, "centroid_mean": 800})[0]
    )


def test_bad_signals_raise():
    with pytest.raises(DeepcutsError, match="silent"):
        extract_features(np.zeros(SR), SR)
    with pytest.raises(DeepcutsError, match="too short"):
        extract_features(np.ones(100), SR)
    with pytest.raises(DeepcutsError, match="mono"):
        extract_features(np.ones((2, SR)), SR)


def test_shipped_trumpet_clip():
    f = extract_file(TRUMPET)
    assert f["duration_s"] == pytest.approx(5.33, abs=0.05)
    assert PITCH_CLASSES[f["key"]] == "F"  # the loop is in F
    assert 40 < f["tempo"] < 250


def test_corrupt_file_reported_and_skipped(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "broken.ogg").write_bytes(rng.bytes(4000))
    (tmp_path / "notes.txt").write_text("not audio, not picked up")
    write_wav(tmp_path / "click.wav", click_track(120, 3))
    with pytest.raises(DataError, match="broken.ogg.*cannot decode"):
        extract_file(tmp_path / "broken.ogg")
    res = extract_folder(tmp_path)
    assert res.features["file"].tolist() == ["click.wav"]
    assert res.failed["file"].tolist() == ["broken.ogg"]
    assert "cannot decode" in res.failed["error"][0]


def test_cache_resumes_and_detects_changes(tmp_path):
    audio = tmp_path / "music"
    (audio / "sub").mkdir(parents=True)
    write_wav(audio / "a.wav", click_track(120, 3))
    write_wav(audio / "sub" / "b.flac", chord([C4, C4 * 2 ** (4 / 12)], 2))
    cache = tmp_path / "cache.parquet"
    first = extract_folder(audio, cache=cache, checkpoint_every=1)
    assert first.n_cached == 0 and first.features["file"].tolist() == ["a.wav", "sub/b.flac"]
    again = extract_folder(audio, cache=cache)
    assert again.n_cached == 2
    np.testing.assert_allclose(
        again.features[list(FEATURE_COLUMNS)].to_numpy(float),
        first.features[list(FEATURE_COLUMNS)].to_numpy(float),
    )
    # a changed file is extracted again, the other comes from the cache
    write_wav(audio / "a.wav", click_track(140, 3))
    st = (audio / "a.wav").stat()
    os.utime(audio / "a.wav", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    third = extract_folder(audio, cache=cache)
    assert third.n_cached == 1
    assert third.features.loc[0, "tempo"] != first.features.loc[0, "tempo"]


def test_interrupted_batch_resumes_from_checkpoint(tmp_path, monkeypatch):
    import deepcuts.data.audio as audio

    folder = tmp_path / "music"
    folder.mkdir()
    for k in range(4):
        write_wav(folder / f"t{k}.wav", chord([220.0 * 2 ** (k / 12)], 1.0))
    cache = tmp_path / "cache.parquet"
    real = audio._worker
    calls = []

    def dies_on_third(path, *a):
        calls.append(path)
        if len(calls) == 3:
            raise KeyboardInterrupt  # the user stops the run
        return real(path, *a)

    monkeypatch.setattr(audio, "_worker", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        extract_folder(folder, cache=cache, checkpoint_every=100)
    monkeypatch.setattr(audio, "_worker", real)
    # the two finished files were saved on the way out and are not decoded again
    res = extract_folder(folder, cache=cache)
    assert res.n_cached == 2 and len(res.features) == 4 and res.failed.empty


def test_progress_bar_is_opt_in(tmp_path, capsys):
    write_wav(tmp_path / "a.wav", chord([440.0], 1.0))
    extract_folder(tmp_path)
    assert "audio features" not in capsys.readouterr().err
    extract_folder(tmp_path, show_progress=True)
    assert "audio features" in capsys.readouterr().err


def test_bad_cache_and_folder(tmp_path):
    (tmp_path / "cache.parquet").write_text("garbage")
    with pytest.raises(DataError, match="delete it"):
        extract_folder(tmp_path, cache=tmp_path / "cache.parquet")
    with pytest.raises(DataError, match="not a folder"):
        extract_folder(tmp_path / "nope")
    with pytest.raises(DeepcutsError, match="n_jobs"):
        extract_folder(tmp_path, n_jobs=0)


@pytest.mark.slow
def test_parallel_equals_serial(tmp_path):
    write_wav(tmp_path / "a.wav", click_track(120, 3))
    write_wav(tmp_path / "b.wav", chord([220.0, 277.18, 329.63], 2))
    (tmp_path / "c.mp3").write_bytes(b"\x00" * 500)
    serial = extract_folder(tmp_path)
    par = extract_folder(tmp_path, n_jobs=2)
    assert par.failed["file"].tolist() == ["c.mp3"]
    assert par.features["file"].tolist() == serial.features["file"].tolist()
    np.testing.assert_allclose(
        par.features[list(FEATURE_COLUMNS)].to_numpy(float),
        serial.features[list(FEATURE_COLUMNS)].to_numpy(float),
        rtol=1e-5,
    )


@pytest.mark.realdata
@pytest.mark.slow
def test_shared_clips():
    folder = shared_data_path("audio-clips")
    if folder is None:
        pytest.skip("audio clips not found: ../shared/data/audio-clips is absent in this checkout")
    t0 = time.perf_counter()
    res = extract_folder(folder)
    assert len(res.features) == 6 and res.failed.empty, res.failed
    assert time.perf_counter() - t0 < 300
    f = res.features.set_index("file")
    whale = f.loc["nps_humpback_whale_nonmusic.ogg"]
    music = f.drop(index="nps_humpback_whale_nonmusic.ogg")
    # the whale song fits no key: by far the least tonal clarity of the six
    assert whale["key_strength"] < 0.3 < 0.45 < music["key_strength"].min()
    assert f.loc["sorohanro_solo_trumpet_06.ogg", "key"] == PITCH_CLASSES.index("F")
