"""On-disk array cache: `.npz` files written atomically, each carrying the key it was built for.

An entry is valid only when its stored key matches the caller's; a missing, corrupt (bad zip or
CRC), partial or stale file reads as a miss, so the caller rebuilds and overwrites it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ecg_platform.errors import EcgPlatformError

KEY_FIELD = "cache_key"
_UMASK = os.umask(0)  # read once (at import, before any loader thread): setting it is the only way
os.umask(_UMASK)
# NumPy parses each array header with ast.literal_eval, and CPython 3.11 (seen here on 3.11.7,
# see CPython gh-106905) can raise a spurious "AST constructor recursion depth mismatch"
# SystemError when threads parse at once: loader threads read entries one at a time (a warm
# 48-record load takes the same 0.29 s, benchmarks/bench_beats.py).
_READ_LOCK = threading.Lock()


def files_digest(paths: Sequence[Path]) -> str:
    """SHA-256 over the names and full contents of `paths`: survives copies, catches any edit."""
    digest = hashlib.sha256()
    for path in paths:
        content = path.read_bytes()
        digest.update(f"{path.name}\0{len(content)}\0".encode())
        digest.update(content)
    return digest.hexdigest()[:16]


def read_entry(path: Path, key: str, fields: Sequence[str]) -> dict[str, np.ndarray] | None:
    """The arrays stored at `path` for `key`, or None on a miss (absent, stale or damaged)."""
    try:
        with _READ_LOCK, np.load(path, allow_pickle=False) as archive:
            if set(archive.files) != {KEY_FIELD, *fields} or str(archive[KEY_FIELD]) != key:
                return None
            return {field: archive[field] for field in fields}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return None


def write_entry(path: Path, key: str, arrays: Mapping[str, np.ndarray]) -> None:
    """Store `arrays` under `key` at `path` (atomically, see `save_npz`)."""
    save_npz(path, {KEY_FIELD: np.array(key), **arrays})


def save_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write an uncompressed `.npz` atomically: a temporary file beside it, then `os.replace`.

    The file gets the modes the umask gives a new file (mkstemp's own 0600 would make a shared
    cache or an export unreadable to colleagues)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"
        )
    except OSError as exc:
        raise EcgPlatformError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "wb") as file:
            np.savez(file, **arrays)
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
