"""The engine on real GGUF files (the tiny Gemma 4 fixtures), through real llama.cpp."""

from __future__ import annotations

import subprocess
import sys

import pytest

from analysis.inference.engine import Engine, EngineConfig, EngineError, PromptTooLong
from tests.conftest import TINY_Q8, TINY_TEXT

MESSAGES = [{"role": "user", "content": "Hello, what do you see?"}]


@pytest.fixture(scope="module")
def engine():
    engine = Engine(EngineConfig(model_path=str(TINY_TEXT), n_ctx=256, n_threads=2, max_tokens=24))
    yield engine
    engine.close()


def test_quantized_model_runs_without_illegal_instruction():
    # A native (-march=native) llama.cpp build dies with SIGILL (exit 132) here on quantized
    # models (AMX kernels). Run in a subprocess so the failure is a message, not a dead pytest.
    code = (
        "from llama_cpp import Llama\n"
        f"m = Llama(model_path={str(TINY_Q8)!r}, n_ctx=128, n_threads=2, verbose=False)\n"
        "print(len(m.create_completion('Hello', max_tokens=4, temperature=0)['choices']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, (
        f"exit {result.returncode}: llama-cpp-python is not the portable build "
        f"(see README, GUIDE §3). {result.stderr[-500:]}"
    )


def test_greedy_generation_is_deterministic_and_streams(engine):
    first: list[str] = []
    result = engine.generate(MESSAGES, on_token=first.append)
    again = engine.generate(MESSAGES, on_token=lambda token: None)
    assert result.text == again.text == "".join(first)
    assert len(first) > 1
    assert result.completion_tokens >= len(first)
    assert result.prompt_tokens > 5
    assert "Hello, what do you see?" in result.prompt


def test_it_stops_between_tokens_when_asked(engine):
    seen: list[str] = []
    result = engine.generate(MESSAGES, on_token=seen.append, should_stop=lambda: len(seen) >= 2)
    assert result.finish_reason == "cancelled"
    assert len(seen) == 2


def test_a_question_too_long_for_the_context_is_refused(engine):
    long_question = [{"role": "user", "content": "describe the image " * 200}]
    with pytest.raises(PromptTooLong, match="too long for the model's context"):
        engine.generate(long_question, on_token=lambda token: None)


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="Model file not found"):
        Engine(EngineConfig(model_path=str(tmp_path / "nope.gguf"), n_ctx=128))
