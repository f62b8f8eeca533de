"""Continuous batching: several questions in one llama context, on real llama.cpp (tiny Gemma 4).

Interleaving is proved from what the scheduler recorded (which decode steps carried which
sequence), never from timing.
"""

from __future__ import annotations

import threading

import pytest

from analysis.inference.engine import Engine, PromptTooLong, Request
from analysis.inference.prefill import Prefill
from analysis.inference.sequence import Sequence, Tokens
from analysis.inference.types import Sampler
from tests import engine_media as em
from tests.conftest import TINY_MMPROJ
from tests.test_engine import tiny_spec

QUESTIONS = [
    "Hello, what do you see?",
    "Describe the scene in detail.",
    "What time is it?",
    "Name three colours please.",
]


def spec(**changes):
    return tiny_spec(**({"n_ctx": 256, "sampler": Sampler(max_tokens=40)} | changes))


@pytest.fixture(scope="module")
def solo_answers():
    engine = Engine(spec())
    assert engine.scheduler is None
    answers = {q: engine.generate(Request(q), on_token=lambda t: None) for q in QUESTIONS}
    engine.close()
    return answers


@pytest.fixture
def batched(settings):
    settings.INFERENCE_SLOTS = 4
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0
    engine = Engine(spec())
    yield engine
    engine.close()


def together(engine, jobs, queued: int | None = None):
    """Run each job (a callable) on its own thread, all queued before the first decode step
    (`queued`: how many reach the queue; the others fail before it)."""
    results: dict[int, object] = {}

    def run(i, job):
        try:
            results[i] = job()
        except Exception as exc:  # noqa: BLE001 - the test looks at what each one raised
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    with engine.scheduler.hold():
        for number, thread in enumerate(threads, start=1):
            thread.start()
            # One at a time, so the queue holds them in the jobs' order (the scheduler admits
            # the oldest first): a test can say which one waits for a slot.
            while queued is None and len(engine.scheduler.waiting) < number:
                threading.Event().wait(0.005)
        while len(engine.scheduler.waiting) < (len(jobs) if queued is None else queued):
            threading.Event().wait(0.005)
    for thread in threads:
        thread.join(timeout=120)
    return [results[i] for i in range(len(jobs))]


def asking(engine, question, **kwargs):
    return lambda: engine.generate(Request(question), on_token=lambda t: None, **kwargs)


def test_four_questions_share_decode_steps_and_each_equals_its_solo_answer(batched, solo_answers):
    results = together(batched, [asking(batched, q) for q in QUESTIONS])
    steps = [r.record["batch"] for r in results]
    for question, result, batch in zip(QUESTIONS, results, steps, strict=True):
        assert batch["mode"] == "batched" and batch["slots"] == 4
        # Greedy text did not change with the batch on this model (docs/benchmarks.md
        # measures where it does); the record says how it was batched either way.
        assert result.text == solo_answers[question].text
        assert result.completion_tokens == solo_answers[question].completion_tokens
        assert batch["max_sequences"] == 4 and batch["shared_steps"] >= 1
    # Interleaved: every sequence was still decoding when the others had started.
    assert max(b["first_step"] for b in steps) < min(b["last_step"] for b in steps)
    assert len({b["sequence"] for b in steps}) == 4
    assert batched.scheduler.busy_steps >= 1
    assert sorted(batched.scheduler.free) == [0, 1, 2, 3] and not batched.scheduler.active


def test_a_step_lists_its_slots_in_rising_order_whatever_order_they_were_freed_in(batched):
    # llama.cpp takes one micro-batch per run of sequence ids rising by one: a step in slot
    # order is one graph computation, the same step in join order (say 3, 1, 0, 2) several.
    batched.scheduler.free = [3, 1, 0, 2]  # as four answers that ended in that order leave it
    results = together(batched, [asking(batched, q) for q in QUESTIONS])
    layouts = [r.record["batch"]["layout"] for r in results]
    assert [layout["slot"] for layout in layouts] == [0, 1, 2, 3]  # lowest free, in turn
    shapes = [shape for layout in layouts for shape, _ in layout["runs"]]
    assert any(len(shape) == 4 for shape in shapes)
    for shape in shapes:
        slots = [slot for slot, _, _ in shape]
        assert slots == sorted(slots)


def test_a_cancelled_sequence_leaves_and_frees_its_slot(settings, solo_answers):
    settings.INFERENCE_SLOTS = 2
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0
    engine = Engine(spec())
    seen: list[str] = []

    def cancelled():
        return engine.generate(
            Request(QUESTIONS[0]), on_token=seen.append, should_stop=lambda: len(seen) >= 2
        )

    try:
        # Two slots, three questions: the third gets the cancelled one's slot.
        first, second, third = together(
            engine, [cancelled, asking(engine, QUESTIONS[1]), asking(engine, QUESTIONS[2])]
        )
        free = sorted(engine.scheduler.free)
    finally:
        engine.close()
    # The flag is read between decode steps while the asker is still taking in the tokens:
    # it stops within a step or two of being set, not at an exact token.
    assert first.finish_reason == "cancelled"
    assert 2 <= first.completion_tokens < solo_answers[QUESTIONS[0]].completion_tokens
    assert solo_answers[QUESTIONS[0]].text.startswith(first.text)
    assert second.text == solo_answers[QUESTIONS[1]].text
    assert third.text == solo_answers[QUESTIONS[2]].text
    b1, b2, b3 = (r.record["batch"] for r in (first, second, third))
    assert b3["first_step"] > b1["last_step"]  # joined once the cancelled one had left
    assert b3["first_step"] < b2["last_step"]  # ... while the other was still answering
    assert free == [0, 1]


def test_a_sequence_that_overflows_its_context_fails_alone(batched, solo_answers):
    # Past the budget check (which refuses such a prompt before it queues): a prompt longer
    # than the slot, prefilled chunk by chunk beside the others until it no longer fits.
    prompt = batched.llm.tokenize(b"word " * 300, add_bos=True, special=True)
    assert len(prompt) > batched.spec.n_ctx
    runaway = Sequence(
        number=10_000, feed=[Tokens(prompt)], filled=Prefill("off"), sampler=Sampler(),
        grammar=None, max_tokens=10, should_stop=None,
    )  # fmt: skip
    jobs = [lambda: batched.scheduler.run(runaway, lambda t: None)]
    jobs += [asking(batched, q) for q in QUESTIONS[:3]]
    failed, *others = together(batched, jobs)
    assert isinstance(failed, PromptTooLong) and "ran out of the model's context" in str(failed)
    assert runaway.shared.steps > 0 and runaway.seq_id == -1
    for question, result in zip(QUESTIONS, others, strict=False):
        assert result.text == solo_answers[question].text
    assert sorted(batched.scheduler.free) == [0, 1, 2, 3]


def test_a_prompt_too_long_for_its_slot_fails_alone(batched, solo_answers):
    jobs = [asking(batched, "word " * 400)] + [asking(batched, q) for q in QUESTIONS[:3]]
    failed, *others = together(batched, jobs, queued=3)
    assert isinstance(failed, PromptTooLong)
    for question, result in zip(QUESTIONS, others, strict=False):
        assert result.text == solo_answers[question].text


def test_a_reproduction_runs_alone_and_gives_the_identical_text(batched, solo_answers):
    originals = together(batched, [asking(batched, q) for q in QUESTIONS])
    for question, original in zip(QUESTIONS, originals, strict=True):
        copy = batched.generate(Request(question, replay=original.record), on_token=lambda t: None)
        # Alone, in the shapes of its original's steps (tests/test_engine_replay.py).
        assert copy.record["batch"]["mode"] == "replay"
        assert copy.record["batch"]["max_sequences"] == 1
        assert copy.text == original.text
    # And a solo original (the plain loop) reproduces on the batched engine too.
    solo = solo_answers[QUESTIONS[0]]
    again = batched.generate(Request(QUESTIONS[0], replay=solo.record), on_token=lambda t: None)
    assert again.text == solo.text and solo.record["batch"] == {"slots": 1, "mode": "solo"}


def test_media_prefixes_are_cached_per_sequence(settings, tmp_path):
    settings.INFERENCE_SLOTS = 2
    settings.GEMMA_PREFIX_CACHE_DIR = tmp_path / "cache"
    image = em.media(em.png(tmp_path / "scene.png"), "image")
    from analysis.inference import cache as prefix_cache

    media_spec = spec(mmproj_path=str(TINY_MMPROJ), n_ctx=1024, sampler=Sampler(max_tokens=8))
    settings.INFERENCE_SLOTS = 1
    solo = Engine(media_spec)
    expected = [solo.generate(Request(q, media=[image]), on_token=lambda t: None).text
                for q in QUESTIONS[:2]]  # fmt: skip
    solo.close()
    prefix_cache.reset_cache()
    settings.INFERENCE_SLOTS = 2
    engine = Engine(media_spec)
    try:
        first = engine.generate(Request(QUESTIONS[0], media=[image]), on_token=lambda t: None)
        second = engine.generate(Request(QUESTIONS[1], media=[image]), on_token=lambda t: None)
        # And both at once, each in its own sequence: the prefix restored into both streams.
        both = together(engine, [lambda q=q: engine.generate(Request(q, media=[image]),
                                                             on_token=lambda t: None)
                                 for q in QUESTIONS[:2]])  # fmt: skip
    finally:
        engine.close()
        prefix_cache.reset_cache()
    assert first.record["prefix_cache"]["status"] == "miss"
    assert first.record["prefix_cache"]["media_chunks_evaluated"] == 1
    assert second.record["prefix_cache"]["status"] == "hit"
    assert second.record["prefix_cache"]["media_chunks_evaluated"] == 0
    assert [first.text, second.text] == expected
    assert [r.text for r in both] == expected
    assert {r.record["prefix_cache"]["status"] for r in both} == {"hit"}
    assert both[0].record["batch"]["max_sequences"] == 2


def test_a_long_prompt_is_prefilled_in_chunks_between_the_others_tokens(settings):
    settings.INFERENCE_SLOTS = 2
    settings.GEMMA_PREFILL_CHUNK = 16
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0
    engine = Engine(spec(n_ctx=512, sampler=Sampler(max_tokens=200)))
    streaming, results = threading.Event(), {}

    def answer():
        results["answering"] = engine.generate(
            Request(QUESTIONS[0]), on_token=lambda t: streaming.set()
        )

    try:
        with engine.scheduler.hold():  # the newcomer joins once the first one streams
            thread = threading.Thread(target=answer)
            thread.start()
            while not engine.scheduler.waiting:
                threading.Event().wait(0.005)
        assert streaming.wait(60)
        long_question = "Describe every detail of the scene, slowly. " * 6
        (newcomer,) = together(engine, [asking(engine, long_question)])
        thread.join(timeout=120)
    finally:
        engine.close()
    answering = results["answering"]
    first, late = answering.record["batch"], newcomer.record["batch"]
    # Steps that carried the newcomer's prompt: all of its steps but those feeding back its
    # answer's tokens (each is decoded once, but the last when the answer hit its length).
    fed = newcomer.completion_tokens - (newcomer.finish_reason == "length")
    prefill_steps = late["steps"] - fed
    assert prefill_steps == -(-newcomer.prompt_tokens // 16) > 3
    # ... each of them beside a token of the answering one: its answer went on meanwhile.
    assert first["first_step"] < late["first_step"]
    assert first["last_step"] >= late["first_step"] + prefill_steps


def test_a_switch_to_another_model_waits_for_the_answers_on_the_loaded_one(fresh_engine):
    first = fresh_engine.get_engine(spec())
    switched: list = []
    switcher = threading.Thread(
        target=lambda: switched.append(fresh_engine.get_engine(spec(n_ctx=384)))
    )
    with fresh_engine.using(first):
        switcher.start()
        switcher.join(timeout=0.5)
        # Still loaded and answering while the lease is held, whatever the other thread wants.
        assert not switched and switcher.is_alive()
        assert first.generate(Request(QUESTIONS[0]), on_token=lambda t: None).text
    switcher.join(timeout=60)
    assert switched and switched[0] is not first and switched[0].spec.n_ctx == 384
