"""Images, audio, video and documents through the real mtmd path of the tiny Gemma 4 pair."""

from __future__ import annotations

import copy
import re

import pytest

from analysis.inference import mtmd
from analysis.inference.engine import Engine, PromptTooLong, Request, UnsupportedMedia
from analysis.inference.structured import FINDINGS_SCHEMA
from analysis.inference.types import InvalidStructuredOutput, Sampler
from tests import engine_media as em
from tests.test_engine import tiny_spec

MARKER = mtmd.marker()
TIMESTAMPED = re.compile(r"\[(\d\d):(\d\d):(\d\d)\] " + re.escape(MARKER))
AUDIO_SEGMENT = re.compile(r"\[\d\d:\d\d:\d\d-\d\d:\d\d:\d\d audio\] " + re.escape(MARKER))


@pytest.fixture(scope="module")
def engine():
    from tests.conftest import TINY_MMPROJ

    engine = Engine(
        tiny_spec(mmproj_path=str(TINY_MMPROJ), n_ctx=2048, sampler=Sampler(max_tokens=6))
    )
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def text_only():
    engine = Engine(tiny_spec(n_ctx=1024, sampler=Sampler(max_tokens=6)))
    yield engine
    engine.close()


def ask(engine, *media, question="What happens here?", **request):
    tokens: list[str] = []
    result = engine.generate(
        Request(question, media=list(media), **request), on_token=tokens.append
    )
    assert "".join(tokens) == result.text
    return result


def test_an_image_is_one_bitmap_and_one_marker(engine, tmp_path):
    image = em.media(em.png(tmp_path / "scene.png"), "image")
    result = ask(engine, image)
    assert result.prompt.count(MARKER) == 1
    assert result.record["tokens"]["chunks"] == {"image": 1, "audio": 0}
    assert result.record["tokens"]["media"] == 77  # a 96×64 image, as the fixture README says
    used = result.record["media"][0]
    assert (used["id"], used["sha256"], used["kind"]) == (image.id, image.sha256, "image")
    assert result.completion_tokens == 6


@pytest.mark.parametrize("make", [em.wav, em.mp3], ids=["wav", "mp3"])
def test_audio_is_mono_pcm_at_the_projector_rate(engine, tmp_path, make):
    audio = em.media(make(tmp_path / f"call.{make.__name__}", seconds=1.0, rate=44100), "audio")
    result = ask(engine, audio)
    assert len(AUDIO_SEGMENT.findall(result.prompt)) == result.prompt.count(MARKER) == 1
    assert result.record["tokens"]["chunks"] == {"image": 0, "audio": 1}
    # 1 s at 16 kHz is 25 tokens (the MP3 encoder pads a little: 25 or 26).
    assert result.record["tokens"]["media"] in (25, 26)
    [(start, end)] = result.record["media"][0]["audio_segments"]
    assert start == 0.0 and end == pytest.approx(1.0, abs=0.1)


def test_a_silent_video_is_frames_each_after_its_timestamp(engine, tmp_path):
    clip = em.media(em.mp4(tmp_path / "silent.mp4", seconds=4.0, audio=False), "video")
    result = ask(engine, clip)
    stamps = TIMESTAMPED.findall(result.prompt)
    assert stamps == [
        ("00", "00", "00"),
        ("00", "00", "01"),
        ("00", "00", "02"),
        ("00", "00", "03"),
    ]
    assert result.prompt.count(MARKER) == 4 and not AUDIO_SEGMENT.search(result.prompt)
    assert result.record["tokens"]["chunks"] == {"image": 4, "audio": 0}
    assert result.record["media"][0]["frames"] == [0.5, 1.5, 2.5, 3.5]
    assert "audio_segments" not in result.record["media"][0]


def test_a_video_with_sound_interleaves_each_frame_with_its_audio(engine, tmp_path):
    clip = em.media(em.mp4(tmp_path / "talk.mp4", seconds=4.0, audio=True), "video")
    result = ask(engine, clip)
    assert len(TIMESTAMPED.findall(result.prompt)) == 4
    assert len(AUDIO_SEGMENT.findall(result.prompt)) == 4
    assert result.prompt.count(MARKER) == 8
    assert result.record["tokens"]["chunks"] == {"image": 4, "audio": 4}
    used = result.record["media"][0]
    assert used["audio_segments"] == [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 4.0]]
    # Frame, then its sound, in time order: no peer sends both.
    order = re.findall(r"\[00:00:0(\d)(\]|-)", result.prompt)
    assert order == [(str(s), kind) for s in range(4) for kind in ("]", "-")]


def test_a_pdf_is_page_tagged_text_and_page_images_with_vision(engine, tmp_path):
    doc = em.media(em.pdf(tmp_path / "contract.pdf", ["Signed by Ann", "Witness Bob"]), "document")
    result = ask(engine, doc)
    assert "[page 1]\nSigned by Ann" in result.prompt and "[page 2]\nWitness Bob" in result.prompt
    assert result.prompt.count(MARKER) == 2  # one rendered page image each
    assert result.record["tokens"]["chunks"] == {"image": 2, "audio": 0}
    assert result.record["media"][0]["pages"] == [1, 2]
    assert result.record["media"][0]["page_images"] == [1, 2]


def test_a_pdf_for_a_text_only_model_is_text_only(text_only, tmp_path):
    doc = em.media(em.pdf(tmp_path / "memo.pdf", ["Hello there"]), "document")
    result = ask(text_only, doc)
    assert "[page 1]\nHello there" in result.prompt and MARKER not in result.prompt
    assert result.record["media"][0]["pages"] == [1]


@pytest.mark.parametrize("kind", ["image", "video", "audio"])
def test_media_a_text_only_model_cannot_take_are_refused(text_only, tmp_path, kind):
    path = {"image": em.png, "audio": em.wav}.get(kind, em.mp4)(tmp_path / f"x.{kind}")
    with pytest.raises(UnsupportedMedia, match="The model cannot take"):
        ask(text_only, em.media(path, kind))


def test_media_that_overflow_the_context_are_cut_and_the_record_says_which(tmp_path):
    from tests.conftest import TINY_MMPROJ

    small = Engine(
        tiny_spec(mmproj_path=str(TINY_MMPROJ), n_ctx=700, sampler=Sampler(max_tokens=6))
    )
    try:
        clip = em.media(em.mp4(tmp_path / "long.mp4", seconds=8.0, audio=False), "video")
        result = ask(small, clip)
    finally:
        small.close()
    used = result.record["media"][0]
    assert result.record["budget_reduced"] is True
    assert 1 <= len(used["frames"]) < 8 == used["units"]["planned"]
    assert result.prompt.count(MARKER) == len(used["frames"]) == used["units"]["used"]
    assert result.prompt_tokens + 6 <= 700
    gaps = {round(b - a, 3) for a, b in zip(used["frames"], used["frames"][1:], strict=False)}
    assert len(gaps) <= 2, "kept frames stay spread over the whole clip"


def test_media_that_cannot_fit_even_cut_are_refused_clearly(tmp_path):
    from tests.conftest import TINY_MMPROJ

    small = Engine(
        tiny_spec(mmproj_path=str(TINY_MMPROJ), n_ctx=256, sampler=Sampler(max_tokens=6))
    )
    images = [em.media(em.png(tmp_path / f"{i}.png", 96 + i, 64), "image") for i in range(3)]
    try:
        with pytest.raises(PromptTooLong, match="do not fit the model's context even reduced"):
            ask(small, *images)
    finally:
        small.close()


def test_a_question_that_alone_overflows_is_refused_before_any_media_is_read(engine, tmp_path):
    missing = em.media(em.png(tmp_path / "gone.png"), "image")
    missing.path.unlink()  # never opened: the question is refused first
    with pytest.raises(PromptTooLong, match="question is too long"):
        ask(engine, missing, question="why " * 3000)


def test_a_json_schema_answer_follows_the_grammar_and_validates(engine, tmp_path):
    schema = copy.deepcopy(FINDINGS_SCHEMA)
    schema.update(minItems=1, maxItems=2)
    schema["items"]["properties"]["finding"]["pattern"] = "^[a-z ]{1,12}$"
    clip = em.media(em.mp4(tmp_path / "c.mp4", seconds=2.0, audio=False), "video")
    result = ask(engine, clip, question="Findings?", schema=schema, sampler={"max_tokens": 200})
    import json

    findings = json.loads(result.text)
    assert 1 <= len(findings) <= 2
    assert set(findings[0]) == {"timestamp", "finding", "severity"}
    assert result.record["schema"] == schema and "JSON schema" in result.prompt


def test_an_answer_cut_short_of_its_schema_is_not_accepted(engine):
    schema = copy.deepcopy(FINDINGS_SCHEMA)
    schema["minItems"] = 1
    with pytest.raises(InvalidStructuredOutput, match="not complete JSON") as caught:
        ask(engine, question="Findings?", schema=schema, sampler={"max_tokens": 5})
    assert caught.value.generation.record["finish_reason"] == "length"


def test_a_long_text_document_is_cut_in_parts_and_trailing_parts_give_way(
    text_only, tmp_path, monkeypatch
):
    monkeypatch.setattr("analysis.media.documents.TEXT_PART", 400)
    path = tmp_path / "notes.txt"
    path.write_text("word " * 2400)  # 30 parts, far beyond 1,024 tokens of context
    result = ask(text_only, em.media(path, "document"))
    used = result.record["media"][0]
    assert "[part 1]\nword word" in result.prompt
    n = len(used["parts"])
    assert used["parts"] == list(range(1, n + 1)) and 1 <= n < 30 == used["units"]["planned"]
    assert result.record["budget_reduced"] is True and result.prompt_tokens + 6 <= 1024
