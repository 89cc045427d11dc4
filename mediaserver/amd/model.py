"""The Silero VAD model file: where it lives, its pinned hash, how it gets there.

The file comes from the official `silero-vad` wheel (installed with
`--no-deps`, so torch never arrives) and is copied into `amd_models/` by
`python -m mediaserver.amd.model install`, which `make setup` runs.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import shutil
import sys
from pathlib import Path

from mediaserver.errors import ModelError

MODEL_NAME = "silero_vad.onnx"
# silero-vad 6.2.3, silero_vad/data/silero_vad.onnx (8 kHz and 16 kHz in one graph)
MODEL_SHA256 = "1a153a22f4509e292a94e67d6f9b85e8deb25b4988682b7e174c65279d8788e3"
FETCH_COMMAND = "make setup  (or: python -m mediaserver.amd.model install)"

MODELS_DIR = Path(__file__).resolve().parents[2] / "amd_models"


def default_model_path() -> Path:
    return MODELS_DIR / MODEL_NAME


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_model_path(path: Path | None = None) -> Path:
    """Return the model path after checking it exists and matches the pin.

    Raises:
        ModelError: naming the file and the command that fetches it.
    """
    path = path or default_model_path()
    if not path.is_file():
        raise ModelError(f"VAD model not found at {path}; run: {FETCH_COMMAND}")
    actual = sha256_of(path)
    if actual != MODEL_SHA256:
        raise ModelError(
            f"VAD model at {path} is corrupt (sha256 {actual[:12]}..., expected "
            f"{MODEL_SHA256[:12]}...); run: {FETCH_COMMAND}"
        )
    return path


def _wheel_copy() -> Path:
    try:
        dist = importlib.metadata.distribution("silero-vad")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelError(
            "the silero-vad wheel is not installed; "
            "run: pip install --no-deps silero-vad==6.2.3"
        ) from exc
    return Path(str(dist.locate_file(f"silero_vad/data/{MODEL_NAME}")))


def install(target: Path | None = None) -> Path:
    """Copy the model out of the installed wheel and verify it."""
    target = target or default_model_path()
    if target.is_file() and sha256_of(target) == MODEL_SHA256:
        return target
    source = _wheel_copy()
    if not source.is_file() or sha256_of(source) != MODEL_SHA256:
        raise ModelError(
            f"{source} does not match the pinned sha256; "
            "install silero-vad==6.2.3 with --no-deps"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return verified_model_path(target)


def main(argv: list[str]) -> int:
    if argv[:1] != ["install"]:
        print("usage: python -m mediaserver.amd.model install", file=sys.stderr)
        return 2
    try:
        path = install()
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"VAD model ready: {path} (sha256 {MODEL_SHA256[:12]}...)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
