"""The whole stack against a bare llama-cpp-python loop, side by side in one run.

    .venv/bin/python bench/stream.py [--tokens 256] [--repeat 5] [--viewers 50] [--gguf PATH]

Everything is real and started here: an embedded Valkey (or REDIS_URL), a SQLite database in
a temporary folder, uvicorn serving the project, a Celery inference worker (solo pool, model
preloaded) — each its own process. This process is the browser: it signs in, posts the ask
form and reads the case's WebSocket. The bare loop runs in a process of its own, never at
the same time as the stack. Model: the demo SmolLM2 (`--gguf`, default: the cached demo
file); the follow-up part uses the tiny Gemma 4 with its projector and a video.

1. tokens/s received by one WebSocket client ÷ the bare loop's tokens/s, same model, prompt
   and answer length (goal ≥ 0.97);
2. ask → first token on the client, minus the engine's own time to first token from the
   job's record (goal ≤ 150 ms);
3. 50 viewers of one stream: p99 of (arrival − the batch's send time) (goal ≤ 250 ms), and
   the first viewer's tokens/s ÷ bare;
4. a follow-up in a thread about a video: its first token on the client ÷ the first
   question's (goal ≤ 0.2).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import websockets
from upload import PASSWORD, PYTHON, ROOT, USER, Client, free_port, start_server, start_valkey

DEMO = Path.home() / ".cache" / "gemma-web" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
MODELS = ROOT / "tests" / "fixtures" / "models"
TINY, MMPROJ = MODELS / "tiny-gemma4-f16.gguf", MODELS / "mmproj-tiny-gemma4-f16.gguf"
QUESTION = "Write a long, detailed story about a lighthouse keeper and a storm."


def bare(path: str, tokens: int) -> None:
    """The bare loop (its own process): the engine's prompt, Llama.generate, detokenize."""
    import llama_cpp

    sys.path.insert(0, str(ROOT))
    from analysis.inference import prompts

    threads = int(os.environ.get("GEMMA_N_THREADS") or 1)
    llm = llama_cpp.Llama(model_path=path, n_ctx=2048, n_threads=threads, verbose=False)
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos = llm.token_eos()
    text_of = llm._model.token_get_text
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=text_of(eos), bos_token=text_of(llm.token_bos()),
    )  # fmt: skip
    rendered = formatter(messages=[{"role": "user", "content": prompts.user_content(QUESTION)}])
    prompt = llm.tokenize(
        rendered.prompt.encode(), add_bos=not rendered.added_special, special=True
    )
    vocab, is_eog = llm._model.vocab, llama_cpp.llama_vocab_is_eog
    started = time.perf_counter()
    llm.eval(prompt)
    n, first = 0, None
    for token in llm.generate(prompt, temp=0.0, reset=False):
        if is_eog(vocab, token):
            break
        llm.detokenize([token])
        n += 1
        first = first or time.perf_counter()
        if n >= tokens:
            break
    ended = time.perf_counter()
    print(json.dumps({"rate": (n - 1) / (ended - first), "n": n, "ttft": first - started}))


def bare_rate(path: str, tokens: int) -> float:
    out = subprocess.run([PYTHON, __file__, "--bare", path, "--tokens", str(tokens)],
                         capture_output=True, text=True, check=True, cwd=ROOT)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])["rate"]


class Stack:
    """uvicorn + an inference worker on `model`, sharing the bench's database and Redis."""

    def __init__(self, env: dict, model: dict) -> None:
        self.env = {**env, **model, "GEMMA_PRELOAD_MODEL": "1"}
        self.port = free_port()

    def __enter__(self) -> Stack:
        self.server = start_server(self.env, self.port)
        from gemma_web.supervisor import inference_pool

        pool = inference_pool(int(self.env.get("INFERENCE_SLOTS") or 1))  # as the site runs it
        command = [PYTHON, "-m", "celery", "-A", "gemma_web", "worker", "-Q", "inference",
                   *pool, "--loglevel", "WARNING"]  # fmt: skip
        self.worker = subprocess.Popen(command, cwd=ROOT, env=self.env)
        self.client = Client(self.port)
        try:
            self.client.sign_in()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for process in (self.worker, self.server):
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:  # open sockets can hold uvicorn's shutdown
                process.kill()
                process.wait(timeout=30)

    def ws_headers(self) -> dict:
        cookie = "; ".join(f"{k}={v}" for k, v in self.client.cookies.items())
        return {"Cookie": cookie, "Origin": f"http://127.0.0.1:{self.port}"}

    def request(self, *args):
        """Keep-alive, and a new connection when the server closed the idle one."""
        try:
            return self.client.request(*args)
        except (http.client.RemoteDisconnected, ConnectionError):
            self.client.conn.close()
            return self.client.request(*args)

    def form_token(self, case_id: str) -> str:
        """The ask form's CSRF token, read once from the case page (the page is open in a
        browser before anyone asks; fetching it again would time a page load)."""
        if not getattr(self, "_token", None):
            _, page = self.request("GET", f"/cases/{case_id}/")
            found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
            self._token = found.group(1).decode()
        return self._token

    def ask(self, case_id: str, question: str, **fields) -> str:
        """Post the ask form as the page does (htmx): returns the new analysis' id."""
        token = self.form_token(case_id)
        body = urlencode({"question": question, "csrfmiddlewaretoken": token, **fields}, doseq=True)
        headers = {"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"}
        status, reply = self.request("POST", f"/cases/{case_id}/ask/", body, headers)
        if status != 200:
            raise SystemExit(f"ask refused ({status}): {reply[:300]!r}")
        return re.search(rb'data-analysis="([0-9a-f-]+)"', reply).group(1).decode()


async def watch(stack: Stack, case_id: str, viewers: int, ask) -> tuple[list, float, float, str]:
    """Open `viewers` sockets, ask, read until the answer ends. Returns per viewer the
    batches [(arrival, tokens, sent_at)], the ask's start and the first token's arrival."""
    url = f"ws://127.0.0.1:{stack.port}/ws/cases/{case_id}/"
    sockets = [await websockets.connect(url, additional_headers=stack.ws_headers(),
                                        max_queue=None) for _ in range(viewers)]  # fmt: skip
    seen: list[list] = [[] for _ in sockets]
    started = time.perf_counter()
    analysis = await asyncio.to_thread(ask)

    async def read(i: int, socket) -> None:
        while True:
            message = json.loads(await asyncio.wait_for(socket.recv(), 600))
            if message.get("analysis") != analysis:
                continue
            if message["type"] == "tokens":
                seen[i].append(
                    (time.perf_counter(), message["tokens"], time.time() - message["at"])
                )
            elif message["status"] in ("succeeded", "failed", "cancelled"):
                return

    await asyncio.gather(*(read(i, s) for i, s in enumerate(sockets)))
    for socket in sockets:
        await socket.close()
    return seen, started, seen[0][0][0], analysis


def log(text: str) -> None:
    print(f"   [{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def client_rate(batches: list) -> float:
    (t0, n0, _), (t1, n1, _) = batches[0], batches[-1]
    return (n1 - n0) / (t1 - t0)


def engine_ttft(analysis_id: str) -> float:
    from analysis.models import Analysis

    record = Analysis.objects.get(pk=analysis_id).record
    return record["timings"]["time_to_first_token_s"]


WALL = time.time() - time.perf_counter()  # perf_counter readings -> wall clock, for the DB


def ask_breakdown(analysis_id: str, started: float, first: float) -> dict[str, float]:
    """Where ask -> first token went, from the rows' own timestamps (one machine, one clock):
    the ask request until its row exists, the queue until a worker claims it, the claim
    until the first batch is logged (the engine's prefill is in there), and the log until
    the client has the batch."""
    from analysis.models import Analysis

    row = Analysis.objects.get(pk=analysis_id)
    batch = row.chunks.order_by("seq").values_list("created_at", flat=True).first()
    created, claimed, logged = (t.timestamp() for t in (row.created_at, row.started_at, batch))
    ttft = row.record["timings"]["time_to_first_token_s"]
    return {
        "request": created - (WALL + started),
        "queue": claimed - created,
        "claim->log - engine": logged - claimed - ttft,
        "log->client": WALL + first - logged,
    }


def decode_parts(env: dict, case_id: str, gguf: str, args) -> None:
    model = {"GEMMA_MODEL_PATH": gguf, "GEMMA_MAX_TOKENS": str(args.tokens), "GEMMA_N_CTX": "2048"}
    with Stack(env, model) as stack:
        one = lambda: stack.ask(case_id, QUESTION)  # noqa: E731
        log("stack up; warming")
        asyncio.run(watch(stack, case_id, 1, one))  # warm: model, connections, caches
        log("warm")
        ours, bares, overheads, parts = [], [], [], []
        for i in range(args.repeat):  # interleaved, alternating who goes first
            for step in ("stack", "bare") if i % 2 == 0 else ("bare", "stack"):
                if step == "bare":
                    bares.append(bare_rate(gguf, args.tokens))
                    continue
                seen, started, first, analysis = asyncio.run(watch(stack, case_id, 1, one))
                ours.append(client_rate(seen[0]))
                overheads.append(first - started - engine_ttft(analysis))
                parts.append(ask_breakdown(analysis, started, first))
        ratios = [o / b for o, b in zip(ours, bares, strict=True)]
        print(f"1. client {statistics.median(ours):.1f} tok/s, bare {statistics.median(bares):.1f}"
              f" tok/s: ratio median {statistics.median(ratios):.3f} (goal >= 0.97)")  # fmt: skip
        print(f"2. ask -> first token over the engine's: median "
              f"{statistics.median(overheads) * 1000:.1f} ms (goal <= 150 ms)")  # fmt: skip
        print("   of which (medians): " + ", ".join(
            f"{k} {statistics.median(p[k] for p in parts) * 1000:.1f} ms" for k in parts[0]
        ))  # fmt: skip
        delays, rates, crowd_bare = [], [], []
        for _ in range(max(1, args.repeat // 2)):
            seen, *_ = asyncio.run(watch(stack, case_id, args.viewers, one))
            delays += [delay for viewer in seen for (_, _, delay) in viewer]
            rates.append(client_rate(seen[0]))
            crowd_bare.append(bare_rate(gguf, args.tokens))
        delays.sort()
        p99 = delays[min(len(delays) - 1, int(len(delays) * 0.99))]
        crowd = statistics.median(r / b for r, b in zip(rates, crowd_bare, strict=True))
        print(f"3. {args.viewers} viewers: p99 delay {p99 * 1000:.1f} ms over {len(delays)} "
              f"arrivals (goal <= 250 ms); tokens/s ÷ bare {crowd:.3f}")  # fmt: skip


def follow_up_part(env: dict, case_id: str, args) -> None:
    from django.contrib.auth import get_user_model

    from tests import engine_media
    from tests.media_api import make_asset

    model = {"GEMMA_MODEL_PATH": str(TINY), "GEMMA_MMPROJ_PATH": str(MMPROJ),
             "GEMMA_N_CTX": "8192", "GEMMA_MAX_TOKENS": "8",
             "GEMMA_VIDEO_MAX_FRAMES": "12"}  # fmt: skip
    user = get_user_model().objects.get(username=USER)
    work = Path(tempfile.mkdtemp(prefix="gemma-bench-stream-"))
    with Stack(env, model) as stack:
        asyncio.run(watch(stack, case_id, 1, lambda: stack.ask(case_id, "Ready?")))  # warm
        firsts, follows = [], []
        for i in range(args.repeat):
            # A new clip each round (another length, another hash): the first question misses.
            path = engine_media.mp4(work / f"clip-{i}.mp4", seconds=12.0 + i, audio=True,
                                    size=(320, 240))  # fmt: skip
            clip = make_asset(stack_case(case_id), user, path.read_bytes(), f"clip-{i}.mp4")
            ask = lambda c=clip: stack.ask(case_id, "What happens?", media=[str(c.id)])  # noqa: E731
            seen, started, first, analysis = asyncio.run(watch(stack, case_id, 1, ask))
            then = lambda a=analysis: stack.ask(case_id, "And after that?", follows=a)  # noqa: E731
            _, started2, first2, _ = asyncio.run(watch(stack, case_id, 1, then))
            firsts.append(first - started)
            follows.append(first2 - started2)
    f, u = statistics.median(firsts), statistics.median(follows)
    print(f"4. video thread: first question {f * 1000:.0f} ms to first token, follow-up "
          f"{u * 1000:.0f} ms: ratio {u / f:.3f} (goal <= 0.2)")  # fmt: skip


def decode_thread_costs(case_id: str, n: int = 200) -> None:
    """0. What a flush and a cancel check cost the calling (decode) thread, before and after:
    `async_to_sync(group_send)` per flush against handing the message to the publisher, and
    a database query per check against reading the watch's flag. Interleaved, medians."""
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer
    from django.contrib.auth import get_user_model

    from analysis import pipeline, streaming
    from analysis.models import Analysis

    layer, group = get_channel_layer(), streaming.case_group(case_id)
    message = {"type": "analysis.tokens", "analysis": "x", "seq": 1, "text": "word " * 10}
    user = get_user_model().objects.get(username=USER)
    analysis = Analysis.objects.create(case_id=case_id, created_by=user, question="cost?",
                                       status=Analysis.Status.RUNNING)  # fmt: skip
    rows = Analysis.objects.filter(pk=analysis.pk, cancel_requested=True)
    watch = pipeline.StopWatch(analysis)
    costs: dict[str, list[float]] = {"send": [], "publish": [], "query": [], "flag": [],
                                     "log": []}  # fmt: skip
    seq = iter(range(1, 10**6))
    calls = {
        "log": lambda: analysis.chunks.create(seq=next(seq), text="word " * 10),
        "send": lambda: async_to_sync(layer.group_send)(group, message),
        "publish": lambda: streaming.publisher.send(group, message),
        "query": rows.exists,
        "flag": watch.stopped,
    }
    for _ in range(n):
        for name, call in calls.items():
            started = time.perf_counter()
            call()
            costs[name].append(time.perf_counter() - started)
    streaming.drain()
    watch.close()
    ms = {name: statistics.median(values) * 1000 for name, values in costs.items()}
    print(f"0. on the decode thread, median of {n}: a flush's send {ms['send']:.3f} ms "
          f"(async_to_sync) -> {ms['publish']:.3f} ms (publisher); a cancel check "
          f"{ms['query']:.3f} ms (query) -> {ms['flag']:.4f} ms (flag); a flush's log row "
          f"{ms['log']:.3f} ms")  # fmt: skip


def stack_case(case_id: str):
    from analysis.models import Case

    return Case.objects.get(pk=case_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bare")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--gguf", default=str(DEMO))
    parser.add_argument("--skip-follow-up", action="store_true")
    parser.add_argument("--costs-only", action="store_true", help="part 0 only")
    parser.add_argument("--only-follow-up", action="store_true", help="parts 0 and 4")
    # One thread by default: on a shared, oversubscribed machine llama.cpp's spinning
    # threads wait on each other; both sides use the same number.
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    if args.bare:
        return bare(args.bare, args.tokens)
    folder = Path(tempfile.mkdtemp(prefix="gemma-bench-stream-"))
    valkey = None
    if not os.environ.get("REDIS_URL"):
        valkey, os.environ["REDIS_URL"] = start_valkey(folder)
    os.environ.update(GEMMA_VAR_DIR=str(folder), CHANNELS_PREFIX=f"bench-{os.getpid()}",
                      GEMMA_N_THREADS=str(args.threads))  # fmt: skip
    import _django

    _django.setup()
    from django.contrib.auth import get_user_model
    from django.test import override_settings

    from analysis.models import Case

    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        user = get_user_model().objects.create_user(USER, password=PASSWORD)  # as the server hashes
    case_id = str(Case.create_with_owner(user=user, title="Stream bench").id)
    env = dict(os.environ)
    subprocess.run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT,
                   env=env, check=True)  # fmt: skip
    try:
        decode_thread_costs(case_id)
        if args.costs_only:
            return
        if not args.only_follow_up:
            decode_parts(env, case_id, args.gguf, args)
        if not args.skip_follow_up:
            follow_up_part(env, case_id, args)
    finally:
        if valkey is not None:
            valkey.stop()


if __name__ == "__main__":
    main()
