"""The only door to the channel layer, and the keeper of the token log.

channels_redis is at-most-once: a message to a full channel or across a Redis blip is lost.
So tokens are batched (never one message per token), each batch is written to the database
with a sequence number *before* it is sent, and a browser that missed something asks for
everything after its last sequence number. The WebSocket is a fast path; the log is the truth.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import Max

from analysis.models import Analysis, AnalysisChunk

log = logging.getLogger(__name__)

# How often a running job touches its heartbeat, in seconds (the sweep's stale limit is larger).
HEARTBEAT_EVERY = 5.0


def case_group(case_id) -> str:
    return f"case.{case_id}"


def _send(case_id, message: dict) -> None:
    """Best effort by design: a lost message is recovered from the log on resume."""
    layer = get_channel_layer()
    try:
        async_to_sync(layer.group_send)(case_group(case_id), message)
    except Exception:  # noqa: BLE001 - the stream must never break the job
        log.warning("channel layer send failed for case %s", case_id, exc_info=True)


def status_message(analysis: Analysis) -> dict:
    return {
        "type": "analysis.status",
        "analysis": str(analysis.id),
        "status": analysis.status,
        "error": analysis.error,
    }


def publish_status(analysis: Analysis) -> None:
    _send(analysis.case_id, status_message(analysis))


def media_status_message(asset) -> dict:
    return {
        "type": "media.status",
        "asset": str(asset.id),
        "status": asset.status,
        "reason": asset.status_reason,
        "hash_mismatch": asset.hash_mismatch,
    }


def publish_media_status(asset) -> None:
    """An item changed (processed, failed, deleted, hash mismatch): case pages re-fetch its card."""
    _send(asset.case_id, media_status_message(asset))


def revoke_access(case_id, user_id: int) -> None:
    """Close a user's open sockets on a case (membership removed)."""
    _send(case_id, {"type": "access.revoked", "user": user_id})


def chunks_after(analysis: Analysis, after: int) -> list[dict]:
    """The token messages a client missed, in order, straight from the log."""
    rows = analysis.chunks.filter(seq__gt=after).order_by("seq").values_list("seq", "text")
    return [_tokens_message(analysis.id, seq, text) for seq, text in rows]


def _tokens_message(analysis_id, seq: int, text: str) -> dict:
    return {"type": "analysis.tokens", "analysis": str(analysis_id), "seq": seq, "text": text}


class TokenStream:
    """Collects tokens and flushes them as one log row + one message every `interval` s."""

    def __init__(
        self,
        analysis: Analysis,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.analysis = analysis
        self.interval = settings.STREAM_FLUSH_INTERVAL if interval is None else interval
        self.clock = clock
        self.seq = analysis.chunks.aggregate(last=Max("seq"))["last"] or 0
        self._buffer: list[str] = []
        self._last_flush = clock()
        self._last_heartbeat = self._last_flush

    def push(self, token: str) -> None:
        self._buffer.append(token)
        if self.clock() - self._last_flush >= self.interval:
            self.flush()

    def flush(self) -> None:
        now = self.clock()
        self._last_flush = now
        text = "".join(self._buffer)
        if not text:
            return
        self._buffer.clear()
        self.seq += 1
        AnalysisChunk.objects.create(analysis=self.analysis, seq=self.seq, text=text)
        _send(self.analysis.case_id, _tokens_message(self.analysis.id, self.seq, text))
        if now - self._last_heartbeat >= HEARTBEAT_EVERY:
            self._last_heartbeat = now
            self.analysis.heartbeat()
