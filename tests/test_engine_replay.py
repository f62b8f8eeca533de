"""Reproduce replays a batched answer's layout: the same steps' shapes, the same bits.

On real llama.cpp (the tiny Gemma 4 fixtures). Sharing is made sure of by queueing every
question before the first decode step (tests/test_engine_batch.py: together), and proved
from the records, never from timing.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections import defaultdict

import llama_cpp
import pytest

from analysis.inference import batch
from analysis.inference.engine import Engine, Request
from analysis.inference.prompts import user_content
from analysis.inference.types import Sampler
from tests import engine_media as em
from tests.conftest import TINY_MMPROJ, TINY_Q8
from tests.test_engine_batch import QUESTIONS, asking, spec, together


@pytest.fixture
def no_cache(settings):
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0


def engine_with(settings, slots: int, **changes) -> Engine:
    settings.INFERENCE_SLOTS = slots
    return Engine(spec(**changes))


def reproduce(engine: Engine, question: str, original, **kwargs):
    return engine.generate(Request(question, replay=original.record, **kwargs),
                           on_token=lambda t: None)  # fmt: skip


@pytest.fixture
def logit_rows(monkeypatch):
    """SHA-256 of every logit row a sequence sampled from, by sequence number."""
    rows: dict[int, list[str]] = defaultdict(list)
    real = batch.Scheduler._decode

    def decode(self, outputs, carried, shape):
        sampled = [(seq, index) for seq, index in outputs if seq.seq_id >= 0]
        real(self, outputs, carried, shape)
        n_vocab = llama_cpp.llama_vocab_n_tokens(self.vocab)
        for seq, index in sampled:
            row = llama_cpp.llama_get_logits_ith(self.ctx, index)
            data = ctypes.string_at(row, n_vocab * ctypes.sizeof(ctypes.c_float))
            rows[seq.number].append(hashlib.sha256(data).hexdigest())

    monkeypatch.setattr(batch.Scheduler, "_decode", decode)
    return rows


def rows_of(rows, result) -> list[str]:
    return rows[result.record["batch"]["sequence"]]


def assert_replayed(original, copy) -> None:
    first, again = original.record["batch"], copy.record["batch"]
    assert again["mode"] == "replay" and again["exact"] is True
    assert again["layout"] == first["layout"]  # step for step, the original's shapes
    assert again["max_sequences"] == 1  # the others were fillers, not questions
    assert copy.text == original.text and copy.completion_tokens == original.completion_tokens


def test_a_batched_answer_is_reproduced_by_replaying_its_layout(settings, no_cache, logit_rows):
    engine = engine_with(settings, 4)
    try:
        originals = together(engine, [asking(engine, q) for q in QUESTIONS])
        copies = [reproduce(engine, q, o) for q, o in zip(QUESTIONS, originals, strict=True)]
        assert sorted(engine.scheduler.free) == [0, 1, 2, 3] and not engine.scheduler.active
    finally:
        engine.close()
    for original, copy in zip(originals, copies, strict=True):
        batched = original.record["batch"]
        assert batched["mode"] == "batched" and batched["shared_steps"] >= 1
        runs = batched["layout"]["runs"]
        assert sum(repeat for _, repeat in runs) == batched["steps"]
        assert max(len(shape) for shape, _ in runs) == 4
        assert_replayed(original, copy)
        # Bit for bit: every logit row it sampled from is the original's.
        assert rows_of(logit_rows, copy) == rows_of(logit_rows, original)


def test_a_batch_changes_the_bits_of_an_answer_and_its_replay_keeps_them(
    settings, no_cache, logit_rows
):
    # Two prompts one token apart, prefilled in one step: llama.cpp cuts a step into
    # micro-batches of equal tokens per slot, so the longer prompt's last token goes in a
    # micro-batch of its own, where a sequence's single token takes other kernels than
    # several of its tokens do (alone, that prompt is one micro-batch). The sums come out
    # the same bits for most prompts on this tiny model; for this one they do not.
    short, longer = "Hello, what do you see now?", "Describe the scene in detail."
    engine = engine_with(settings, 2)
    try:
        n_short, n_longer = (engine.count_tokens(user_content(q)) for q in (short, longer))
        assert n_longer == n_short + 1 and n_short + n_longer <= engine.scheduler.chunk
        originals = together(engine, [asking(engine, short), asking(engine, longer)])
        copies = [reproduce(engine, q, o) for q, o in zip((short, longer), originals, strict=True)]
        alone = asking(engine, longer)()
    finally:
        engine.close()
    first_step = originals[1].record["batch"]["layout"]["runs"][0][0]
    assert first_step == [[0, n_short, 1], [1, n_longer, 1]]
    for original, copy in zip(originals, copies, strict=True):
        assert_replayed(original, copy)
        assert rows_of(logit_rows, copy) == rows_of(logit_rows, original)
    # The first logits of the longer one (from its last prompt token) differ in their bits
    # from the same question's alone.
    assert rows_of(logit_rows, alone)[0] != rows_of(logit_rows, originals[1])[0]


def test_a_prompt_prefilled_in_pieces_is_replayed_with_the_same_pieces(settings, no_cache):
    settings.GEMMA_PREFILL_CHUNK = 16
    engine = engine_with(settings, 2, n_ctx=512, sampler=Sampler(max_tokens=200))
    long_question = "Describe every detail of the scene, slowly. " * 6
    try:
        with engine.scheduler.hold():  # the long one joins while the first one answers
            first = threading.Thread(target=asking(engine, QUESTIONS[0]))
            first.start()
            while not engine.scheduler.waiting:
                threading.Event().wait(0.005)
        while not engine.scheduler.step_no:
            threading.Event().wait(0.005)
        (original,) = together(engine, [asking(engine, long_question)])
        first.join(timeout=120)
        settings.GEMMA_PREFILL_CHUNK = 64  # changed since: the replay follows the record
        copy = reproduce(engine, long_question, original)
    finally:
        engine.close()
    pieces = [shape for shape, _ in original.record["batch"]["layout"]["runs"]]
    own = original.record["batch"]["layout"]["slot"]
    assert any([own, 16, 0] in shape and len(shape) == 2 for shape in pieces)
    assert_replayed(original, copy)


def test_a_worker_without_enough_slots_replays_on_a_scheduler_of_its_own(settings, no_cache):
    engine = engine_with(settings, 4)
    try:
        originals = together(engine, [asking(engine, q) for q in QUESTIONS])
    finally:
        engine.close()
    plain = engine_with(settings, 1)
    try:
        copies = [reproduce(plain, q, o) for q, o in zip(QUESTIONS, originals, strict=True)]
        assert plain.scheduler is None  # the replay's scheduler is gone with it
        # A solo original still runs on the plain loop, and identically.
        solo = asking(plain, QUESTIONS[0])()
        again = reproduce(plain, QUESTIONS[0], solo)
    finally:
        plain.close()
    two = engine_with(settings, 2)  # fewer slots than the original had
    try:
        copies += [reproduce(two, QUESTIONS[3], originals[3])]
        assert two.scheduler.slots == 2 and not two.scheduler._held
        after = asking(two, QUESTIONS[0])()  # its own scheduler still answers
    finally:
        two.close()
    for original, copy in zip([*originals, originals[3]], copies, strict=True):
        assert_replayed(original, copy)
        assert copy.record["batch"]["slots"] == 4
    assert after.record["batch"]["slots"] == 2 and after.text == originals[0].text
    assert solo.record["batch"] == {"slots": 1, "mode": "solo"}
    assert again.record["batch"] == {"slots": 1, "mode": "solo"} and again.text == solo.text


def test_a_solo_original_reproduces_solo_on_a_batching_worker(settings, no_cache):
    plain = engine_with(settings, 1)
    try:
        solo = asking(plain, QUESTIONS[1])()
    finally:
        plain.close()
    engine = engine_with(settings, 4)
    try:
        again = reproduce(engine, QUESTIONS[1], solo)
    finally:
        engine.close()
    assert again.record["batch"]["mode"] == "solo" and "exact" not in again.record["batch"]
    assert again.text == solo.text


def test_a_quantized_model_replays_bit_for_bit_too(settings, no_cache, logit_rows):
    # Q8_0 weights take the tinyBLAS kernel for several columns as F16 ones do.
    engine = engine_with(settings, 4, gguf_path=str(TINY_Q8))
    try:
        originals = together(engine, [asking(engine, q) for q in QUESTIONS])
        copies = [reproduce(engine, q, o) for q, o in zip(QUESTIONS, originals, strict=True)]
    finally:
        engine.close()
    for original, copy in zip(originals, copies, strict=True):
        assert_replayed(original, copy)
        assert rows_of(logit_rows, copy) == rows_of(logit_rows, original)


def asked_together_and_reproduced(engine, image):
    """Two questions about one image answered together, then each reproduced."""
    originals = together(engine, [
        lambda q=q: engine.generate(Request(q, media=[image]), on_token=lambda t: None)
        for q in QUESTIONS[:2]
    ])  # fmt: skip
    copies = [reproduce(engine, q, o, media=[image])
              for q, o in zip(QUESTIONS[:2], originals, strict=True)]  # fmt: skip
    return originals, copies


def test_answers_about_media_replay_their_media_chunks_in_place(settings, no_cache, tmp_path):
    image = em.media(em.png(tmp_path / "scene.png"), "image")
    engine = engine_with(settings, 2, mmproj_path=str(TINY_MMPROJ), n_ctx=1024,
                         sampler=Sampler(max_tokens=16))  # fmt: skip
    try:
        originals, copies = asked_together_and_reproduced(engine, image)
    finally:
        engine.close()
    for original, copy in zip(originals, copies, strict=True):
        assert original.record["prefix_cache"]["media_chunks_evaluated"] == 1
        assert copy.record["prefix_cache"]["media_chunks_evaluated"] == 1
        assert original.record["batch"]["shared_steps"] >= 1
        assert_replayed(original, copy)


def test_answers_that_restored_a_cached_prefix_replay_from_it(settings, tmp_path):
    from analysis.inference import cache as prefix_cache

    settings.GEMMA_PREFIX_CACHE_DIR = tmp_path / "cache"
    prefix_cache.reset_cache()
    image = em.media(em.png(tmp_path / "scene.png"), "image")
    engine = engine_with(settings, 2, mmproj_path=str(TINY_MMPROJ), n_ctx=1024,
                         sampler=Sampler(max_tokens=16))  # fmt: skip
    try:
        first = engine.generate(Request(QUESTIONS[2], media=[image]), on_token=lambda t: None)
        originals, copies = asked_together_and_reproduced(engine, image)
    finally:
        engine.close()
        prefix_cache.reset_cache()
    assert first.record["prefix_cache"]["status"] == "miss"
    for original, copy in zip(originals, copies, strict=True):
        assert original.record["prefix_cache"]["status"] == "hit"
        assert copy.record["prefix_cache"]["status"] == "hit"
        assert original.record["batch"]["shared_steps"] >= 1
        assert_replayed(original, copy)
