"""The engine on real GGUF files (the tiny Gemma 4 fixtures), through real llama.cpp: text."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from analysis.inference import engine as engine_module
from analysis.inference.engine import Engine, EngineError, PromptTooLong, Request
from analysis.inference.registry import ModelSpec, sha256_file
from analysis.inference.types import ModelFileChanged, Sampler
from tests.conftest import TINY_MMPROJ, TINY_Q8, TINY_TEXT

QUESTION = "Hello, what do you see?"


def tiny_spec(**changes) -> ModelSpec:
    values = dict(
        name="tiny", gguf_path=str(TINY_TEXT), n_ctx=256, n_threads=2,
        sampler=Sampler(max_tokens=24),
    )  # fmt: skip
    return ModelSpec(**(values | changes))


@pytest.fixture(scope="module")
def engine():
    engine = Engine(tiny_spec())
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
        f"(see README). {result.stderr[-500:]}"
    )


def test_greedy_generation_is_deterministic_and_streams(engine):
    first: list[str] = []
    result = engine.generate(Request(QUESTION), on_token=first.append)
    again = engine.generate(Request(QUESTION), on_token=lambda token: None)
    assert result.text == again.text == "".join(first)
    assert len(first) > 1
    assert result.completion_tokens == 24 and result.finish_reason == "length"
    assert result.prompt_tokens > 5
    assert QUESTION in result.prompt


def test_it_matches_a_plain_llama_cpp_completion(engine):
    """The engine's own token loop gives what llama-cpp-python's create_completion gives."""
    rendered, _ = engine.render(engine_module.prompts.user_content(QUESTION))
    tokens = engine.llm.tokenize(rendered.encode(), add_bos=False, special=True)
    plain = engine.llm.create_completion(tokens, max_tokens=24, temperature=0.0)
    ours = engine.generate(Request(QUESTION), on_token=lambda token: None)
    # Same tokens; create_completion drops invalid UTF-8 where the engine shows U+FFFD.
    assert ours.text.replace("\ufffd", "") == plain["choices"][0]["text"]


def test_it_stops_between_tokens_when_asked(engine):
    seen: list[str] = []
    result = engine.generate(
        Request(QUESTION), on_token=seen.append, should_stop=lambda: len(seen) >= 2
    )
    assert result.finish_reason == "cancelled"
    assert len(seen) == 2 and result.completion_tokens == 2
    assert result.record["finish_reason"] == "cancelled"


def test_a_question_too_long_for_the_context_is_refused(engine):
    with pytest.raises(PromptTooLong, match="too long for the model's context"):
        engine.generate(Request("describe the image " * 200), on_token=lambda token: None)


def test_the_record_says_how_to_get_the_same_answer(engine):
    result = engine.generate(Request(QUESTION), on_token=lambda token: None)
    record = result.record
    assert record["model"]["gguf_sha256"] == sha256_file(TINY_TEXT)
    assert record["model"]["mmproj_sha256"] == ""
    assert record["llama_cpp_python"] == "0.3.36"
    assert record["prompt"] == result.prompt and "{{ bos_token }}" in record["template"]
    assert record["sampler"] == Sampler(max_tokens=24).as_dict()
    assert record["tokens"]["prompt"] == result.prompt_tokens
    assert record["tokens"]["completion"] == 24 and record["media"] == []
    assert record["prefix_cache"]["status"] == "off"
    assert record["timings"]["tokens_per_s"] > 0
    assert 0 < record["timings"]["time_to_first_token_s"] <= record["timings"]["total_s"]


def test_a_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(EngineError, match="Model file not found"):
        Engine(tiny_spec(gguf_path=str(tmp_path / "nope.gguf")))


def test_a_changed_model_file_refuses_to_load(tmp_path):
    copy = tmp_path / "tiny.gguf"
    shutil.copyfile(TINY_TEXT, copy)
    spec = tiny_spec(gguf_path=str(copy), gguf_sha256=sha256_file(copy))
    Engine(spec).close()  # approved bytes load
    with open(copy, "r+b") as f:  # one byte flipped in the tensor data
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    with pytest.raises(ModelFileChanged, match=f"Model file {copy} has changed"):
        Engine(spec)


def test_a_changed_projector_refuses_to_load_and_says_which_file(tmp_path):
    copy = tmp_path / "mmproj.gguf"
    shutil.copyfile(TINY_MMPROJ, copy)
    spec = tiny_spec(mmproj_path=str(copy), mmproj_sha256="0" * 64)
    with pytest.raises(ModelFileChanged, match=r"Projector file \(mmproj\) .* has changed"):
        Engine(spec)


def test_the_engine_is_loaded_once_and_reloaded_for_another_model(settings, fresh_engine):
    before = engine_module.loads
    first = engine_module.get_engine(tiny_spec())
    assert engine_module.get_engine(tiny_spec()) is first
    assert engine_module.loads == before + 1
    other = engine_module.get_engine(tiny_spec(n_ctx=320))
    assert other is not first and engine_module.loads == before + 2
