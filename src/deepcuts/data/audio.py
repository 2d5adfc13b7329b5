"""Audio content features from real audio files (wav, mp3, ogg, flac), with librosa.

One row of features per file: MFCC 1-20 mean and standard deviation, tempo, beat strength, RMS
energy, loudness, spectral centroid / rolloff / bandwidth, zero-crossing rate, the 12 chroma means,
key and mode (Krumhansl-Schmuckler key finding with Temperley's profiles), and mood proxies (valence, arousal and the tags
happy / sad / energetic / calm). :func:`extract_folder` runs over a folder in parallel, caches
per file (resumable) and reports files that cannot be decoded instead of stopping.

librosa and soundfile come with the ``audio`` extra (``pip install "deepcuts[audio]"``); they are
imported only when features are extracted.

Mood proxies
------------
These are documented heuristics, not a trained mood classifier. All terms are clipped to [0, 1]:

- ``brightness = (centroid_mean - 1000 Hz) / 2000 Hz`` (1 kHz dull ... 3 kHz bright)
- ``pace = (tempo - 60 BPM) / 120 BPM`` (60 slow ... 180 fast)
- ``energy = (loudness_db + 40 dB) / 30 dB`` (-40 dBFS quiet ... -10 dBFS loud)
- ``valence = 0.5 * mode + 0.25 * brightness + 0.25 * pace`` (``mode`` 1 = major, 0 = minor)
- ``arousal = 0.6 * energy + 0.4 * pace``

Tags (a track can carry several, joined by ``;``): ``energetic`` if arousal >= 0.6, ``calm`` if
arousal < 0.4, ``happy`` if valence >= 0.55, ``sad`` if valence < 0.45 and arousal < 0.6 (low
valence with high arousal reads as tense or angry, which is none of the four).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepcuts.exceptions import DataError, DeepcutsError

__all__ = [
    "AUDIO_EXTENSIONS",
    "FEATURE_COLUMNS",
    "PITCH_CLASSES",
    "ExtractionResult",
    "extract_features",
    "extract_file",
    "extract_folder",
    "mood_tags",
]

log = logging.getLogger(__name__)

#: file name endings :func:`extract_folder` picks up (case-insensitive)
AUDIO_EXTENSIONS = (".wav", ".mp3", ".ogg", ".oga", ".flac", ".aiff", ".aif")
#: pitch class names in chroma order (C = 0)
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")

_SPECTRAL = ("rms", "centroid", "rolloff", "bandwidth", "zcr")
#: numeric feature columns, in output order
FEATURE_COLUMNS: tuple[str, ...] = (
    *(f"mfcc{k}_{s}" for k in range(1, 21) for s in ("mean", "std")),
    "tempo",
    "beat_strength",
    *(f"{f}_{s}" for f in _SPECTRAL for s in ("mean", "std")),
    "loudness_db",
    *(f"chroma_{p}" for p in PITCH_CLASSES),
    "key",
    "mode",
    "key_strength",
    "valence",
    "arousal",
)
#: columns that describe the file rather than its sound
_META_COLUMNS = ("path", "file", "size", "mtime_ns", "duration_s")

# Temperley (1999) "Kostka-Payne" key profiles, tonic first. Unlike Krumhansl-Kessler's, they
# put a bare major triad in its own major key (K-K prefers the relative minor of the third).
_MAJOR_PROFILE = np.array([5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0])
_MINOR_PROFILE = np.array([5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0])

_MIN_SECONDS = 0.5


def _librosa():
    try:
        import librosa
    except ImportError:  # pragma: no cover - depends on the environment
        raise DeepcutsError(
            "audio feature extraction needs librosa and soundfile; install them with "
            "pip install 'deepcuts[audio]'"
        ) from None
    return librosa


# ---------------------------------------------------------------------------------- one signal
def extract_features(y: np.ndarray, sr: int, *, n_fft: int = 2048, hop_length: int = 512) -> dict:
    """Content features of one mono signal.

    Parameters
    ----------
    y : ndarray of shape (n_samples,)
        Mono audio, float, roughly in [-1, 1].
    sr : int
        Sample rate in Hz.
    n_fft, hop_length : int, default=2048, 512
        STFT frame and hop size in samples.

    Returns
    -------
    dict
        One value per name in :data:`FEATURE_COLUMNS` plus ``moods`` (``;``-joined tags) and
        ``duration_s``. ``key`` is the tonic's pitch class (0 = C), ``mode`` 1 for major and 0 for
        minor, ``key_strength`` the correlation of the chroma means with the best key profile,
        ``beat_strength`` the mean onset strength at the tracked beats divided by the mean onset
        strength over all frames (about 1 when there is no steady pulse), ``loudness_db`` the
        RMS level in dBFS.

    Raises
    ------
    DeepcutsError
        If the signal is shorter than 0.5 s, silent or not finite.

    Examples
    --------
    >>> sr = 22050
    >>> t = np.arange(2 * sr) / sr
    >>> f = extract_features(0.5 * np.sin(2 * np.pi * 440.0 * t), sr)
    >>> PITCH_CLASSES[int(np.argmax([f[f"chroma_{p}"] for p in PITCH_CLASSES]))]
    'A'
    """
    librosa = _librosa()
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise DeepcutsError(f"expected a mono signal of shape (n_samples,), got shape {y.shape}")
    if len(y) < _MIN_SECONDS * sr:
        raise DeepcutsError(f"audio is too short ({len(y) / sr:.2f} s); need at least 0.5 s")
    if not np.all(np.isfinite(y)):
        raise DeepcutsError("audio contains NaN or infinite samples")
    if float(np.max(np.abs(y))) < 1e-5:
        raise DeepcutsError("audio is silent (peak amplitude below 1e-5)")

    # one magnitude STFT shared by the spectral, chroma and MFCC features
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=hop_length))
    power = S**2
    out: dict = {}
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_fft=n_fft, hop_length=hop_length)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel), n_mfcc=20)
    for k in range(20):
        out[f"mfcc{k + 1}_mean"] = float(mfcc[k].mean())
        out[f"mfcc{k + 1}_std"] = float(mfcc[k].std())

    oenv = librosa.onset.onset_strength(S=librosa.power_to_db(mel), sr=sr, hop_length=hop_length)
    tempo, beats = librosa.beat.beat_track(onset_envelope=oenv, sr=sr, hop_length=hop_length)
    out["tempo"] = float(np.atleast_1d(tempo)[0])
    mean_onset = float(oenv.mean())
    at_beats = float(oenv[beats].mean()) if len(beats) else 0.0
    out["beat_strength"] = at_beats / mean_onset if mean_onset > 0 else 0.0

    frames = {
        "rms": librosa.feature.rms(S=S, frame_length=n_fft, hop_length=hop_length)[0],
        "centroid": librosa.feature.spectral_centroid(S=S, sr=sr)[0],
        "rolloff": librosa.feature.spectral_rolloff(S=S, sr=sr)[0],
        "bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=sr)[0],
        "zcr": librosa.feature.zero_crossing_rate(y, frame_length=n_fft, hop_length=hop_length)[0],
    }
    for name, v in frames.items():
        out[f"{name}_mean"] = float(v.mean())
        out[f"{name}_std"] = float(v.std())
    out["loudness_db"] = float(10.0 * np.log10(np.mean(frames["rms"] ** 2) + 1e-12))

    chroma = librosa.feature.chroma_stft(S=power, sr=sr, n_fft=n_fft, hop_length=hop_length)
    cmean = chroma.mean(axis=1)
    for p, v in zip(PITCH_CLASSES, cmean):
        out[f"chroma_{p}"] = float(v)
    key, mode, strength = _key_mode(cmean)
    out["key"], out["mode"], out["key_strength"] = key, mode, strength
    valence, arousal, tags = mood_tags(out)
    out["valence"], out["arousal"] = valence, arousal
    out["moods"] = ";".join(tags)
    out["duration_s"] = len(y) / sr
    return out


def _key_mode(chroma_mean: np.ndarray) -> tuple[int, int, float]:
    """Key (0-11), mode (1 major / 0 minor) and correlation of the best of 24 key profiles."""
    c = np.asarray(chroma_mean, np.float64)
    if c.std() == 0:
        return 0, 0, 0.0
    # correlation of the chroma vector with each of the 12 rotations of both profiles
    best = (-2.0, 0, 0)
    for mode, prof in ((1, _MAJOR_PROFILE), (0, _MINOR_PROFILE)):
        for tonic in range(12):
            r = float(np.corrcoef(c, np.roll(prof, tonic))[0, 1])
            if r > best[0]:
                best = (r, tonic, mode)
    return best[1], best[2], best[0]


def mood_tags(features) -> tuple[float, float, list[str]]:
    """Valence, arousal and mood tags from ``mode``, ``centroid_mean``, ``tempo``, ``loudness_db``.

    The formulas and thresholds are in the module docstring.

    Parameters
    ----------
    features : mapping
        Needs the keys ``mode``, ``centroid_mean``, ``tempo`` and ``loudness_db``.

    Returns
    -------
    valence, arousal : float in [0, 1]
    tags : list of str, from ("happy", "sad", "energetic", "calm")

    Examples
    --------
    >>> v, a, tags = mood_tags({"mode": 1, "centroid_mean": 3000, "tempo": 150, "loudness_db": -8})
    >>> round(v, 3), round(a, 3), tags
    (0.938, 0.9, ['happy', 'energetic'])
    >>> mood_tags({"mode": 0, "centroid_mean": 900, "tempo": 65, "loudness_db": -35})[2]
    ['sad', 'calm']
    """

    def clip(x):
        return float(min(max(x, 0.0), 1.0))

    brightness = clip((features["centroid_mean"] - 1000.0) / 2000.0)
    pace = clip((features["tempo"] - 60.0) / 120.0)
    energy = clip((features["loudness_db"] + 40.0) / 30.0)
    valence = 0.5 * float(features["mode"]) + 0.25 * brightness + 0.25 * pace
    arousal = 0.6 * energy + 0.4 * pace
    tags = []
    if valence >= 0.55:
        tags.append("happy")
    elif valence < 0.45 and arousal < 0.6:
        tags.append("sad")
    if arousal >= 0.6:
        tags.append("energetic")
    elif arousal < 0.4:
        tags.append("calm")
    return valence, arousal, tags


# ---------------------------------------------------------------------------------- one file
def _load(path, sr: int, duration: float | None, offset: float):
    librosa = _librosa()
    with warnings.catch_warnings():
        # librosa warns before falling back from soundfile to audioread; the failure (if any)
        # is reported by the caller
        warnings.simplefilter("ignore")
        y, sr = librosa.load(path, sr=sr, mono=True, duration=duration, offset=offset)
    return y, sr


def extract_file(
    path, *, sr: int = 22050, duration: float | None = None, offset: float = 0.0
) -> dict:
    """Decode one audio file (resampled to ``sr``, mono) and return :func:`extract_features`.

    Parameters
    ----------
    path : str or Path
        A wav, mp3, ogg or flac file (anything libsndfile or audioread can decode).
    sr : int, default=22050
        Sample rate to analyse at.
    duration : float, optional
        Analyse at most this many seconds (from ``offset``); default the whole file.
    offset : float, default=0.0
        Start time in seconds.

    Raises
    ------
    DataError
        If the file is missing, cannot be decoded, or holds no usable audio.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError("audio file not found; check the path", path=p)
    try:
        y, sr = _load(p, sr, duration, offset)
    except Exception as e:  # decoders raise many unrelated types
        raise DataError(
            f"cannot decode audio ({type(e).__name__}: {str(e).strip() or 'no message'}); "
            "is it a valid wav/mp3/ogg/flac file?",
            path=p,
        ) from None
    try:
        return extract_features(y, sr)
    except DeepcutsError as e:
        raise DataError(str(e), path=p) from None


# ---------------------------------------------------------------------------------- batches
@dataclass(frozen=True)
class ExtractionResult:
    """Result of :func:`extract_folder`.

    Attributes
    ----------
    features : DataFrame
        One row per decoded file: ``path``, ``file`` (path relative to the folder), ``size``,
        ``mtime_ns``, ``duration_s``, every column of :data:`FEATURE_COLUMNS` and ``moods``;
        sorted by ``file``.
    failed : DataFrame
        Columns ``path``, ``file``, ``error``: files that were skipped.
    n_cached : int
        Rows taken from the cache instead of being extracted again.
    seconds : float
        Wall-clock time of the run.
    """

    features: pd.DataFrame
    failed: pd.DataFrame
    n_cached: int
    seconds: float


def _find_audio(folder: Path, extensions: Iterable[str], recursive: bool) -> list[Path]:
    ext = tuple(e.lower() for e in extensions)
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in ext)


def _worker(path: str, sr: int, duration, offset) -> tuple[str, dict | None, str | None]:
    try:
        return path, extract_file(path, sr=sr, duration=duration, offset=offset), None
    except Exception as e:  # report every failure, never stop the batch
        return path, None, str(e)


def _init_worker() -> None:
    # one thread per process: the pool already uses every requested core
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def _read_cache(cache: Path) -> pd.DataFrame:
    if not cache.exists():
        return pd.DataFrame()
    try:
        df = pd.read_parquet(cache)
    except Exception as e:
        raise DataError(
            f"cannot read the feature cache ({e}); delete it to start over", path=cache
        ) from None
    missing = {"path", "size", "mtime_ns"} - set(df.columns)
    if missing:
        raise DataError(
            f"not a deepcuts feature cache (missing columns {sorted(missing)}); delete it",
            path=cache,
        )
    return df


def _write_cache(cache: Path, rows: list[dict]) -> None:
    import io

    from deepcuts._fileio import atomic_write_bytes

    buf = io.BytesIO()
    pd.DataFrame(rows).to_parquet(buf, index=False)
    atomic_write_bytes(cache, buf.getvalue())


def extract_folder(
    folder,
    *,
    n_jobs: int = 1,
    cache=None,
    sr: int = 22050,
    duration: float | None = None,
    offset: float = 0.0,
    extensions: Iterable[str] = AUDIO_EXTENSIONS,
    recursive: bool = True,
    checkpoint_every: int = 20,
    show_progress: bool = False,
) -> ExtractionResult:
    """Extract features of every audio file under ``folder``, in parallel, cached and resumable.

    Parameters
    ----------
    folder : str or Path
        Folder to scan for files ending in one of ``extensions``.
    n_jobs : int, default=1
        Worker processes; 1 runs in this process, -1 uses every CPU.
    cache : str or Path, optional
        Parquet file holding one row per extracted file, keyed by (path, size, mtime). Files
        whose key is in the cache are not decoded again; the cache is rewritten atomically
        every ``checkpoint_every`` new files and at the end, so an interrupted run resumes where
        it stopped.
    sr, duration, offset
        Passed to :func:`extract_file`.
    recursive : bool, default=True
        Also scan sub-folders.
    show_progress : bool, default=False
        Show a tqdm progress bar.

    Returns
    -------
    ExtractionResult
        ``features`` for decoded files and ``failed`` (path, error) for the rest; a file that
        cannot be decoded is logged as a warning and skipped, the batch goes on.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder; pass the folder that holds the audio files", path=folder)
    if n_jobs == -1:
        n_jobs = os.cpu_count() or 1
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise DeepcutsError(f"n_jobs must be a positive integer or -1, got {n_jobs!r}")
    if checkpoint_every < 1:
        raise DeepcutsError(f"checkpoint_every must be >= 1, got {checkpoint_every!r}")
    t0 = time.perf_counter()
    files = _find_audio(folder, extensions, recursive)
    keys = {}
    for p in files:
        st = p.stat()
        keys[str(p.resolve())] = (int(st.st_size), int(st.st_mtime_ns))

    cache_path = None if cache is None else Path(cache)
    done: dict[str, dict] = {}
    if cache_path is not None:
        for row in _read_cache(cache_path).to_dict("records"):
            if keys.get(row["path"]) == (int(row["size"]), int(row["mtime_ns"])):
                done[row["path"]] = row
    n_cached = len(done)
    todo = [p for p in keys if p not in done]
    log.info(
        "%d audio files in %s: %d cached, %d to extract", len(keys), folder, n_cached, len(todo)
    )

    failed: list[dict] = []
    since_checkpoint = 0

    def record(path, feats, err):
        nonlocal since_checkpoint
        if feats is None:
            log.warning("skipped %s: %s", path, err)
            failed.append({"path": path, "error": err})
            return
        size, mtime = keys[path]
        done[path] = {"path": path, "size": size, "mtime_ns": mtime, **feats}
        since_checkpoint += 1
        if cache_path is not None and since_checkpoint >= checkpoint_every:
            _write_cache(cache_path, list(done.values()))
            since_checkpoint = 0

    bar = None
    if show_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="audio features", unit="file")
    try:
        if n_jobs == 1 or len(todo) <= 1:
            for path in todo:
                record(*_worker(path, sr, duration, offset))
                if bar is not None:
                    bar.update(1)
        else:
            import multiprocessing as mp

            # spawn, not fork: forking a process that already runs numba / BLAS threads can hang
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(
                max_workers=min(n_jobs, len(todo)), mp_context=ctx, initializer=_init_worker
            ) as pool:
                futures = [pool.submit(_worker, p, sr, duration, offset) for p in todo]
                for fut in as_completed(futures):
                    record(*fut.result())
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if cache_path is not None and since_checkpoint:
            _write_cache(cache_path, list(done.values()))

    if done:
        features = pd.DataFrame(list(done.values()))
        features.insert(1, "file", [_rel(p, folder) for p in features["path"]])
        cols = ["path", "file", "size", "mtime_ns", "duration_s", *FEATURE_COLUMNS, "moods"]
        features = features[cols].sort_values("file", kind="stable").reset_index(drop=True)
    else:
        features = pd.DataFrame(
            columns=["path", "file", "size", "mtime_ns", "duration_s", *FEATURE_COLUMNS, "moods"]
        )
    fail = pd.DataFrame(failed, columns=["path", "error"])
    fail.insert(1, "file", [_rel(p, folder) for p in fail["path"]])
    fail = fail.sort_values("file", kind="stable").reset_index(drop=True)
    return ExtractionResult(features, fail, n_cached, time.perf_counter() - t0)


def _rel(path: str, folder: Path) -> str:
    try:
        return str(Path(path).relative_to(folder.resolve()))
    except ValueError:
        return path
