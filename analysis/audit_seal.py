"""Seals: the head of every chain, appended now and then to a file meant for WORM storage.

Someone who can write to the database can rewrite rows *and* recompute every hash after
them; the chain then verifies on its own. They cannot take back a line already written to
write-once storage, so `audit.verify()` also checks each chain against every head sealed
here: a sealed (seq, hash) must still be the row at that seq.

One line per chain whose head moved since its last seal (the beat task runs `seal()`):
    <UTC time> <chain key> <seq> <head hash>
    2026-05-01T12:00:00.000000Z case:6f1c...-... 42 9b2e...
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from analysis.audit import case_id_of
from analysis.audit_hash import GENESIS, iso_utc
from analysis.models import AuditEvent

log = logging.getLogger(__name__)
# Where copies of the seals go in the object store (one object per seal run).
STORE_PREFIX = "audit-seals/"
# A clock on another web host may run behind this one: look back this far past the last seal
# for chains whose head moved.
CLOCK_MARGIN = timedelta(minutes=10)
_LINE = re.compile(
    r"(?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)"
    r" (?P<chain>\S+) (?P<seq>\d+) (?P<hash>[0-9a-f]{64})"
)


@dataclass(frozen=True)
class Seal:
    at: str
    chain: str
    seq: int
    hash: str

    def line(self) -> str:
        return f"{self.at} {self.chain} {self.seq} {self.hash}\n"


@dataclass
class Seals:
    """A parsed seal file: chain key -> seq -> the seals naming it (normally one)."""

    by_chain: dict[str, dict[int, list[Seal]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    count: int = 0
    latest: str = ""

    def add(self, seal: Seal) -> None:
        self.by_chain.setdefault(seal.chain, {}).setdefault(seal.seq, []).append(seal)
        self.count += 1
        self.latest = max(self.latest, seal.at)

    def for_chain(self, key: str) -> dict[int, list[Seal]]:
        return self.by_chain.get(key, {})

    def chains(self) -> list[str]:
        return list(self.by_chain)

    def last(self, key: str) -> Seal | None:
        sealed = self.for_chain(key)
        return sealed[max(sealed)][-1] if sealed else None


def seal_path() -> Path:
    return Path(settings.AUDIT_SEAL_PATH)


def read_seals(path: Path | str | None = None) -> Seals:
    """Parse the seal file; a missing file is no seals (a fresh install), not an error."""
    path = Path(path) if path else seal_path()
    seals = Seals()
    if not path.exists():
        return seals
    with path.open(encoding="ascii", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            seal = _parse(line.rstrip("\n"))
            if seal is None:
                seals.errors.append(f"{path}:{number}: not a seal line: {line.strip()[:80]!r}")
            else:
                seals.add(seal)
    return seals


def _parse(line: str) -> Seal | None:
    match = _LINE.fullmatch(line)
    if match is None:
        return None
    try:
        case_id_of(match["chain"])
    except ValueError:
        return None
    return Seal(match["at"], match["chain"], int(match["seq"]), match["hash"])


def seal(path: Path | str | None = None) -> list[Seal]:
    """Append the head of every chain that moved since its last seal, then fsync."""
    path = Path(path) if path else seal_path()
    seals = read_seals(path)
    now = iso_utc(timezone.now())
    new = []
    for key, (seq, head) in _moved_heads(seals).items():
        last = seals.last(key)
        if seq and (last is None or (last.seq, last.hash) != (seq, head)):
            new.append(Seal(now, key, seq, head))
    if new:
        data = "".join(seal.line() for seal in new).encode("ascii")
        _append(path, data)
        copy_to_store(data, now)
    return new


def copy_to_store(data: bytes, at: str) -> str | None:
    """The same lines as an object of their own in the object store (MEDIA_STORAGE=s3), under
    a retention lock where the bucket has object lock: a copy nobody, the site included, can
    take back or rewrite. Its key, or None when there is no object store."""
    from analysis.media import stores

    store = stores.current()
    if store.local or not settings.AUDIT_SEAL_TO_STORE:
        return None
    key = f"{STORE_PREFIX}{at}-{uuid.uuid4().hex[:12]}.log"
    try:
        store.put_bytes(
            key, data, lock_mode=settings.AUDIT_SEAL_LOCK_MODE,
            lock_days=settings.AUDIT_SEAL_LOCK_DAYS,
        )  # fmt: skip
    except OSError:
        # The file has the lines; the next seal's object will not repeat them: say so loudly.
        log.exception("audit seals at %s are in %s but not in the object store", at, seal_path())
        return None
    return key


def read_store_seals() -> Seals:
    """Every seal copied to the object store, oldest object first."""
    from analysis.media import stores

    store = stores.current()
    seals = Seals()
    for key in store.keys(STORE_PREFIX):
        with store.open(key) as reader:
            text = reader.read().decode("ascii", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            seal = _parse(line)
            if seal is None:
                seals.errors.append(f"{key}:{number}: not a seal line: {line.strip()[:80]!r}")
            else:
                seals.add(seal)
    return seals


def _moved_heads(seals: Seals) -> dict[str, tuple[int, str]]:
    """The current head of each chain with events since the last seal (all chains at first)."""
    events = AuditEvent.objects.all()
    if seals.latest:
        since = datetime.strptime(seals.latest, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        since -= CLOCK_MARGIN
        events = events.filter(created_at__gte=since)
    case_ids = set(events.values_list("case_id", flat=True).distinct())
    heads = {}
    for case_id in sorted(case_ids, key=lambda c: (c is not None, str(c))):
        row = (
            AuditEvent.objects.filter(case_id=case_id)
            .order_by("-seq")
            .values_list("seq", "hash")
            .first()
        )
        heads[AuditEvent.chain_key_for(case_id)] = row or (0, GENESIS)
    return heads


def _append(path: Path, data: bytes) -> None:
    """O_APPEND (each write lands at the end, whoever else appends), then fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        # A new file's directory entry must be durable too, or a crash could lose the file.
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
