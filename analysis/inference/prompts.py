"""Turns an analysis into what the engine is asked: instructions, media, then the question.

The order matters: media come before the question, so two questions about the same media
share every token up to the question, and the engine can reuse the evaluated media prefix
(cache.py) for the second one.
"""

from __future__ import annotations

from analysis.inference import structured
from analysis.inference.types import EngineError, MediaInput, Request

SYSTEM_PROMPT = (
    "You are an assistant helping a professional review the material in a case. "
    "Answer precisely and say when you are not sure."
)
# Told only when media come with the question, so that the model cites what it saw.
MEDIA_PROMPT = (
    "The material follows. Video frames and audio segments are marked [hh:mm:ss] with their "
    "time in the recording, document pages [page N]: cite them that way."
)


def user_content(question: str, media_text: str = "") -> str:
    # The system prompt is folded into the user turn: Gemma chat templates have no system role.
    if not media_text:
        return f"{SYSTEM_PROMPT}\n\n{question}"
    return f"{SYSTEM_PROMPT} {MEDIA_PROMPT}\n\n{media_text}\n\n{question}"


def question_text(question: str, schema: dict | None) -> str:
    return question + (structured.instructions(schema) if schema else "")


def thread_question(question: str, turns) -> str:
    """A follow-up carries the conversation so far after the media, before its question:
    the media prefix stays the same as the first turn's, so the cache serves it."""
    if not turns:
        return question
    lines = ["Earlier in this conversation:"]
    for turn in turns:
        lines += [f"Question: {turn.question}", f"Answer: {turn.answer.strip() or '(none)'}"]
    return "\n".join(lines) + f"\n\nFollow-up question: {question}"


def build_request(analysis, paths: dict | None = None) -> Request:
    """Question (with the thread's earlier turns), media, answer schema, sampler — and, for
    a reproduction, the original's record. `paths`: the verified local copy of each item
    by id (what the pipeline fetched); without it, where the filesystem store keeps them."""
    original = analysis.reproduced_from if analysis.reproduced_from_id else None
    return Request(
        question=thread_question(analysis.question, analysis.turns()),
        media=media_inputs(analysis, paths or {}),
        schema=analysis.response_schema,
        sampler=analysis.sampler or None,
        replay=original.record if original is not None and original.record else None,
    )


def media_inputs(analysis, paths: dict | None = None) -> list[MediaInput]:
    """The analysis' media items, oldest first (the order is part of the prompt).

    An item deleted or flagged since the question was asked fails the job with the reason:
    answering without it would answer a different question.
    """
    items = []
    for asset in analysis.media.order_by("created_at", "pk"):
        if asset.hash_mismatch:
            raise EngineError(f'"{asset.filename}" failed its integrity check: not analysed.')
        if not asset.is_ready:
            raise EngineError(f'"{asset.filename}" is {asset.status}: it cannot be analysed.')
        items.append(media_input(asset, (paths or {}).get(asset.pk)))
    return items


def media_input(asset, path=None) -> MediaInput:
    from analysis.media import storage

    return MediaInput(
        id=str(asset.pk),
        kind=asset.kind,
        path=path or storage.original_path(asset.case_id, asset.pk),
        sha256=asset.sha256,
        name=asset.filename,
        mime=asset.mime,
    )
