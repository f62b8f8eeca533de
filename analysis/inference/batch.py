"""Continuous batching: one engine thread serves several questions in one llama context.

A `Llama` is not thread-safe, so one thread owns the context; the task threads that asked
hand it a Sequence (sequence.py) and read its text back. The context has one KV stream
per slot (`n_seq_max` = slots, each `n_ctx` long, as `llama-server -np N` makes them). Each
decode step carries the next token of every answering sequence and, within a token budget,
the next piece of a newcomer's prompt, so a long prompt is prefilled in chunks between the
others' tokens instead of stalling them; a newcomer's media chunk (one per step: an image's
tokens must be decoded together) runs between steps. A question joins at the next step and
leaves when it ends, is cancelled or fails, its KV cells freed at once (`seq_rm`), without
stopping the others. The media prefix cache works per sequence: a cached prefix is loaded
into the newcomer's own stream (`state_seq_set_data`), a new one saved from it.

Each step's shape (which slots, how many tokens each, which ask for logits) goes into the
layout of every sequence it carried; a reproduction replays that layout alone (layout.py).

The loop follows llama.cpp's own server (tools/server: update_slots), minus what this app
does not need (speculative decoding, context shifting, prompt-cache reuse across slots).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from contextlib import contextmanager

import llama_cpp

from analysis.inference import layout, mtmd
from analysis.inference.cache import get_cache
from analysis.inference.sequence import Restore, Save, Sequence, Tokens, saved_entry
from analysis.inference.types import EngineError, PromptTooLong

log = logging.getLogger(__name__)
_numbers = itertools.count(1)


def next_number() -> int:
    return next(_numbers)


class Scheduler:
    def __init__(
        self, engine, slots: int, chunk: int, n_batch: int, n_ubatch: int, *, report: bool = True
    ) -> None:
        self.engine, self.llm = engine, engine.llm
        self.slots, self.n_ctx_seq = slots, engine.spec.n_ctx
        self.n_batch = n_batch
        self.chunk = max(1, min(chunk, n_batch - slots))
        from llama_cpp import _internals

        params = llama_cpp.llama_context_params.from_buffer_copy(self.llm.context_params)
        params.n_batch, params.n_ubatch = n_batch, n_ubatch
        params.n_ctx = self.n_ctx_seq * slots
        params.n_seq_max = slots
        params.kv_unified = False  # one stream per slot, as llama-server -np N
        self.context = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self.ctx = self.context.ctx
        self.memory = llama_cpp.llama_get_memory(self.ctx)
        self.batch = llama_cpp.llama_batch_init(self.n_batch, 0, 1)
        self.vocab = self.llm._model.vocab
        self.free = list(range(slots))
        self.waiting: deque[Sequence] = deque()
        self.active: list[Sequence] = []
        self.step_no = 0
        self.busy_steps = 0  # steps that decoded tokens of more than one sequence
        self._shape: layout.Shape = ()  # the last step's, reused while steps keep it
        self._report_occupancy = report  # a replay's own scheduler is not the worker's
        self._cond = threading.Condition()
        self._closing = False
        self._held = 0
        self._reported = -1  # occupancy last told to the metrics
        self._thread = threading.Thread(target=self._run, name="engine-batch", daemon=True)
        self._thread.start()

    # --- the asking threads ----------------------------------------------------------------

    def run(self, seq: Sequence, on_token) -> Sequence:
        """Queue `seq`, stream its text through `on_token`, return it once it ended."""
        with self._cond:
            if self._closing:
                raise EngineError("The engine is shutting down.")
            self.waiting.append(seq)
            self._cond.notify()
        try:
            for text in seq.texts():
                on_token(text)
        except BaseException:
            # The engine thread still holds the sequence (and its prompt's native chunks):
            # stop it and wait for it to leave before the caller frees anything.
            seq.abandon()
            for _ in seq.texts():
                pass
            raise
        if seq.error is not None:
            raise seq.error
        return seq

    @contextmanager
    def hold(self):
        """No decode step while held: the questions that arrive meanwhile join together."""
        with self._cond:
            self._held += 1
        try:
            yield self
        finally:
            with self._cond:
                self._held -= 1
                self._cond.notify()

    @property
    def occupancy(self) -> int:
        return len(self.active)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=30)
        llama_cpp.llama_batch_free(self.batch)
        self.context.close()

    # --- the engine thread -----------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and (self._held or not (self.waiting or self.active)):
                    self._cond.wait()
                if self._closing:
                    break
                admitted = self._admit()
            try:
                for seq in admitted:
                    self._alone(self._start, seq)
                self._step()
                self._report()
            except Exception as exc:  # noqa: BLE001 - a bug here must not hang every asker
                log.exception("batch step failed")
                for seq in list(self.active):
                    self._leave(seq, EngineError(f"Internal error: {type(exc).__name__}: {exc}"))
        for seq in [*self.active, *self.waiting]:
            self._leave(seq, EngineError("The engine is shutting down."))

    def _alone(self, work, seq: Sequence) -> None:
        """Run one sequence's own work (restoring its prefix, encoding its media): a failure
        there ends that sequence with its reason, the others go on."""
        try:
            work(seq)
        except (EngineError, mtmd.MtmdError) as exc:
            self._leave(seq, exc if isinstance(exc, EngineError) else EngineError(str(exc)))

    def _report(self) -> None:
        """Batch occupancy for the metrics, written only when it changes (joins, leaves)."""
        if self._report_occupancy and len(self.active) != self._reported:
            from analysis import metrics

            self._reported = len(self.active)
            metrics.set_batch_occupancy(self._reported, slots=self.slots)

    def _admit(self) -> list[Sequence]:
        """Newcomers for free slots; a solo sequence waits for an empty batch, runs alone."""
        admitted = []
        while self.waiting and self.free:
            head = self.waiting[0]
            if any(seq.solo for seq in self.active) or (head.solo and self.active):
                break
            self.waiting.popleft()
            # A replay runs alone (solo), so its recorded slot is free.
            wanted = head.replay.slot if head.replay is not None else None
            # The lowest free slot otherwise: busy slots stay a run of consecutive ids, which
            # is what lets llama.cpp take a step as one micro-batch (see _fill).
            head.seq_id = wanted if wanted in self.free else min(self.free)
            self.free.remove(head.seq_id)
            self.active.append(head)
            admitted.append(head)
            if head.solo:
                break
        return admitted

    def _start(self, seq: Sequence) -> None:
        seq.admitted_at = time.perf_counter()
        seq.layout.slot = seq.seq_id
        llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
        spec = seq.sampler_spec
        self.llm.set_seed(spec.seed)
        seq.sampler = self.llm._init_sampler(
            top_k=spec.top_k,
            top_p=spec.top_p,
            min_p=spec.min_p,
            temp=spec.temperature,
            repeat_penalty=spec.repeat_penalty,
            grammar=seq.grammar,
        )  # fmt: skip  (the solo path's exact chain: same seed, same order)
        if seq.feed and isinstance(seq.feed[0], Restore):
            entry = seq.feed.popleft().entry
            mtmd.load_seq(self.ctx, entry.state, seq.seq_id)
            seq.positions = [int(t) for t in entry.input_ids]
            seq.filled.seconds["media_prefix"] = time.perf_counter() - seq.admitted_at

    def _step(self) -> None:
        for seq in [s for s in self.active if s.stop_requested()]:
            seq.finish = "cancelled"
            self._leave(seq)
        outputs, carried, shape = self._fill()
        if self.batch.n_tokens:
            self._decode(outputs, carried, shape)
        self._media_chunk()

    def _fill(self) -> tuple[list[tuple[Sequence, int]], list[Sequence], layout.Shape]:
        """The batch of this step: each answering sequence's next token, and prompt pieces
        within the budget, in slot order.

        With one KV stream per slot, llama.cpp cuts a batch into micro-batches whose
        sequence ids rise by one, in the order they first appear: four slots filled as
        1, 2, 3, 0 are two graph computations per step (1-3, then 0), each reading every
        weight, where 0, 1, 2, 3 is one."""
        self.batch.n_tokens = 0
        if self.active and self.active[0].replay is not None:  # it runs alone
            return self.active[0].replay.fill(self, self.active[0])
        outputs, carried, entries = [], [], []
        budget = self.chunk
        for seq in sorted(self.active, key=lambda s: s.seq_id):
            if seq.pending is not None:
                if self.room(seq, 1):
                    entries.append(self.feed_token(seq, outputs))
                    carried.append(seq)
                continue
            part = seq.feed[0] if seq.prefilling and seq.seq_id >= 0 else None
            if budget <= 0 or not isinstance(part, Tokens):
                continue
            take = min(part.left, budget)
            if not self.room(seq, take):
                continue
            entries.append(self.feed_prompt(seq, take, outputs))
            budget -= take
            carried.append(seq)
        return outputs, carried, self.shape_of(entries)

    def feed_token(self, seq: Sequence, outputs: list) -> layout.Entry:
        """Its sampled token, to decode (and sample after) in this step."""
        outputs.append((seq, self.batch.n_tokens))
        self._add(seq, seq.pending, logits=True)
        seq.pending = None
        return (seq.seq_id, 1, True)

    def feed_prompt(self, seq: Sequence, take: int, outputs: list) -> layout.Entry:
        """The next `take` tokens of its prompt; logits on the prompt's very last one."""
        part = seq.feed[0]
        last = len(seq.feed) == 1 and take == part.left
        for i, token in enumerate(part.tokens[part.done : part.done + take]):
            self._add(seq, token, logits=last and i == take - 1)
        part.done += take
        if part.left == 0:
            seq.feed.popleft()
        if last:
            outputs.append((seq, self.batch.n_tokens - 1))
            seq.prefilled_at = time.perf_counter()
        return (seq.seq_id, take, last)

    def shape_of(self, entries: list[layout.Entry]) -> layout.Shape:
        """This step's shape; the previous step's object when unchanged (layouts count
        runs by identity, so a steady decode costs one comparison per step)."""
        shape = tuple(entries)
        if shape != self._shape:
            self._shape = shape
        return self._shape

    def room(self, seq: Sequence, n: int) -> bool:
        """A sequence that would run out of its own context fails alone."""
        if seq.n_past + n <= self.n_ctx_seq:
            return True
        self._leave(seq, PromptTooLong(
            f"The answer ran out of the model's context ({self.n_ctx_seq} tokens)."
        ))  # fmt: skip
        return False

    def _add(self, seq: Sequence, token: int, *, logits: bool) -> None:
        self.put(token, seq.n_past, seq.seq_id, logits=logits)
        seq.positions.append(token)

    def put(self, token: int, pos: int, slot: int, *, logits: bool) -> None:
        batch, i = self.batch, self.batch.n_tokens
        batch.token[i], batch.pos[i] = token, pos
        batch.n_seq_id[i], batch.seq_id[i][0] = 1, slot
        batch.logits[i] = logits
        batch.n_tokens = i + 1

    def _decode(self, outputs: list, carried: list[Sequence], shape: layout.Shape) -> None:
        rc = llama_cpp.llama_decode(self.ctx, self.batch)
        self.step_no += 1
        live = {seq.number for seq in carried}
        self.busy_steps += len(live) > 1
        for seq in carried:
            seq.layout.add(shape)
            shared = seq.shared
            shared.first_step = shared.first_step or self.step_no
            shared.last_step, shared.steps = self.step_no, shared.steps + 1
            shared.shared_steps += len(live) > 1
            shared.max_sequences = max(shared.max_sequences, len(live))
            shared.companions |= live - {seq.number}
        if rc != 0:
            # The whole step failed (no KV room, a backend error): its sequences fail, the
            # waiting ones still get their turn.
            for seq in carried:
                self._leave(seq, EngineError(f"llama.cpp could not decode (error {rc})."))
            return
        for seq, index in outputs:
            if seq.seq_id >= 0:
                self._accept(seq, seq.sampler.sample(self.context, index))

    def _accept(self, seq: Sequence, token: int) -> None:
        """The solo loop's rules (decode.stream): end of turn, length, then cancellation."""
        if llama_cpp.llama_vocab_is_eog(self.vocab, token):
            seq.finish = "stop"
            return self._leave(seq)
        seq.n_generated += 1
        seq.first_at = seq.first_at or time.perf_counter()
        seq.emit(seq.decoder.decode(self.llm.detokenize([token])))
        if seq.n_generated >= seq.max_tokens:
            seq.finish = "length"
            return self._leave(seq)
        if seq.stop_requested():
            seq.finish = "cancelled"
            return self._leave(seq)
        seq.pending = token

    def _media_chunk(self) -> None:
        """At most one media chunk per step, for the first newcomer whose turn it is."""
        for seq in self.active:
            if seq.feed and isinstance(seq.feed[0], mtmd.Chunk):
                return self._alone(self._eval_media, seq)

    def _eval_media(self, seq: Sequence) -> None:
        chunk = seq.feed.popleft()
        if self.room(seq, chunk.n_tokens):
            end = mtmd.eval_media_chunk_at(
                self.engine.projector, self.ctx, chunk, seq.n_past, seq.seq_id, self.n_batch
            )
            seq.positions.extend([mtmd.MEDIA_PLACEHOLDER] * (end - seq.n_past))
            seq.filled.media_chunks_evaluated += 1
            if seq.feed and isinstance(seq.feed[0], Save):
                save = seq.feed.popleft()
                get_cache().put(save.key, saved_entry(self.ctx, seq, save.media))
                seq.filled.seconds["media_prefix"] = time.perf_counter() - seq.admitted_at

    def _leave(self, seq: Sequence, error: BaseException | None = None) -> None:
        if seq.replay is not None:
            seq.replay.clear(self.memory)
        if seq.seq_id >= 0:
            llama_cpp.llama_memory_seq_rm(self.memory, seq.seq_id, -1, -1)
            self.free.append(seq.seq_id)
            seq.seq_id = -1
        if seq in self.active:
            self.active.remove(seq)
        if seq in self.waiting:
            self.waiting.remove(seq)
        if seq.sampler is not None:
            seq.sampler.close()
            seq.sampler = None
        seq.end(error)
