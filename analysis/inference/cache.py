"""The media prefix cache: evaluated media (KV state) kept in RAM and on disk.

Prompts put the media first and the question last, so a follow-up question about the same
media shares every token up to the last media chunk. That prefix — often thousands of image
and audio tokens whose encoding dominates the time to first token — is saved once (KV cells
of sequence 0, see mtmd.save_sequence) and restored for the next question.

Keyed by the model (file hashes and context settings) and the exact prefix: its text tokens
and the bitmap ids, which name each media item's SHA-256 and the frame/segment/page plan.
Both tiers are size-bounded, least recently used first. Every entry has a small index file
naming its media hashes; `purge_media(sha256)` deletes the entries of a deleted media item,
and a process serves a RAM entry only while its index file still exists, so a purge done by
the web process also retires the copies in every worker's memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from analysis import metrics

log = logging.getLogger(__name__)
MB = 1 << 20


@dataclass
class Entry:
    state: bytes
    input_ids: np.ndarray  # the prefix's token ids (placeholders at media positions)
    media: list[str]  # SHA-256 of the media items in the prefix

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def size(self) -> int:
        return len(self.state) + self.input_ids.nbytes


def prefix_key(model_key: str, parts: list) -> str:
    """parts: each text chunk's tokens and each media chunk's bitmap id, in order."""
    blob = json.dumps({"model": model_key, "prefix": parts}, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class PrefixCache:
    def __init__(self, directory: Path, ram_bytes: int, disk_bytes: int) -> None:
        self.directory = directory
        self.ram_bytes, self.disk_bytes = ram_bytes, disk_bytes
        self._ram: OrderedDict[str, Entry] = OrderedDict()
        self._pending: list[tuple[str, Entry]] = []
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.ram_bytes > 0 or self.disk_bytes > 0

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.directory / f"{key}.json", self.directory / f"{key}.state"

    def get(self, key: str) -> Entry | None:
        index, state = self._paths(key)
        with self._lock:
            entry = self._ram.get(key)
            if entry is not None and not index.exists():  # purged by another process
                del self._ram[key]
                entry = None
            if entry is not None:
                self._ram.move_to_end(key)
                metrics.count_prefix_lookup("ram")
                return entry
        entry = self._read(index, state)
        if entry is not None:
            self._remember(key, entry)
        metrics.count_prefix_lookup("miss" if entry is None else "disk")
        return entry

    def put(self, key: str, entry: Entry) -> None:
        """Keep in RAM now; the disk copy is written by flush(), after the answer."""
        if not self.enabled:
            return
        self._write_index(key, entry)
        self._remember(key, entry)
        self._pending.append((key, entry))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for key, entry in pending:
            if 0 < entry.size <= self.disk_bytes:
                self._write_state(key, entry)
        if pending:
            self._evict_disk()

    def _remember(self, key: str, entry: Entry) -> None:
        if entry.size > self.ram_bytes:
            return
        with self._lock:
            self._ram[key] = entry
            self._ram.move_to_end(key)
            while sum(e.size for e in self._ram.values()) > self.ram_bytes:
                self._ram.popitem(last=False)

    def _read(self, index: Path, state: Path) -> Entry | None:
        try:
            meta = json.loads(index.read_text())
            blob = state.read_bytes()
        except (OSError, ValueError):
            return None
        split = meta["ids_bytes"]
        os.utime(state)  # least recently *used* is evicted first
        ids = np.frombuffer(blob[:split], dtype=np.intc).copy()
        return Entry(state=blob[split:], input_ids=ids, media=meta["media"])

    def _write_index(self, key: str, entry: Entry) -> None:
        meta = {
            "media": entry.media,
            "n_tokens": entry.n_tokens,
            "ids_bytes": entry.input_ids.nbytes,
        }
        _atomic_write(self._paths(key)[0], json.dumps(meta).encode())

    def _write_state(self, key: str, entry: Entry) -> None:
        ids = np.ascontiguousarray(entry.input_ids, dtype=np.intc).tobytes()
        _atomic_write(self._paths(key)[1], ids + entry.state)

    def _evict_disk(self) -> None:
        states = sorted(self.directory.glob("*.state"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in states)
        for path in states:
            if total <= self.disk_bytes:
                break
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)  # RAM copies go with it

    # The plan index: which prefix (and which frames, segments, pages) a media plan came to
    # once the budget had cut it, so a follow-up finds its prefix without decoding any media.

    def plan(self, signature: str) -> dict | None:
        try:
            return json.loads((self.directory / "plans" / f"{signature}.json").read_text())
        except (OSError, ValueError):
            return None

    def remember_plan(self, signature: str, plan: dict) -> None:
        if self.enabled:
            _atomic_write(self.directory / "plans" / f"{signature}.json", json.dumps(plan).encode())

    def purge_media(self, sha256: str) -> int:
        """Delete every entry whose prefix contains this media item; returns how many."""
        for plan in self.directory.glob("plans/*.json"):
            with contextlib.suppress(OSError, ValueError, KeyError):
                if sha256 in json.loads(plan.read_text())["media"]:
                    plan.unlink(missing_ok=True)
        purged = 0
        for index in self.directory.glob("*.json"):
            try:
                media = json.loads(index.read_text())["media"]
            except (OSError, ValueError, KeyError):
                continue
            if sha256 in media:
                index.unlink(missing_ok=True)
                index.with_suffix(".state").unlink(missing_ok=True)
                purged += 1
        with self._lock:
            for key in [k for k, e in self._ram.items() if sha256 in e.media]:
                del self._ram[key]
        return purged

    def clear(self) -> None:
        with self._lock:
            self._ram.clear()
        for pattern in ("*.json", "*.state", "plans/*.json"):
            for path in self.directory.glob(pattern):
                path.unlink(missing_ok=True)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".part") as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


_cache: PrefixCache | None = None


def get_cache() -> PrefixCache:
    """The process' cache, built from settings on first use (tests: reset_cache())."""
    global _cache
    wanted = (
        Path(settings.GEMMA_PREFIX_CACHE_DIR),
        settings.GEMMA_PREFIX_CACHE_RAM_MB * MB,
        settings.GEMMA_PREFIX_CACHE_DISK_MB * MB,
    )
    if _cache is None or (_cache.directory, _cache.ram_bytes, _cache.disk_bytes) != wanted:
        _cache = PrefixCache(*wanted)
    return _cache


def reset_cache() -> None:
    global _cache
    _cache = None


def purge_media(sha256: str) -> int:
    """Call when a media item is deleted: its evaluated prefixes go with it."""
    count = get_cache().purge_media(sha256)
    if count:
        log.info("purged %d cached media prefixes of %s", count, sha256[:12])
    return count
