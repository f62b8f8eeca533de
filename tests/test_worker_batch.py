"""One inference worker answers four questions at once: its task threads share one engine,
whose decode steps carry all four (proved from each answer's record, not from timing)."""

from __future__ import annotations

import json
import signal

import pytest

from tests.site_driver import FINISHED, TINY_TEXT, Site, running_site, wait

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TINY_TEXT.exists(), reason="tiny model missing"),
]
# Long answers on one thread, so the four overlap for many decode steps.
BATCHED = {"INFERENCE_SLOTS": "4", "GEMMA_MAX_TOKENS": "600", "GEMMA_N_THREADS": "1"}
# Questions whose greedy answers on the tiny model run 150–600 tokens: "Where is the car?"
# ends after 5, sooner than four paused jobs may take to reach the engine.
QUESTIONS = ["Why is the sky blue?", "Chaos 2?", "Tell me a story about a cat.",
             "What happened first?"]  # fmt: skip


@pytest.fixture
def site(tmp_path):
    with running_site(tmp_path, BATCHED) as site:
        yield site


def finished(site: Site, ids: list[str]) -> dict[str, dict]:
    assert wait(lambda: all(site.rows()[i]["status"] in FINISHED for i in ids), 240)
    rows = site._query("SELECT id, status, answer, record FROM analysis_analysis")
    by_id = {row["id"].replace("-", ""): row for row in rows}
    return {i: by_id[i.replace("-", "")] for i in ids}


def test_four_questions_are_answered_in_one_batch_as_they_would_be_alone(site):
    case = site.create_case()
    # Asked while the worker is paused, so all four are waiting when it takes them (asking
    # one after another through the site can take longer than an answer on a loaded machine).
    site.kill("inference", signal.SIGSTOP)
    try:
        together = [site.ask(case, question) for question in QUESTIONS]
    finally:
        site.kill("inference", signal.SIGCONT)
    batched = finished(site, together)
    steps = [json.loads(row["record"])["batch"] for row in batched.values()]
    assert all(row["status"] == "succeeded" for row in batched.values())
    assert {b["mode"] for b in steps} == {"batched"} and {b["slots"] for b in steps} == {4}
    # Their decode steps interleave: each was still answering when the last one started.
    assert max(b["first_step"] for b in steps) < min(b["last_step"] for b in steps)
    assert max(b["max_sequences"] for b in steps) == 4
    # The same questions one at a time: alone in the batch, same worker.
    for question, first in zip(QUESTIONS, batched.values(), strict=True):
        alone = finished(site, [site.ask(case, question)])
        row = next(iter(alone.values()))
        assert json.loads(row["record"])["batch"]["max_sequences"] == 1
        assert row["answer"] == first["answer"], "greedy text changed with the batch"
