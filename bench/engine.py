"""The engine against bare llama-cpp-python, and the media prefix cache, side by side.

    .venv/bin/python bench/engine.py [--tokens 128] [--repeat 5] [--frames 12] [--gguf PATH]

1. Decode speed: tokens/s of `Engine.generate` (streaming callback, cancel check, UTF-8
   decoding, record) ÷ a bare `Llama.generate` loop on the same loaded model, the same
   evaluated prompt, in the same run, interleaved. Goal ≥ 0.98.
2. Follow-up time to first token on a video prompt (≥ 1,000 media tokens): with the media
   prefix cache ÷ without it. Goal ≤ 0.2. Both include decoding the media with PyAV.

Models: the tiny Gemma 4 fixtures (tests/fixtures/models), plus any --gguf given (e.g. the
demo SmolLM2, ~/.cache/gemma-web/models/SmolLM2-135M-Instruct.Q4_1.gguf) for part 1.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _django
import llama_cpp

_django.setup()

from django.conf import settings  # noqa: E402

from analysis.inference.engine import Engine, Request  # noqa: E402
from analysis.inference.registry import ModelSpec  # noqa: E402
from analysis.inference.types import Sampler  # noqa: E402
from tests import engine_media  # noqa: E402

MODELS = _django.ROOT / "tests" / "fixtures" / "models"
TINY, MMPROJ = MODELS / "tiny-gemma4-f16.gguf", MODELS / "mmproj-tiny-gemma4-f16.gguf"
QUESTION = "Summarize what happens in this case, step by step, with times."


def bare_rate(engine: Engine, n: int) -> float:
    """A bare loop: evaluate the prompt, then Llama.generate + detokenize, nothing else."""
    llm = engine.llm
    text, add_bos = engine.render(engine_module_prompt())
    tokens = llm.tokenize(text.encode(), add_bos=add_bos, special=True)
    llm.reset()
    llm.eval(tokens)
    vocab, is_eog = llm._model.vocab, llama_cpp.llama_vocab_is_eog
    count, started = 0, time.perf_counter()
    for token in llm.generate(tokens, temp=0.0):
        if is_eog(vocab, token):  # the same stop rule, so both do the same work
            break
        llm.detokenize([token])
        count += 1
        if count >= n:
            break
    return count / (time.perf_counter() - started)


def engine_module_prompt() -> str:
    from analysis.inference import prompts

    return prompts.user_content(QUESTION)


def engine_rate(engine: Engine, n: int) -> float:
    pieces: list[str] = []
    result = engine.generate(
        Request(QUESTION, sampler={"max_tokens": n}),
        on_token=pieces.append,
        should_stop=lambda: False,
    )
    return result.record["timings"]["tokens_per_s"]


def decode_speed(path: Path, n: int, repeat: int) -> None:
    spec = ModelSpec(name=path.name, gguf_path=str(path), n_ctx=2048, n_threads=2,
                     sampler=Sampler(max_tokens=n))  # fmt: skip
    engine = Engine(spec)
    bare_rate(engine, 8), engine_rate(engine, 8)  # warm up
    ours, bare = [], []
    for i in range(repeat):  # interleaved, alternating who goes first: noise hits both alike
        pair = (engine_rate, bare_rate) if i % 2 == 0 else (bare_rate, engine_rate)
        rates = {f: f(engine, n) for f in pair}
        ours.append(rates[engine_rate])
        bare.append(rates[bare_rate])
    engine.close()
    ratios = [o / b for o, b in zip(ours, bare, strict=True)]
    print(
        f"{path.name}: engine {statistics.median(ours):8.1f} tok/s  bare "
        f"{statistics.median(bare):8.1f} tok/s  ratio median of pairs "
        f"{statistics.median(ratios):.3f}, best of each {max(ours) / max(bare):.3f}"
    )


def loop_overhead(n: int = 100_000, rounds: int = 5) -> None:
    """Per-token cost of each loop with the model taken out (Llama.generate replaced by a
    generator of one fixed token): what the engine adds, free of the model's time. Best of
    interleaved rounds: noise only ever adds time."""
    from analysis.inference import decode

    engine = Engine(ModelSpec(name="tiny", gguf_path=str(TINY), n_ctx=256, n_threads=2))
    llm = engine.llm
    llm.eval(llm.tokenize(b"Hello", add_bos=True))
    token = llm.tokenize(b" the", add_bos=False)[0]
    llm.generate = lambda *args, **kwargs: (token for _ in iter(int, 1))
    vocab, is_eog = llm._model.vocab, llama_cpp.llama_vocab_is_eog

    def bare() -> float:
        started = time.perf_counter()
        for i, t in enumerate(llm.generate()):
            if is_eog(vocab, t):
                break
            llm.detokenize([t])
            if i + 1 >= n:
                break
        return (time.perf_counter() - started) / n

    def ours() -> float:
        started = time.perf_counter()
        decode.stream(llm, Sampler(), max_tokens=n, on_token=[].append, should_stop=bool)
        return (time.perf_counter() - started) / n

    times = [(bare(), ours()) for _ in range(rounds)]
    engine.close()
    b, o = min(t[0] for t in times), min(t[1] for t in times)
    print(f"loop cost without the model: bare {b * 1e6:.2f} µs/token, engine {o * 1e6:.2f} "
          f"µs/token: the engine adds {(o - b) * 1e6:.2f} µs/token")  # fmt: skip


def ttft(engine: Engine, clip, question: str) -> tuple[float, dict]:
    result = engine.generate(Request(question, media=[clip]), on_token=lambda token: None)
    return result.record["timings"]["time_to_first_token_s"], result.record


def prefix_cache(frames: int, repeat: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="gemma-bench-video-"))
    settings.GEMMA_MEDIA_LIMITS = {"max_frames": frames, "frame_max_side": 768}
    path = engine_media.mp4(work / "clip.mp4", seconds=float(frames), audio=True, size=(320, 240))
    clip = engine_media.media(path, "video")
    spec = ModelSpec(name="tiny", gguf_path=str(TINY), mmproj_path=str(MMPROJ), n_ctx=8192,
                     n_threads=2, sampler=Sampler(max_tokens=4))  # fmt: skip
    engine = Engine(spec)
    cold, warm = [], []
    for i in range(repeat):
        settings.GEMMA_PREFIX_CACHE_DIR = work / f"cache-{i}"
        settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 0
        seconds, record = ttft(engine, clip, QUESTION)  # no cache at all
        cold.append(seconds)
        settings.GEMMA_PREFIX_CACHE_RAM_MB = settings.GEMMA_PREFIX_CACHE_DISK_MB = 1024
        ttft(engine, clip, QUESTION)  # the first question evaluates and keeps the media
        seconds, hit = ttft(engine, clip, "And who speaks after that?")
        assert hit["prefix_cache"]["status"] == "hit", hit["prefix_cache"]
        warm.append(seconds)
    engine.close()
    c, w = statistics.median(cold), statistics.median(warm)
    tokens = record["tokens"]
    print(f"video: {frames} frames + {len(record['media'][0].get('audio_segments', []))} audio "
          f"segments, {tokens['media']} media tokens of {tokens['prompt']}")  # fmt: skip
    print(f"follow-up TTFT: without cache {c * 1000:7.1f} ms  with cache {w * 1000:7.1f} ms  "
          f"ratio {w / c:.3f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--gguf", action="append", default=[], help="more models for part 1")
    args = parser.parse_args()
    print("1. decode speed, engine ÷ bare llama-cpp-python loop (goal ≥ 0.98)")
    for path in [TINY, *map(Path, args.gguf)]:
        decode_speed(path, args.tokens, args.repeat)
    loop_overhead()
    print("2. media prefix cache, follow-up TTFT with ÷ without (goal ≤ 0.2)")
    prefix_cache(args.frames, args.repeat)


if __name__ == "__main__":
    main()
