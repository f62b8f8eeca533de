"""The media prefix cache: a follow-up about the same media skips evaluating them again."""

from __future__ import annotations

import pytest

from analysis.inference import cache as prefix_cache
from analysis.inference.engine import Engine, Request
from analysis.inference.types import Sampler
from analysis.media import audio, images, video
from tests import engine_media as em
from tests.conftest import TINY_MMPROJ
from tests.test_engine import tiny_spec


@pytest.fixture(scope="module")
def engine():
    engine = Engine(
        tiny_spec(mmproj_path=str(TINY_MMPROJ), n_ctx=2048, sampler=Sampler(max_tokens=8))
    )
    yield engine
    engine.close()


@pytest.fixture
def clip(tmp_path):
    return em.media(em.mp4(tmp_path / "clip.mp4", seconds=3.0, audio=True), "video")


def ask(engine, question, *media):
    return engine.generate(Request(question, media=list(media)), on_token=lambda token: None)


# Where each decoder the model's input comes from lives (its media kind's module).
MODULES = {"video_frames": video, "audio_spans": audio, "audio_pcm": audio, "load_image": images}


def cache_of(result) -> dict:
    return result.record["prefix_cache"]


def test_a_follow_up_question_reuses_the_evaluated_media(engine, clip, monkeypatch):
    first = ask(engine, "What happens?", clip)

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached media prefix needs no decoding")

    for name in ("video_frames", "audio_spans", "audio_pcm", "load_image"):
        monkeypatch.setattr(MODULES[name], name, no_decoding)
    follow_up = ask(engine, "Who speaks, and when?", clip)
    assert cache_of(first) == {"status": "miss", "tokens": cache_of(first)["tokens"],
                               "media_chunks_evaluated": 6}  # fmt: skip
    assert cache_of(follow_up)["status"] == "hit"
    assert cache_of(follow_up)["media_chunks_evaluated"] == 0
    assert cache_of(follow_up)["tokens"] == cache_of(first)["tokens"] > 600
    assert follow_up.record["media"] == first.record["media"]


def test_a_restored_prefix_answers_exactly_as_a_fresh_evaluation(engine, clip, settings):
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0
    uncached = ask(engine, "What happens?", clip)
    assert cache_of(uncached)["status"] == "off"
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 64
    miss, hit = ask(engine, "What happens?", clip), ask(engine, "What happens?", clip)
    assert cache_of(miss)["status"] == "miss" and cache_of(hit)["status"] == "hit"
    assert uncached.text == miss.text == hit.text


def test_the_prefix_survives_a_restart_on_disk(engine, clip, settings):
    ask(engine, "What happens?", clip)
    assert list(settings.GEMMA_PREFIX_CACHE_DIR.glob("*.state"))
    prefix_cache.reset_cache()  # a new worker process: nothing in RAM
    assert cache_of(ask(engine, "And then?", clip))["status"] == "hit"


def test_deleting_the_media_purges_its_prefixes_in_every_process(engine, clip, settings):
    ask(engine, "What happens?", clip)
    worker_cache = prefix_cache.get_cache()
    # The web process deletes the media; the worker's RAM copy must not be served after.
    web_cache = prefix_cache.PrefixCache(settings.GEMMA_PREFIX_CACHE_DIR, 1 << 20, 1 << 20)
    assert web_cache.purge_media(clip.sha256) == 1
    assert not [p for p in settings.GEMMA_PREFIX_CACHE_DIR.rglob("*") if p.is_file()]
    assert prefix_cache.get_cache() is worker_cache
    assert cache_of(ask(engine, "And then?", clip))["status"] == "miss"
    assert prefix_cache.purge_media(clip.sha256) == 1  # the module-level helper


def test_another_frame_plan_is_another_prefix(engine, clip, settings):
    ask(engine, "What happens?", clip)
    settings.GEMMA_MEDIA_LIMITS = {"max_frames": 2}
    again = ask(engine, "What happens?", clip)
    assert cache_of(again)["status"] == "miss"
    assert again.record["media"][0]["frames"] == [0.75, 2.25]


def test_the_disk_tier_is_size_bounded(tmp_path):
    import numpy as np

    cache = prefix_cache.PrefixCache(tmp_path, ram_bytes=0, disk_bytes=1000)
    ids = np.zeros(10, dtype=np.intc)
    for key in "abc":
        cache.put(key, prefix_cache.Entry(b"x" * 400, ids, ["m"]))
        cache.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.json", "b.state", "c.json", "c.state"]
    assert cache.get("a") is None and cache.get("c").state == b"x" * 400


def test_the_ram_tier_is_size_bounded():
    import numpy as np

    cache = prefix_cache.PrefixCache(
        prefix_cache.Path("/nonexistent"), ram_bytes=1000, disk_bytes=0
    )
    ids = np.zeros(10, dtype=np.intc)
    for key in "abc":
        cache._remember(key, prefix_cache.Entry(b"x" * 400, ids, ["m"]))
    assert list(cache._ram) == ["b", "c"]  # least recently used went first


def test_a_follow_up_longer_than_its_allowance_still_gets_a_correct_prompt(engine, clip):
    ask(engine, "What happens?", clip)
    long = ask(engine, "Tell me everything. " * 60, clip)  # ~300 tokens: past the allowance
    assert long.prompt_tokens + 8 <= 2048 and "Tell me everything." in long.prompt
    assert cache_of(long)["status"] in ("hit", "miss")


def test_deleting_media_through_the_app_purges_its_prefixes(engine, clip, settings):
    import uuid
    from types import SimpleNamespace

    from analysis.media import removal

    ask(engine, "What happens?", clip)
    assert [p for p in settings.GEMMA_PREFIX_CACHE_DIR.rglob("*") if p.is_file()]
    # The asset row is not the point here: its files (none) and its prefixes (some) are.
    removal.remove_files(SimpleNamespace(case_id=uuid.uuid4(), id=uuid.uuid4(), sha256=clip.sha256))
    assert not [p for p in settings.GEMMA_PREFIX_CACHE_DIR.rglob("*") if p.is_file()]
    assert cache_of(ask(engine, "And then?", clip))["status"] == "miss"
