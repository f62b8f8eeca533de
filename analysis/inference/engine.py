"""The llama.cpp wrapper: one loaded model per worker process, reused by every task.

A `Llama` is not thread-safe and serves one request at a time, so the inference worker runs
with `--pool=solo -c 1` and this module keeps exactly one Engine per process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from jinja2 import TemplateError

from analysis.inference.prompts import fold_system_prompt

log = logging.getLogger(__name__)

# Leave at least this many tokens for the answer, or refuse the prompt as too long.
MIN_ANSWER_TOKENS = 16


class EngineError(Exception):
    """A failure a reviewer should read as the analysis' reason (bad model, prompt too long)."""


class PromptTooLong(EngineError):
    pass


@dataclass
class Generation:
    text: str
    prompt: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EngineConfig:
    model_path: str
    n_ctx: int
    n_gpu_layers: int = 0
    n_threads: int = 0
    seed: int = 0
    temperature: float = 0.0
    max_tokens: int = 512

    @classmethod
    def from_settings(cls) -> EngineConfig:
        return cls(
            model_path=settings.GEMMA_MODEL_PATH,
            n_ctx=settings.GEMMA_N_CTX,
            n_gpu_layers=settings.GEMMA_N_GPU_LAYERS,
            n_threads=settings.GEMMA_N_THREADS,
            seed=settings.GEMMA_SEED,
            temperature=settings.GEMMA_TEMPERATURE,
            max_tokens=settings.GEMMA_MAX_TOKENS,
        )


class _TokenCounter:
    """A stopping criterion that never stops: llama-cpp calls it once per sampled token."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, input_ids, logits) -> bool:
        self.count += 1
        return False


class Engine:
    def __init__(self, config: EngineConfig) -> None:
        path = Path(config.model_path)
        if not path.is_file():
            raise EngineError(f"Model file not found: {path}. Ask an administrator to install it.")
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.config = config
        started = time.perf_counter()
        self.llm = Llama(
            model_path=str(path),
            n_ctx=config.n_ctx,
            n_gpu_layers=config.n_gpu_layers,
            n_threads=config.n_threads or None,
            seed=config.seed,
            verbose=False,
        )
        self.load_seconds = time.perf_counter() - started
        self.name = self.llm.metadata.get("general.name") or path.stem
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise EngineError(f"{path.name} has no chat template; it cannot answer questions.")
        eos = self.llm.token_eos()
        # The model's own template, rendered in llama-cpp's Jinja sandbox (GGUF templates are
        # code-adjacent: never render one outside the sandbox).
        self.formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self.llm._model.token_get_text(eos),
            bos_token=self.llm._model.token_get_text(self.llm.token_bos()),
            stop_token_ids=[eos],
        )
        log.info("loaded %s in %.2fs", path.name, self.load_seconds)

    def render(self, messages: list[dict]):
        try:
            return self.formatter(messages=messages)
        except (TemplateError, ValueError):
            # Some templates refuse a system role (raise_exception); small models answer far
            # better with a real system turn where the template has one, so only fold here.
            return self.formatter(messages=fold_system_prompt(messages))

    def tokenize_prompt(self, rendered) -> list[int]:
        return self.llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )

    def generate(
        self,
        messages: list[dict],
        *,
        on_token: Callable[[str], None],
        should_stop: Callable[[], bool] | None = None,
        max_tokens: int | None = None,
    ) -> Generation:
        """Stream an answer through `on_token`; `should_stop` is checked between tokens."""
        rendered = self.render(messages)
        tokens = self.tokenize_prompt(rendered)
        room = self.config.n_ctx - len(tokens)
        if room < MIN_ANSWER_TOKENS:
            raise PromptTooLong(
                f"The question is too long for the model's context: {len(tokens)} tokens, "
                f"the context holds {self.config.n_ctx} including the answer."
            )
        counter = _TokenCounter()
        criteria = [counter, *(rendered.stopping_criteria or [])]
        self.llm.reset()  # a fresh answer: nothing of the previous question leaks in
        started = time.perf_counter()
        first_token_at = None
        pieces: list[str] = []
        finish_reason = "length"
        stream = self.llm.create_completion(
            prompt=tokens,
            max_tokens=min(max_tokens or self.config.max_tokens, room),
            temperature=self.config.temperature,
            seed=self.config.seed,
            stop=rendered.stop,
            stopping_criteria=_criteria_list(criteria),
            stream=True,
        )
        for chunk in stream:
            choice = chunk["choices"][0]
            if choice["text"]:
                first_token_at = first_token_at or time.perf_counter()
                pieces.append(choice["text"])
                on_token(choice["text"])
            finish_reason = choice.get("finish_reason") or finish_reason
            if should_stop is not None and should_stop():
                stream.close()
                finish_reason = "cancelled"
                break
        ended = time.perf_counter()
        return Generation(
            text="".join(pieces),
            prompt=rendered.prompt,
            prompt_tokens=len(tokens),
            completion_tokens=counter.count,
            finish_reason=finish_reason,
            timings={
                "time_to_first_token": (first_token_at or ended) - started,
                "total": ended - started,
            },
        )

    def close(self) -> None:
        self.llm.close()


def _criteria_list(criteria):
    from llama_cpp import StoppingCriteriaList

    return StoppingCriteriaList(criteria)


_engine: Engine | None = None
_engine_lock = threading.Lock()


def get_engine() -> Engine:
    """The process' engine, loaded on first use and kept warm for every later task."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = Engine(EngineConfig.from_settings())
        return _engine


def reset_engine() -> None:
    """Drop the loaded model (tests, and workers told to switch models)."""
    global _engine
    with _engine_lock:
        if _engine is not None:
            _engine.close()
        _engine = None
