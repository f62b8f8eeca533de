"""Greedy text and batch composition: how many batched answers differ from solo ones, and
how many a replay of their recorded layout reproduces.

    .venv/bin/python bench/batch_replay.py [--gguf PATH] [--questions 8] [--tokens 96]
        [--threads 2] [--repeat 1]

On one engine process: each question answered alone (the plain loop, one slot), then all at
once on an engine with one slot per question (queued together before the first decode step,
so they share their steps), then each batched answer reproduced (Reproduce's path: the
original's record as `Request.replay`). Prints, per round: how many batched answers differ
from their solo answer, how many reproductions are identical to their original and how many
followed the recorded layout exactly, and the size of the recorded layouts.
Default model: the demo SmolLM2 (`manage.py install_demo_model`).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import _django

_django.setup()

from django.conf import settings  # noqa: E402

from analysis.inference.engine import Engine, Request  # noqa: E402
from analysis.inference.registry import ModelSpec  # noqa: E402
from analysis.inference.types import Sampler  # noqa: E402

DEMO = Path.home() / ".cache" / "gemma-web" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
QUESTIONS = [
    "Why is the sky blue?",
    "Write a short story about a lighthouse keeper and a storm.",
    "Explain how a bicycle stays upright.",
    "What should I pack for a week of hiking?",
    "Describe the water cycle step by step.",
    "Give me three tips for writing clear emails.",
    "How do vaccines train the immune system?",
    "What happened during the first moon landing?",
    "Compare cats and dogs as pets.",
    "How does a refrigerator keep food cold?",
    "List the planets and one fact about each.",
    "What makes bread rise?",
]


def answer(engine: Engine, question: str, replay: dict | None = None):
    return engine.generate(Request(question, replay=replay), on_token=lambda text: None)


def together(engine: Engine, questions: list[str]) -> list:
    """All questions queued before the first decode step, so they share their steps."""
    results: dict[int, object] = {}

    def run(i: int, question: str) -> None:
        results[i] = answer(engine, question)

    threads = [threading.Thread(target=run, args=item) for item in enumerate(questions)]
    with engine.scheduler.hold():
        for thread in threads:
            thread.start()
        while len(engine.scheduler.waiting) < len(questions):
            time.sleep(0.005)
    for thread in threads:
        thread.join()
    return [results[i] for i in range(len(questions))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gguf", default=str(DEMO))
    parser.add_argument("--questions", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    questions = QUESTIONS[: args.questions]
    spec = ModelSpec(
        name=Path(args.gguf).stem, gguf_path=args.gguf, n_ctx=1024, n_threads=args.threads,
        sampler=Sampler(max_tokens=args.tokens),
    )  # fmt: skip
    settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0
    settings.INFERENCE_SLOTS = 1
    solo_engine = Engine(spec)
    solo = [answer(solo_engine, q).text for q in questions]
    solo_engine.close()
    settings.INFERENCE_SLOTS = len(questions)
    engine = Engine(spec)
    print(f"{Path(args.gguf).name}: {len(questions)} questions at once, {args.tokens} greedy "
          f"tokens, flash attention {'on' if settings.GEMMA_FLASH_ATTN else 'off'}")  # fmt: skip
    try:
        for round_no in range(1, args.repeat + 1):
            batched = together(engine, questions)
            copies = [answer(engine, q, r.record) for q, r in zip(questions, batched, strict=True)]
            report(round_no, solo, batched, copies)
    finally:
        engine.close()


def report(round_no: int, solo: list[str], batched: list, copies: list) -> None:
    differ = sum(b.text != s for b, s in zip(batched, solo, strict=True))
    same = sum(c.text == b.text for c, b in zip(copies, batched, strict=True))
    exact = sum(bool(c.record["batch"].get("exact")) for c in copies)
    modes = sorted({c.record["batch"]["mode"] for c in copies})
    shared = min(b.record["batch"]["shared_steps"] for b in batched)
    sizes = [len(json.dumps(b.record["batch"]["layout"], separators=(",", ":"))) for b in batched]
    runs = [len(b.record["batch"]["layout"]["runs"]) for b in batched]
    n = len(batched)
    print(f"round {round_no}: batched ≠ solo {differ} of {n}; reproduced identical {same} of "
          f"{n} (mode {'/'.join(modes)}, layout followed exactly {exact} of {n}); "
          f"fewest shared steps {shared}; layout {max(runs)} runs at most, "
          f"{min(sizes)}–{max(sizes)} bytes of JSON")  # fmt: skip


if __name__ == "__main__":
    main()
