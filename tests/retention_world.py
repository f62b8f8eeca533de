"""Shared by the retention tests: items with real files, answers, policies, and the clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import time_machine
from django.utils import timezone

from analysis import audit, retention_purge
from analysis.inference.cache import Entry, get_cache
from analysis.media import storage
from analysis.models import Analysis, AnalysisChunk, AuditEvent, MediaAsset, RetentionPolicy
from tests.media_api import make_asset
from tests.media_samples import image

T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def at(moment: datetime):
    """The clock stands still at `moment` (time-machine) for the block."""
    return time_machine.travel(moment, tick=False)


def days(n: float) -> timedelta:
    return timedelta(days=n)


def policy(case=None, **rules) -> RetentionPolicy:
    row, _ = RetentionPolicy.objects.update_or_create(case=case, defaults=rules)
    return row


def item(case, user, n: int = 0) -> MediaAsset:
    """A processed PNG (original, thumbnail) with a prefix-cache entry naming its hash."""
    asset = make_asset(case, user, image("png", color=(n % 250, 40, 40)), f"scene-{n}.png")
    cache = get_cache()
    entry = Entry(b"kv" * 8, np.arange(4, dtype=np.intc), [asset.sha256])
    cache.put(f"k{asset.sha256[:20]}", entry)
    cache.flush()
    return asset


def answer(case, user, asset=None, text: str = "A red scene.") -> Analysis:
    analysis = Analysis.objects.create(
        case=case, created_by=user, question="What is shown?", status="succeeded",
        answer=text, finished_at=timezone.now(), record={"prompt": "What is shown? secret"},
    )  # fmt: skip
    AnalysisChunk.objects.create(analysis=analysis, seq=1, text=text)
    audit.record(AuditEvent.Action.ANALYSIS_ASKED, case=case, actor=user, target=analysis,
                 details={"question": analysis.question})  # fmt: skip
    if asset is not None:
        analysis.media.add(asset)
    return analysis


def close(case) -> None:
    case.transition("close")


def purge():
    return retention_purge.run(trigger="test")


def files_of(asset: MediaAsset) -> list:
    return storage.item_files(asset.case_id, asset.id)


def cached(sha256: str) -> bool:
    return any(sha256 in path.read_text() for path in get_cache().directory.glob("*.json"))


def chains_ok() -> bool:
    return all(result.ok for result in audit.verify_all())
