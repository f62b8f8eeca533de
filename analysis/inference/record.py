"""The reproducibility record of one answer: enough to run it again and get the same text.

Model files by SHA-256, the llama-cpp-python version, the chat template and the full prompt
(markers where media went), each media item by id and SHA-256 with the frame timestamps,
audio segments and pages actually used, the sampler and seed, token counts and timings.
A reproduction (Request.replay) reads `sampler`, `schema` and `media` back from it, and the
layout of a batched answer's decode steps (`batch.layout`), which it replays.
"""

from __future__ import annotations

import hashlib

import llama_cpp

RECORD_VERSION = 1


def timings(marks: dict[str, float], filled, out) -> dict[str, float]:
    started, prefilled = marks["started"], marks["prefilled"]
    generation = out.ended_at - prefilled
    return {
        "plan_s": marks["planned"] - started,  # count the question, probe the media
        "prepare_s": marks["counted"] - marks["planned"],  # decode media, tokenize, fit
        "prompt_eval_s": prefilled - marks["counted"],  # media encoding or cache restore + text
        "media_prefix_s": filled.seconds.get("media_prefix", 0.0),
        "time_to_first_token_s": (out.first_token_at or out.ended_at) - started,
        "generation_s": generation,
        "tokens_per_s": out.n_tokens / generation if generation > 0 else 0.0,
        "total_s": out.ended_at - started,
    }


def build(engine, job, prepared, filled, out, marks, batching: dict | None = None) -> dict:
    spec = engine.spec
    return {
        "version": RECORD_VERSION,
        "model": {
            "id": spec.id,
            "name": spec.name,
            "registered": spec.id is not None,
            "gguf_path": spec.gguf_path,
            "gguf_sha256": engine.hashes["gguf"],
            "mmproj_path": spec.mmproj_path,
            "mmproj_sha256": engine.hashes["mmproj"],
            "n_ctx": spec.n_ctx,
            "n_gpu_layers": spec.n_gpu_layers,
            "n_threads": spec.n_threads,
        },
        "llama_cpp_python": llama_cpp.__version__,
        "template": engine.template,
        "template_sha256": hashlib.sha256(engine.template.encode()).hexdigest(),
        "prompt": prepared.text,
        "schema": job.schema,
        "media": [section.used() for section in job.sections],
        "budget_reduced": prepared.reduced,
        "sampler": job.sampler.as_dict(),
        "tokens": {
            "prompt": prepared.n_tokens,
            "media": prepared.media_tokens,
            "completion": out.n_tokens,
            "n_ctx": spec.n_ctx,
            "chunks": prepared.chunks,
        },
        "prefix_cache": {
            "status": filled.cache,
            "tokens": filled.prefix_tokens,
            "media_chunks_evaluated": filled.media_chunks_evaluated,
        },
        # How the answer was batched: greedy text can depend on the shape of the decode
        # steps it shared, so the record keeps their layout and a reproduction replays it
        # (layout.py, batch.py).
        "batch": batching or {"slots": 1, "mode": "solo"},
        "finish_reason": out.finish_reason,
        "timings": timings(marks, filled, out),
    }
