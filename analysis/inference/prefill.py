"""From sections and a question to an evaluated prompt: count, fit, tokenize, evaluate.

The prompt is counted before anything is evaluated (mtmd tokenizes media into chunks whose
token counts are known before encoding), cut to the context budget, and then evaluated —
restoring the media prefix from the cache when the same media were evaluated before.

A follow-up about the same media takes a shorter road: the plan index (cache.py) remembers
what the budget kept of that plan and which prefix it became, so the media are neither
decoded nor tokenized again; only the question after them is.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field

from analysis.inference import budget as budgets
from analysis.inference import mtmd, prompts
from analysis.inference.cache import Entry, PrefixCache, prefix_key
from analysis.inference.plan import Section
from analysis.inference.types import EngineError, PromptTooLong


@dataclass
class Prepared:
    text: str  # the rendered prompt, one marker per bitmap
    n_tokens: int
    reduced: bool
    media_tokens: int = 0
    chunks: dict[str, int] = field(default_factory=lambda: {"image": 0, "audio": 0})
    tokens: list[int] | None = None  # text-only prompts
    tokenized: mtmd.Tokenized | None = None  # prompts with bitmaps
    bitmaps: mtmd.Bitmaps | None = None
    cached: Entry | None = None  # the media prefix, when the plan index knew it
    suffix: list[int] | None = None  # with `cached`: the tokens after the prefix
    signature: str = ""  # of the plan before the budget cut it

    def close(self) -> None:
        for owned in (self.tokenized, self.bitmaps):
            if owned is not None:
                owned.close()


@dataclass
class Prefill:
    cache: str  # "hit" | "miss" | "off"
    prefix_tokens: int = 0
    media_chunks_evaluated: int = 0
    seconds: dict[str, float] = field(default_factory=dict)


def prepare(
    engine, question: str, sections: list[Section], budget: budgets.Budget, cache: PrefixCache
) -> Prepared:
    """Tokenize the prompt, and when the media overflow their room, cut them and again."""
    units = [unit for section in sections for unit in section.units]
    for unit in units:
        unit.cost = len(engine.llm.tokenize(unit.label.encode(), add_bos=False, special=False))
    signature = ""
    if cache.enabled and any(unit.kind != "text" for unit in units):
        signature = _signature(engine, question, sections, budget)
        if known := _from_plan_index(engine, question, sections, budget, cache, signature):
            return known
    for section in sections:
        section.load()
    prepared = _tokenize(engine, question, sections, reduced=False)
    prepared.signature = signature
    if prepared.tokenized is not None:
        # mtmd counted each bitmap's tokens while tokenizing, before encoding anything.
        counts = {c.media_id: c.n_tokens for c in prepared.tokenized.chunks if c.media_id}
        for unit in units:
            unit.cost += counts.get(unit.bitmap_id, 0)
    room = budget.media
    for _ in range(4):  # labels and titles are estimates: correct by the overshoot, rarely twice
        over = prepared.n_tokens + budget.answer - budget.n_ctx
        media_fit = sum(section.cost for section in sections) <= room
        if over <= 0 and media_fit:
            return prepared
        prepared.close()
        if media_fit:  # the media kept to their room, but titles and labels did not
            room -= over
        # Media are cut to their room even when the whole would fit: then a longer follow-up
        # question gets the same frames, and so the same cached media prefix.
        budgets.fit(sections, room)
        prepared = _tokenize(engine, question, sections, reduced=True)
        prepared.signature = signature
    prepared.close()
    raise PromptTooLong("The prompt does not fit the model's context.")


def _render(engine, question: str, sections: list[Section]) -> tuple[str, bool]:
    marker = mtmd.marker()
    media_text = "\n\n".join(s.text(marker) for s in sections if s.live_units())
    return engine.render(prompts.user_content(question, media_text))


def _signature(engine, question: str, sections: list[Section], budget) -> str:
    """The plan before any cut: model, budget and every unit's label and bitmap id (which
    name the media hash, the timestamp or page and the decoding size)."""
    text, _ = _render(engine, question, sections)
    plan = [[u.bitmap_id for u in s.units] for s in sections]
    blob = [engine.model_key, budget.n_ctx, budget.media, text.rsplit(mtmd.marker(), 1)[0], plan]
    return hashlib.sha256(json.dumps(blob).encode()).hexdigest()


def _from_plan_index(engine, question, sections, budget, cache, signature) -> Prepared | None:
    known = cache.plan(signature)
    entry = cache.get(known["prefix"]) if known else None
    if entry is None:
        return None
    for section, selection in zip(sections, known["selections"], strict=True):
        section.select(selection)
    text, _ = _render(engine, question, sections)
    tail = text.rsplit(mtmd.marker(), 1)[1].encode()
    suffix = known["head"] + engine.llm.tokenize(tail, add_bos=False, special=True)
    n_tokens = entry.n_tokens + len(suffix)
    if n_tokens + budget.answer > budget.n_ctx:  # a question longer than its allowance
        for section in sections:
            section.select({"kept": section.groups, "dropped": []})
        return None
    return Prepared(
        text, n_tokens, known["reduced"], known["media_tokens"], known["chunks"],
        cached=entry, suffix=suffix, signature=signature,
    )  # fmt: skip


class _bitmaps(mtmd.Bitmaps):
    def __init__(self, units) -> None:
        super().__init__()
        for unit in units:
            if unit.kind == "image":
                self.add_image(unit.payload, unit.bitmap_id)
            elif unit.kind == "audio":
                self.add_audio(unit.payload, unit.bitmap_id)


def _tokenize(engine, question: str, sections: list[Section], reduced: bool) -> Prepared:
    text, add_special = _render(engine, question, sections)
    live = [unit for section in sections for unit in section.live_units()]
    if not any(unit.kind != "text" for unit in live):
        tokens = engine.llm.tokenize(text.encode(), add_bos=add_special, special=True)
        return Prepared(text, len(tokens), reduced, tokens=tokens)
    bitmaps = _bitmaps(live)
    tokenized = mtmd.Tokenized(engine.projector, text, bitmaps, add_special)
    chunks = tokenized.chunks
    return Prepared(
        text, tokenized.n_tokens, reduced,
        media_tokens=sum(c.n_tokens for c in chunks if c.kind != mtmd.TEXT),
        chunks={
            "image": sum(1 for c in chunks if c.kind == mtmd.IMAGE),
            "audio": sum(1 for c in chunks if c.kind == mtmd.AUDIO),
        },
        tokenized=tokenized, bitmaps=bitmaps,
    )  # fmt: skip


def evaluate(engine, prepared: Prepared, cache: PrefixCache, sections: list[Section]) -> Prefill:
    """Evaluate the prompt so that its last token's logits are ready for sampling."""
    llm = engine.llm
    started = time.perf_counter()
    if prepared.cached is not None:
        mtmd.load_sequence(llm, prepared.cached.state, prepared.cached.input_ids)
        result = Prefill("hit", prefix_tokens=prepared.cached.n_tokens)
        result.seconds["media_prefix"] = time.perf_counter() - started
        llm.eval(prepared.suffix)
    elif prepared.tokenized is None:
        llm.reset()
        llm._ctx.kv_cache_clear()
        llm.eval(prepared.tokens)
        result = Prefill("off")
    else:
        result = _evaluate_chunks(engine, prepared, cache, sections)
        result.seconds["media_prefix"] = time.perf_counter() - started
    result.seconds["prefill"] = time.perf_counter() - started
    return result


def split_at_media(engine, chunks: list[mtmd.Chunk]) -> tuple[str, list[mtmd.Chunk], list[int]]:
    """A tokenized prompt as (cache key, media prefix, suffix tokens): the prefix runs to the
    last media chunk and is what the prefix cache keeps; the text after it is decoded fresh."""
    last_media = max(i for i, c in enumerate(chunks) if c.kind != mtmd.TEXT)
    if chunks[-1].kind != mtmd.TEXT:
        raise EngineError("The prompt must end with text (the chat template's model turn).")
    prefix = chunks[: last_media + 1]
    parts = [c.tokens if c.kind == mtmd.TEXT else c.media_id for c in prefix]
    suffix = [token for chunk in chunks[last_media + 1 :] for token in chunk.tokens]
    return prefix_key(engine.model_key, parts), prefix, suffix


def _evaluate_chunks(engine, prepared: Prepared, cache: PrefixCache, sections) -> Prefill:
    llm = engine.llm
    key, prefix, suffix = split_at_media(engine, prepared.tokenized.chunks)
    entry = cache.get(key) if cache.enabled else None
    if entry is not None:
        mtmd.load_sequence(llm, entry.state, entry.input_ids)
        result = Prefill("hit", prefix_tokens=entry.n_tokens)
    else:
        result = _evaluate_prefix(engine, prefix)
        if cache.enabled:
            media = [section.media.sha256 for section in sections]
            cache.put(
                key, Entry(mtmd.save_sequence(llm), llm.input_ids[: llm.n_tokens].copy(), media)
            )
            result.cache = "miss"
    llm.eval(suffix)
    if cache.enabled and prepared.signature:
        remember_plan(engine, prepared, cache, sections, key, suffix)
    return result


def remember_plan(engine, prepared, cache, sections, key: str, suffix: list[int]) -> None:
    """Index the plan → prefix, with the tokens mtmd put before the question (a media end
    tag): kept only if the suffix really is those tokens + the question's own tokens."""
    tail = prepared.text.rsplit(mtmd.marker(), 1)[1].encode()
    own = engine.llm.tokenize(tail, add_bos=False, special=True)
    if not own or suffix[-len(own) :] != own:
        return
    cache.remember_plan(prepared.signature, {
        "prefix": key, "head": suffix[: -len(own)], "reduced": prepared.reduced,
        "selections": [section.selection() for section in sections],
        "media_tokens": prepared.media_tokens, "chunks": prepared.chunks,
        "media": [section.media.sha256 for section in sections],
    })  # fmt: skip


def _evaluate_prefix(engine, chunks: list[mtmd.Chunk]) -> Prefill:
    llm = engine.llm
    llm.reset()
    llm._ctx.kv_cache_clear()
    result = Prefill("off")
    for chunk in chunks:
        if chunk.kind == mtmd.TEXT:
            llm.eval(chunk.tokens)
        else:
            mtmd.eval_media_chunk(engine.projector, llm, chunk)
            result.media_chunks_evaluated += 1
    result.prefix_tokens = llm.n_tokens
    return result
