"""Tokens reach browsers in batches, each batch logged with a sequence number first."""

from __future__ import annotations

import pytest

from analysis import streaming
from analysis.models import Analysis

pytestmark = pytest.mark.django_db


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def analysis(people):
    return Analysis.objects.create(case=people.case, created_by=people.bob, question="Q?")


def test_it_sends_the_first_token_at_once_then_batches_within_the_interval(analysis):
    clock = Clock()
    stream = streaming.TokenStream(analysis, interval=0.05, clock=clock)
    for token in ["a", "b", "c"]:
        stream.push(token)
    assert list(analysis.chunks.values_list("text", flat=True)) == ["a"]  # the answer starts
    clock.now += 0.06
    stream.push("d")
    stream.push("e")
    stream.flush()
    assert list(analysis.chunks.values_list("seq", "text")) == [(1, "a"), (2, "bcd"), (3, "e")]


def test_each_batch_says_how_fast_and_how_long(analysis):
    clock = Clock()
    stream = streaming.TokenStream(analysis, interval=0.05, clock=clock)
    stream.push("a")
    for _ in range(10):
        clock.now += 0.1
        stream.push("b")
    live = stream._live(clock.now)
    assert (live["tokens"], live["rate"], live["elapsed"]) == (11, 10.0, 1.0)


def test_a_message_is_encoded_once_for_every_socket():
    message = streaming._encoded({"type": "analysis.tokens", "analysis": "x", "seq": 1})
    assert message["json"] == '{"type":"tokens","analysis":"x","seq":1}'
    assert message["type"] == "analysis.tokens"  # the consumer's handler still dispatches on it


def test_an_empty_flush_sends_nothing(analysis):
    stream = streaming.TokenStream(analysis, interval=0.05, clock=Clock())
    stream.flush()
    assert analysis.chunks.count() == 0


def test_a_client_resumes_after_its_last_sequence_number(analysis):
    for seq, text in enumerate(["one ", "two ", "three"], start=1):
        analysis.chunks.create(seq=seq, text=text)
    missed = streaming.chunks_after(analysis, 1)
    assert [(m["seq"], m["text"]) for m in missed] == [(2, "two "), (3, "three")]
    assert streaming.chunks_after(analysis, 3) == []


def test_it_continues_numbering_after_existing_chunks(analysis):
    analysis.chunks.create(seq=1, text="x")
    stream = streaming.TokenStream(analysis, interval=0.0, clock=Clock())
    stream.push("y")
    assert list(analysis.chunks.values_list("seq", flat=True)) == [1, 2]


class _BrokenLayer:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc

    async def group_send(self, group, message) -> None:
        raise self.exc


@pytest.fixture
def layer_state(monkeypatch):
    state = streaming._LayerState()
    monkeypatch.setattr(streaming, "_layer_state", state)
    return state


def _deliver_through(monkeypatch, exc: BaseException) -> None:
    import asyncio

    monkeypatch.setattr(streaming, "get_channel_layer", lambda: _BrokenLayer(exc))
    asyncio.run(streaming.Publisher._deliver("case.x", {"type": "analysis.status"}))


def test_a_refused_connection_to_redis_pauses_live_updates(monkeypatch, layer_state):
    from redis.exceptions import ConnectionError as RedisConnectionError

    _deliver_through(monkeypatch, RedisConnectionError("Connection refused"))
    assert layer_state.down_since is not None
    assert not layer_state.may_send()  # the next try waits for the backoff


def test_a_broken_message_is_logged_and_is_no_outage(monkeypatch, layer_state, caplog):
    _deliver_through(monkeypatch, TypeError("Object of type set is not JSON serializable"))
    assert layer_state.down_since is None
    assert layer_state.may_send()
    assert "live update to case.x not sent" in caplog.text
