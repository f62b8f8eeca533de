"""The llama.cpp wrapper: one loaded model per worker process, reused by every task.

A `Llama` is not thread-safe and serves one request at a time, so the inference worker runs
with `--pool=solo -c 1` and this module keeps exactly one Engine per process, keyed by the
registered model and its file hashes: a task for another model (a new default, a
reproduction) reloads, every other task reuses what is loaded.

A request goes: plan the media (plan.py: frames, segments, pages) → count and fit them to
the context (budget.py) → evaluate, restoring the media prefix when cached (prefill.py,
cache.py) → stream tokens (decode.py) → check a structured answer (structured.py) → write
the reproducibility record (record.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from django.conf import settings

from analysis.inference import (
    batch,
    decode,
    layout,
    mtmd,
    plan,
    prefill,
    prompts,
    record,
    registry,
    sequence,
    structured,
)
from analysis.inference import budget as budgets
from analysis.inference import cache as prefix_cache
from analysis.inference.registry import ModelSpec
from analysis.inference.types import (  # noqa: F401 - re-exported: callers import them from here
    EngineError,
    Generation,
    ModelFileChanged,
    PromptTooLong,
    Request,
    Sampler,
    UnsupportedMedia,
)

log = logging.getLogger(__name__)
MIN_ANSWER_TOKENS = budgets.MIN_ANSWER_TOKENS
TEXT_ONLY = mtmd.Caps(vision=False, audio=False)
# Engines created in this process (tests prove a second task does not load again).
loads = 0


@dataclass
class Job:
    sampler: Sampler
    schema: dict | None
    grammar: object
    question: str  # with the schema's instructions, if any
    budget: budgets.Budget
    sections: list[plan.Section]


class Engine:
    def __init__(self, spec: ModelSpec) -> None:
        global loads
        hashes = registry.verify_files(spec)  # before the parser ever sees the file
        from llama_cpp import Llama

        started = time.perf_counter()
        self.spec = spec
        self.slots = inference_slots()
        self.n_batch = min(spec.n_ctx, 2048)
        # Gemma attends to an image's tokens both ways: llama.cpp then needs the whole
        # image (up to ~1,100 tokens) in one micro-batch.
        self.n_ubatch = self.n_batch if spec.mmproj_path else 512
        # With several slots the batch scheduler's own context holds every sequence; the
        # Llama's context then only needs to exist (it is never decoded), so keep it tiny.
        own = spec.n_ctx if self.slots == 1 else 64
        self.llm = Llama(
            model_path=spec.gguf_path,
            n_ctx=own,
            n_batch=min(own, self.n_batch),
            n_ubatch=min(own, self.n_ubatch),
            n_gpu_layers=spec.n_gpu_layers,
            n_threads=spec.n_threads or None,
            # The same count for prompts and batches: llama-cpp-python would otherwise take
            # every CPU for them, and with several sequences every decode step is a batch.
            n_threads_batch=spec.n_threads or None,
            flash_attn=settings.GEMMA_FLASH_ATTN,
            seed=spec.sampler.seed,
            verbose=False,
        )
        self.hashes = hashes
        self.name = spec.name
        self.template = self.llm.metadata.get("tokenizer.chat_template") or ""
        if not self.template:
            self.close()
            raise EngineError(f"{spec.name} has no chat template; it cannot answer questions.")
        self.formatter = self._formatter()
        self.projector = self._projector()
        self.caps = self.projector or TEXT_ONLY
        self.scheduler = None
        if self.slots > 1:
            self.scheduler = batch.Scheduler(
                self, self.slots, settings.GEMMA_PREFILL_CHUNK, self.n_batch, self.n_ubatch
            )
        self.load_seconds = time.perf_counter() - started
        loads += 1
        log.info("loaded %s in %.2fs", spec.name, self.load_seconds)

    @property
    def model_key(self) -> str:
        """What a cached media prefix depends on: the files and how they were loaded."""
        import llama_cpp

        h = self.hashes
        spec = self.spec
        key = f"{h['gguf']}:{h['mmproj']}:{spec.n_ctx}:{spec.n_gpu_layers}:{llama_cpp.__version__}"
        # A prefix saved from a context of several streams is kept apart from single ones.
        return key if self.slots == 1 else f"{key}:slots={self.slots}"

    def _formatter(self):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = self.llm.token_eos()
        # The model's own template, rendered in llama-cpp's Jinja sandbox (GGUF templates are
        # code-adjacent: never render one outside the sandbox).
        return Jinja2ChatFormatter(
            template=self.template,
            eos_token=self.llm._model.token_get_text(eos),
            bos_token=self.llm._model.token_get_text(self.llm.token_bos()),
            stop_token_ids=[eos],
        )

    def _projector(self) -> mtmd.Projector | None:
        if not self.spec.mmproj_path:
            return None
        try:
            return mtmd.Projector(
                self.spec.mmproj_path, self.llm, use_gpu=self.spec.n_gpu_layers != 0
            )
        except mtmd.MtmdError as exc:
            self.close()
            raise EngineError(str(exc)) from exc

    def render(self, content: str) -> tuple[str, bool]:
        """The chat prompt for one user turn, and whether the tokenizer must add BOS."""
        from jinja2.exceptions import SecurityError

        try:
            rendered = self.formatter(messages=[{"role": "user", "content": content}])
        except SecurityError as exc:
            # The sandbox stopped the template reaching outside itself: nothing ran.
            raise EngineError(
                f"The chat template of {self.name} tried something its sandbox forbids "
                f"({exc}); it cannot answer questions. Ask an administrator to replace it."
            ) from exc
        return rendered.prompt, not rendered.added_special

    def count_tokens(self, content: str) -> int:
        text, add_special = self.render(content)
        return len(self.llm.tokenize(text.encode(), add_bos=add_special, special=True))

    def generate(
        self,
        request: Request,
        *,
        on_token: Callable[[str], None],
        should_stop: Callable[[], bool] | None = None,
    ) -> Generation:
        """Answer `request`, streaming text through `on_token`; `should_stop` is checked
        between tokens. Raises EngineError subclasses with a reviewer-readable reason."""
        marks = {"started": time.perf_counter()}
        job = self._plan(request)
        marks["planned"] = time.perf_counter()
        replay = self._replay(request.replay)
        cache = self._cache_for(request.replay, replay)
        prepared = prefill.prepare(self, job.question, job.sections, job.budget, cache)
        try:
            marks["counted"] = time.perf_counter()
            room = self.spec.n_ctx - prepared.n_tokens
            if self.scheduler is None and replay is None:
                filled = prefill.evaluate(self, prepared, cache, job.sections)
                marks["prefilled"] = time.perf_counter()
                out = decode.stream(
                    self.llm, job.sampler, max_tokens=min(job.sampler.max_tokens, room),
                    on_token=on_token, should_stop=should_stop, grammar=job.grammar,
                )  # fmt: skip
                batching = {"slots": 1, "mode": "solo"}
            else:
                filled, out, batching = self._batched(
                    job, prepared, cache, room, on_token, should_stop, marks,
                    solo=request.replay is not None, replay=replay,
                )  # fmt: skip
            cache.flush()  # the disk copy of a new prefix, written after the answer
        finally:
            prepared.close()
        result = Generation(
            text=out.text,
            prompt=prepared.text,
            prompt_tokens=prepared.n_tokens,
            completion_tokens=out.n_tokens,
            finish_reason=out.finish_reason,
            timings=record.timings(marks, filled, out),
            record=record.build(self, job, prepared, filled, out, marks, batching),
        )
        if job.schema and out.finish_reason != "cancelled":
            try:
                structured.validate(out.text, job.schema)
            except EngineError as exc:
                exc.generation = result  # the pipeline keeps the record of a failed answer
                raise
        return result

    def _batched(self, job, prepared, cache, room, on_token, should_stop, marks, *, solo, replay):
        """Answer as one sequence of the batch scheduler (`solo`: it runs alone; `replay`: the
        layout it replays); returns what the solo path does, plus how the answer was batched
        (for the record)."""
        feed, filled, remember = sequence.build_feed(self, prepared, cache, job.sections)
        seq = sequence.Sequence(
            number=batch.next_number(), feed=feed, filled=filled, sampler=job.sampler,
            grammar=job.grammar, max_tokens=min(job.sampler.max_tokens, room),
            should_stop=should_stop, solo=solo, replay=replay,
        )  # fmt: skip
        with self._scheduler_for(replay) as scheduler:
            scheduler.run(seq, on_token)
        marks["prefilled"] = seq.prefilled_at or time.perf_counter()
        admitted = seq.admitted_at or marks["counted"]
        filled.seconds["prefill"] = marks["prefilled"] - admitted
        if remember and prepared.signature:
            prefill.remember_plan(self, prepared, cache, job.sections, *remember)
        mode = "replay" if replay is not None else "solo" if solo else "batched"
        batching = {
            "slots": scheduler.slots,
            "mode": mode,
            "sequence": seq.number,
            "queued_s": round(admitted - marks["counted"], 4),
            **seq.shared.as_dict(),
            "layout": seq.layout.as_dict(),
        }
        if seq.replay is not None:
            batching["exact"] = seq.replay.exact()  # every recorded step, as recorded
        return filled, seq.decoded, batching

    def _replay(self, record: dict | None) -> layout.Replay | None:
        """A reproduction of a batched answer replays its layout; one of a solo answer (or
        of a record from before layouts were kept) runs alone."""
        recorded = layout.recorded(record)
        if recorded is None:
            return None
        replay = layout.Replay(recorded, slots=int((record.get("batch") or {}).get("slots") or 1))
        if replay.widest > self.n_batch:
            raise EngineError(
                f"The original's decode steps carried up to {replay.widest} tokens, more than "
                f"this engine's batch ({self.n_batch}): it cannot be replayed here."
            )
        return replay

    def _cache_for(self, record: dict | None, replay: layout.Replay | None):
        """A replay evaluates its prompt the way its original did: through the steps it
        recorded, unless the original restored a cached prefix (then so does the replay, from
        this engine's own scheduler, whose saved states are of the same kind)."""
        cache = prefix_cache.get_cache()
        if replay is None:
            return cache
        hit = (record.get("prefix_cache") or {}).get("status") == "hit"
        if hit and self.scheduler is not None and replay.slots <= self.scheduler.slots:
            return cache
        return prefix_cache.PrefixCache(cache.directory, 0, 0)

    @contextmanager
    def _scheduler_for(self, replay: layout.Replay | None):
        """This engine's batch scheduler; for a replay that needs more slots than it has
        (or an engine without one), a scheduler of the original's slots, closed after it,
        while this engine's own (if any) is held: a replay runs alone either way."""
        own = self.scheduler
        if own is not None and (replay is None or replay.slots <= own.slots):
            yield own
            return
        log.info("replaying a batched answer on a temporary %d-slot scheduler", replay.slots)
        scheduler = batch.Scheduler(
            self, replay.slots, settings.GEMMA_PREFILL_CHUNK, self.n_batch, self.n_ubatch,
            report=False,
        )  # fmt: skip
        try:
            with own.hold() if own is not None else nullcontext():
                yield scheduler
        finally:
            scheduler.close()

    def _plan(self, request: Request) -> Job:
        """Sampler, schema and media plan: from the request, or from the record it replays."""
        replay = request.replay or {}
        sampler = Sampler.from_dict(replay.get("sampler") or request.sampler, self.spec.sampler)
        schema = replay.get("schema", request.schema) if replay else request.schema
        question = prompts.question_text(request.question, schema)
        text_tokens = self.count_tokens(prompts.user_content(question))
        budget = budgets.make_budget(self.spec.n_ctx, sampler.max_tokens, text_tokens)
        limits = plan.Limits.from_settings()
        sections = plan.build_sections(request.media, self.caps, limits, replay.get("media"))
        grammar = structured.grammar_for(schema) if schema else None
        return Job(sampler, schema, grammar, question, budget, sections)

    def close(self) -> None:
        if getattr(self, "scheduler", None) is not None:
            self.scheduler.close()
        projector = getattr(self, "projector", None)
        if projector is not None:
            projector.close()
        self.llm.close()


def inference_slots() -> int:
    """How many questions one engine answers at once (settings.INFERENCE_SLOTS)."""
    return max(1, int(settings.INFERENCE_SLOTS))


_engine: Engine | None = None
_engine_lock = threading.Condition(threading.RLock())
_users = 0  # answers running on _engine (several at once with batching)


def get_engine(spec: ModelSpec | None = None) -> Engine:
    """The process' engine for `spec` (default: the registry's default model), loaded on
    first use and kept warm; a different model, or changed files, replace it — once the
    answers running on the loaded one (see lease) have ended."""
    global _engine
    spec = spec or registry.default_spec()
    with _engine_lock:
        _engine_lock.wait_for(lambda: _engine is None or _engine.spec.key == spec.key or not _users)
        if _engine is not None and _engine.spec.key != spec.key:
            _engine.close()
            _engine = None
        if _engine is None:
            _engine = Engine(spec)
        return _engine


@contextmanager
def using(engine: Engine) -> Iterator[Engine]:
    """Keep `engine` loaded while the caller answers on it: with batching, several task
    threads answer at once, and a switch to another model waits for all of them."""
    global _users
    with _engine_lock:
        if engine is not _engine and isinstance(engine, Engine):
            # Replaced between the caller's get_engine and here: it is closed now.
            raise EngineError("The model was switched as this question started; ask it again.")
        counted = engine is _engine
        _users += counted
    try:
        yield engine
    finally:
        with _engine_lock:
            _users -= counted
            _engine_lock.notify_all()


def reset_engine() -> None:
    """Drop the loaded model (tests, and workers told to switch models)."""
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.close()
        _engine = None
