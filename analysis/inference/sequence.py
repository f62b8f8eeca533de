"""One question inside the batched engine (batch.py): what it still has to evaluate, how it
samples, and the text it hands back to the thread that asked.

The asking thread (a Celery task thread) plans, tokenizes and looks up the prefix cache; the
engine thread only evaluates and samples. Text goes back through a queue, so the database
writes and channel messages of the token stream never run on the thread that decodes for
everyone.
"""

from __future__ import annotations

import codecs
import queue
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analysis.inference import mtmd
from analysis.inference.cache import Entry, PrefixCache
from analysis.inference.decode import Decoded
from analysis.inference.layout import Layout, Replay
from analysis.inference.prefill import Prefill, Prepared, split_at_media
from analysis.inference.types import Sampler


@dataclass
class Restore:
    """Load a cached media prefix into the sequence before anything else."""

    entry: Entry


@dataclass
class Save:
    """Keep the evaluated prefix (up to the last media chunk) in the prefix cache."""

    key: str
    media: list[str]


@dataclass
class Tokens:
    tokens: list[int]
    done: int = 0  # how many were added to a batch already

    @property
    def left(self) -> int:
        return len(self.tokens) - self.done


@dataclass
class Shared:
    """How the sequence was batched: the evidence that decode steps interleaved."""

    first_step: int | None = None
    last_step: int | None = None
    steps: int = 0  # decode steps that carried a token of this sequence
    shared_steps: int = 0  # ... together with tokens of other sequences
    max_sequences: int = 1  # the most sequences one of its steps carried
    companions: set[int] = field(default_factory=set)  # ids of the sequences it shared with

    def as_dict(self) -> dict:
        return {
            "first_step": self.first_step, "last_step": self.last_step, "steps": self.steps,
            "shared_steps": self.shared_steps, "max_sequences": self.max_sequences,
        }  # fmt: skip


class Sequence:
    def __init__(
        self,
        *,
        number: int,
        feed: list,
        filled: Prefill,
        sampler: Sampler,
        grammar,
        max_tokens: int,
        should_stop: Callable[[], bool] | None,
        solo: bool = False,
        replay: Replay | None = None,
    ) -> None:
        self.number = number  # unique in the process: names the sequence in records
        self.feed = deque(feed)
        self.filled = filled
        self.sampler_spec, self.grammar = sampler, grammar
        self.max_tokens = max_tokens
        self.should_stop = should_stop
        # Runs alone in the batch: a reproduction (of a solo answer, or replaying the layout
        # of a batched one in its original slot, `replay`).
        self.solo = solo or replay is not None
        self.replay = replay
        self.seq_id = -1  # the llama sequence (slot) while admitted
        self.sampler = None  # llama sampler chain, built on the engine thread
        self.positions: list[int] = []  # token ids in the KV (placeholders at media)
        self.pending: int | None = None  # sampled, to be decoded in the next step
        self.out: queue.Queue = queue.Queue()
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.pieces: list[str] = []
        self.n_generated, self.finish, self.first_at = 0, "length", None
        self.admitted_at: float | None = None
        self.prefilled_at: float | None = None
        self.error: BaseException | None = None
        self.abandoned = False
        self.decoded: Decoded | None = None
        self.shared = Shared()
        self.layout = Layout()  # the shapes of the steps it was in

    @property
    def n_past(self) -> int:
        return len(self.positions)

    @property
    def prefilling(self) -> bool:
        return bool(self.feed)

    def stop_requested(self) -> bool:
        return self.abandoned or (self.should_stop is not None and self.should_stop())

    def abandon(self) -> None:
        self.abandoned = True

    def emit(self, text: str) -> None:
        if text:
            self.pieces.append(text)
            self.out.put(text)

    def end(self, error: BaseException | None = None) -> None:
        """Called once, on the engine thread: the asking thread wakes with the outcome."""
        if tail := self.decoder.decode(b"", final=True):
            self.emit(tail)
        self.error = error
        self.decoded = Decoded(
            "".join(self.pieces), self.n_generated, self.finish, self.first_at, time.perf_counter()
        )
        self.out.put(None)

    def texts(self):
        """The answer's text pieces as they come (on the asking thread)."""
        while (text := self.out.get()) is not None:
            yield text


def build_feed(engine, prepared: Prepared, cache: PrefixCache, sections):
    """What the engine thread evaluates for a prepared prompt, with the prefix cache
    consulted here (on the asking thread) rather than on the thread decoding for everyone.

    Returns the feed, the prefill facts, and (prefix key, suffix) for the plan index."""
    if prepared.cached is not None:
        entry = prepared.cached
        return [Restore(entry), Tokens(prepared.suffix)], Prefill("hit", entry.n_tokens), None
    if prepared.tokenized is None:
        return [Tokens(prepared.tokens)], Prefill("off"), None
    key, prefix, suffix = split_at_media(engine, prepared.tokenized.chunks)
    entry = cache.get(key) if cache.enabled else None
    if entry is not None:
        return [Restore(entry), Tokens(suffix)], Prefill("hit", entry.n_tokens), (key, suffix)
    prefix_tokens = sum(c.n_tokens for c in prefix)
    feed: list = [Tokens(c.tokens) if c.kind == mtmd.TEXT else c for c in prefix]
    if cache.enabled:
        feed.append(Save(key, [section.media.sha256 for section in sections]))
    feed.append(Tokens(suffix))
    return feed, Prefill("miss" if cache.enabled else "off", prefix_tokens), (key, suffix)


def saved_entry(ctx, seq: Sequence, media: list[str]) -> Entry:
    return Entry(mtmd.save_seq(ctx, seq.seq_id), np.array(seq.positions, dtype=np.intc), media)
