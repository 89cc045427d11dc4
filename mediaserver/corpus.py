"""Reading the labelled corpus: MANIFEST.tsv rows and 8 kHz PCM16 WAV files.

The corpus belongs to ../shared (or a folder the user names); nothing here
copies it.
"""

from __future__ import annotations

import csv
import os
import wave
from pathlib import Path

import msgspec
import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE = 8000


class CorpusEntry(msgspec.Struct, frozen=True, kw_only=True):
    path: Path
    label: str  # machine, human, speech, noise, tone
    beep_onset_s: float | None
    duration_s: float
    notes: str = ""

    @property
    def name(self) -> str:
        return self.path.name


def default_corpus_dir() -> Path:
    """CALLWRIGHT_CORPUS, else ../shared/corpus beside the repository."""
    env = os.environ.get("CALLWRIGHT_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared" / "corpus"


def read_wav(path: Path) -> NDArray[np.int16]:
    """Read a mono 16-bit WAV; it must be 8 kHz."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise ValueError(f"{path}: need mono 16-bit PCM")
        if w.getframerate() != SAMPLE_RATE:
            raise ValueError(f"{path}: need 8000 Hz, got {w.getframerate()}")
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)


def load_manifest(folder: Path | None = None) -> list[CorpusEntry]:
    """The corpus rows, or every WAV of a plain folder labelled by its subfolder."""
    folder = folder or default_corpus_dir()
    manifest = folder / "MANIFEST.tsv"
    if not manifest.is_file():
        return [
            CorpusEntry(
                path=p,
                label=p.parent.name if p.parent != folder else "unknown",
                beep_onset_s=None,
                duration_s=0.0,
            )
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() == ".wav"
        ]
    entries = []
    with manifest.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            onset = row.get("beep_onset_s") or ""
            entries.append(
                CorpusEntry(
                    path=folder / row["file"],
                    label=row["label"],
                    beep_onset_s=float(onset) if onset else None,
                    duration_s=float(row.get("duration_s") or 0.0),
                    notes=row.get("notes", ""),
                )
            )
    return entries
