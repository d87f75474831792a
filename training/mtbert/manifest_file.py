"""A bundle's manifest on disk: its file names, reading it and writing it atomically.

Apart from `bundle` (which edits bundles) so that the modules that only add to a bundle, such as
`float16` and `baselines`, read and write it without importing the bundle writer.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

FORMAT_VERSION = 1
MANIFEST, VOCAB, TRUNK, PARITY = "manifest.json", "vocab.txt.gz", "trunk.onnx", "parity.json"


class BundleError(ValueError):
    """A bundle operation that was refused, naming the file and the field."""


def write_json_atomic(path: Path, value: object) -> None:
    """Write then rename, so a crash never leaves a half-written manifest."""
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        json.dump(value, stream, indent=2, ensure_ascii=False)
        stream.write("\n")
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def int8_matmuls(manifest: dict) -> bool:
    """Whether the bundle's trunk runs its weight matmuls in int8 (absent in older bundles: float)."""
    return bool(manifest["trunk"].get("int8Matmuls", False))


def default_pretrained(manifest: dict) -> Path:
    """Where a bundle's checkpoint is when no other is given: ../shared/pretrained/<trunk.pretrained.name>
    beside the repository."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "pretrained" / manifest["trunk"]["pretrained"]["name"]


def read_manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    if not path.is_file():
        raise BundleError(f"{path}: not found")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise BundleError(f"{path}: not valid JSON ({error})") from error
    if manifest.get("formatVersion") != FORMAT_VERSION:
        raise BundleError(f"{path}: formatVersion is {manifest.get('formatVersion')!r}, expected {FORMAT_VERSION}")
    return manifest
