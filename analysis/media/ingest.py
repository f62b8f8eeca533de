"""Hashing files in constant memory (uploads resumed elsewhere, integrity checks)."""

from __future__ import annotations

import hashlib
from pathlib import Path

BLOCK = 1024 * 1024  # read and write in 1 MiB blocks: constant memory whatever the size


def hash_file(path: Path, hasher=None) -> str:
    hasher = hasher or hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(BLOCK):
            hasher.update(block)
    return hasher.hexdigest()
