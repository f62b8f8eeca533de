"""The token loop: sample, stream, stop — with as little Python per token as possible.

It runs on `Llama.generate` directly (the same loop a bare llama-cpp-python script writes),
not on `create_completion`, whose per-token stop-string scans and response dicts cost time
for nothing here: the chat template's end-of-turn tokens are end-of-generation tokens in the
vocabulary, so checking `llama_vocab_is_eog` is the whole stop rule.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable
from dataclasses import dataclass

import llama_cpp

from analysis.inference.types import Sampler


@dataclass
class Decoded:
    text: str
    n_tokens: int
    finish_reason: str  # "stop" | "length" | "cancelled"
    first_token_at: float | None
    ended_at: float


def stream(
    llm,
    sampler: Sampler,
    *,
    max_tokens: int,
    on_token: Callable[[str], None],
    should_stop: Callable[[], bool] | None = None,
    grammar=None,
) -> Decoded:
    """Generate after an evaluated prompt (llm.input_ids[:llm.n_tokens], logits ready).

    `should_stop` is asked after every token, so a cancelled job stops within one token.
    """
    vocab, is_eog, detokenize = llm._model.vocab, llama_cpp.llama_vocab_is_eog, llm.detokenize
    # A token may end inside a multi-byte character: decode incrementally, never per token.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces: list[str] = []
    n, finish, first_at = 0, "length", None
    tokens = _sample(llm, sampler, grammar)
    for token in tokens:
        if is_eog(vocab, token):
            finish = "stop"
            break
        n += 1
        first_at = first_at or time.perf_counter()
        if text := decoder.decode(detokenize([token])):
            pieces.append(text)
            on_token(text)
        if n >= max_tokens:
            break
        if should_stop is not None and should_stop():
            finish = "cancelled"
            break
    tokens.close()
    if tail := decoder.decode(b"", final=True):
        pieces.append(tail)
        on_token(tail)
    return Decoded("".join(pieces), n, finish, first_at, time.perf_counter())


def _sample(llm, sampler: Sampler, grammar):
    llm.set_seed(sampler.seed)
    return llm.generate(
        llm.input_ids[: llm.n_tokens].tolist(),  # all cached: sampling starts at once
        temp=sampler.temperature,
        top_k=sampler.top_k,
        top_p=sampler.top_p,
        min_p=sampler.min_p,
        repeat_penalty=sampler.repeat_penalty,
        grammar=grammar,
    )
