"""Concurrent questions: the whole stack against llama.cpp's own llama-server, side by side.

    .venv/bin/python bench/concurrency.py [--tokens 128] [--repeat 3] [--threads 1]
        [--sizes 1,4,8] [--port-base 18200]

Same run, same model (the demo SmolLM2, installed by `manage.py install_demo_model`), same
prompt (the app's chat prompt, rendered by its template), greedy, the same thread count and
flash attention off on both sides. llama-server is built once from the llama.cpp vendored in
the llama-cpp-python sdist this project pins, with the project's portable flags (the flags
scripts/bootstrap uses for the wheel), and cached under ~/.cache/gemma-web/.

App side: uvicorn + a Celery inference worker with INFERENCE_SLOTS=K (the site's own pool:
solo for 1, threads for more), SQLite and Valkey; this process is the browser: it posts the
ask form and reads the case's WebSocket. llama-server side: `-np K`, `-c K×n_ctx` (each slot
the app's n_ctx), streaming `/completion` requests with `cache_prompt: false` (the app keeps
no text-prompt cache either). The sides alternate who goes first; medians are reported.

1. K concurrent questions (K = 4, 8): aggregate tokens/s = all answers' tokens ÷ (first ask →
   last token on the client), app ÷ llama-server -np K (goal >= 0.95);
2. one question: its tokens/s on the client (first → last token), app ÷ llama-server -np 1
   (goal >= 0.95);
3. a question that arrives while 3 others stream: p95 of ask → its first token on the client,
   app ÷ llama-server -np 4 (lower is better; 1.0 = the same).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

import websockets
from stream import DEMO, QUESTION, Stack, log
from upload import PASSWORD, PYTHON, ROOT, USER, Client

LLAMA_VERSION = "0.3.36"
CACHE = Path(os.environ.get("GEMMA_CACHE_DIR") or Path.home() / ".cache" / "gemma-web")
SERVER = CACHE / f"llama-server-{LLAMA_VERSION}-portable-avx2" / "llama-server"
N_CTX = 2048


def portable_flags() -> list[str]:
    """The llama.cpp build flags scripts/bootstrap builds the wheel with (one source)."""
    text = (ROOT / "scripts" / "bootstrap").read_text()
    return re.search(r'^PORTABLE_FLAGS="([^"]+)"', text, re.M).group(1).split()


def build_llama_server() -> Path:
    """llama-server from the sdist's vendored llama.cpp, portable flags, built once (-j2)."""
    if SERVER.exists():
        return SERVER
    work = Path(tempfile.mkdtemp(prefix="gemma-llama-server-"))
    log(f"building llama-server {LLAMA_VERSION} once into {SERVER.parent} (several minutes)")
    subprocess.run([PYTHON, "-m", "pip", "download", f"llama-cpp-python=={LLAMA_VERSION}",
                    "--no-deps", "--no-binary", ":all:", "-d", str(work)], check=True)  # fmt: skip
    subprocess.run(["tar", "xzf", next(work.glob("*.tar.gz")), "-C", work], check=True)
    source = next(work.glob("llama_cpp_python-*")) / "vendor" / "llama.cpp"
    build = SERVER.parent.with_suffix(".build")
    flags = ["-DCMAKE_BUILD_TYPE=Release", "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_SERVER=ON",
             "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_OPENSSL=OFF",
             *portable_flags()]  # fmt: skip
    subprocess.run(["cmake", "-S", source, "-B", build, *flags], check=True)
    subprocess.run(["cmake", "--build", build, "--target", "llama-server", "-j2"], check=True)
    SERVER.parent.mkdir(parents=True, exist_ok=True)
    partial = SERVER.with_suffix(".part")
    partial.write_bytes((build / "bin" / "llama-server").read_bytes())
    partial.chmod(0o755)
    partial.replace(SERVER)  # only a finished build looks done
    return SERVER


class LlamaServer:
    def __init__(self, gguf: str, slots: int, threads: int, port: int) -> None:
        self.argv = [str(SERVER), "-m", gguf, "-np", str(slots), "-c", str(N_CTX * slots),
                     "-t", str(threads), "-tb", str(threads), "-fa", "off", "-b", "2048",
                     "-ub", "512", "--host", "127.0.0.1", "--port", str(port),
                     "--no-webui", "--log-disable"]  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> LlamaServer:
        self.process = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)
        self.__exit__()
        raise SystemExit("llama-server did not start")

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def complete(self, prompt: str, tokens: int, started: float) -> tuple[dict, asyncio.Task]:
        """Start one streaming completion; its entry fills with (time, tokens so far)."""
        body = json.dumps({"prompt": prompt, "n_predict": tokens, "temperature": 0.0,
                           "stream": True, "cache_prompt": False}).encode()  # fmt: skip
        entry: dict = {"started": started, "arrivals": []}
        return entry, asyncio.create_task(asyncio.to_thread(self._stream, body, entry))

    def _stream(self, body: bytes, entry: dict) -> None:
        request = urllib.request.Request(f"{self.url}/completion", body,
                                         {"Content-Type": "application/json"})  # fmt: skip
        n = 0
        with urllib.request.urlopen(request, timeout=600) as reply:
            for line in reply:
                if not line.startswith(b"data: "):
                    continue
                event = json.loads(line[6:])
                if event.get("content"):
                    n += 1
                    entry["arrivals"].append((time.perf_counter(), n))
                if event.get("stop"):
                    break


def app_prompt(gguf: str) -> str:
    """The prompt the app builds for QUESTION, rendered by the model's own template."""
    import llama_cpp
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    from analysis.inference import prompts

    llm = llama_cpp.Llama(model_path=gguf, vocab_only=True, verbose=False)
    text_of = llm._model.token_get_text
    formatter = Jinja2ChatFormatter(
        template=llm.metadata["tokenizer.chat_template"],
        eos_token=text_of(llm.token_eos()), bos_token=text_of(llm.token_bos()),
    )  # fmt: skip
    content = prompts.user_content(QUESTION)
    return formatter(messages=[{"role": "user", "content": content}]).prompt


# --- the app side ------------------------------------------------------------------------------


class Browsers:
    """One signed-in browser per concurrent reviewer, each with the case page already open:
    an ask is the form's POST on that browser's own connection."""

    def __init__(self, stack: Stack, case_id: str, count: int) -> None:
        _, page = stack.request("GET", f"/cases/{case_id}/")
        self.token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        self.case_id, self.clients = case_id, []
        for _ in range(count):
            client = Client(stack.port)
            client.cookies = dict(stack.client.cookies)
            self.clients.append(client)

    def ask(self, i: int) -> str:
        body = urlencode({"question": QUESTION, "csrfmiddlewaretoken": self.token.decode()})
        headers = {"Content-Type": "application/x-www-form-urlencoded", "HX-Request": "true"}
        status, reply = self.clients[i].request("POST", f"/cases/{self.case_id}/ask/", body,
                                                headers)  # fmt: skip
        if status != 200:
            raise SystemExit(f"ask refused ({status}): {reply[:300]!r}")
        return re.search(rb'data-analysis="([0-9a-f-]+)"', reply).group(1).decode()


async def app_round(stack: Stack, case_id: str, count: int, late: bool = False) -> list[dict]:
    """Ask `count` questions at once (or, `late`: count-1, then one more once those stream);
    per question: when it was asked and its token arrivals on the client."""
    browsers = stack.browsers
    url = f"ws://127.0.0.1:{stack.port}/ws/cases/{case_id}/"
    socket = await websockets.connect(url, additional_headers=stack.ws_headers(), max_queue=None)
    asked: dict[str, dict] = {}
    done: set[str] = set()

    async def ask(i: int) -> None:
        started = time.perf_counter()
        analysis = await asyncio.to_thread(browsers.ask, i)
        asked[analysis] = {"started": started, "arrivals": []}

    async def read() -> None:
        while len(done) < count:
            message = json.loads(await asyncio.wait_for(socket.recv(), 600))
            entry = asked.get(message.get("analysis"))
            if entry is None:
                continue  # another round's, or a status before the ask returned
            if message["type"] == "tokens":
                entry["arrivals"].append((time.perf_counter(), message["tokens"]))
            elif message["status"] in ("succeeded", "failed", "cancelled"):
                done.add(message["analysis"])

    reader = asyncio.create_task(read())
    await asyncio.gather(*(ask(i) for i in range(count - late)))
    if late:
        while not all(entry["arrivals"] for entry in asked.values()):
            await asyncio.sleep(0.01)
        await ask(count - 1)
    await reader
    await socket.close()
    return sorted(asked.values(), key=lambda entry: entry["started"])


async def server_round(server: LlamaServer, prompt: str, count: int, tokens: int,
                       late: bool = False) -> list[dict]:  # fmt: skip
    """The same round against llama-server."""
    started = time.perf_counter()
    jobs = [server.complete(prompt, tokens, started) for _ in range(count - late)]
    if late:
        while not all(entry["arrivals"] for entry, _ in jobs):
            await asyncio.sleep(0.01)
        jobs.append(server.complete(prompt, tokens, time.perf_counter()))
    for _, task in jobs:
        await task
    return [entry for entry, _ in jobs]


# --- what is compared --------------------------------------------------------------------------


def aggregate(entries: list[dict]) -> float:
    """All answers' tokens ÷ (first ask → last token), as the client saw them."""
    first = min(entry["started"] for entry in entries)
    last = max(entry["arrivals"][-1][0] for entry in entries)
    return sum(entry["arrivals"][-1][1] for entry in entries) / (last - first)


def single_rate(entries: list[dict]) -> float:
    (t0, n0), (t1, n1) = entries[0]["arrivals"][0], entries[0]["arrivals"][-1]
    return (n1 - n0) / (t1 - t0)


def late_ttft(entries: list[dict]) -> float:
    late = max(entries, key=lambda entry: entry["started"])
    return late["arrivals"][0][0] - late["started"]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def side_by_side(stack, server, case_id, prompt, args, count, late=False):
    """Alternate who goes first; returns the app's and the server's rounds."""
    ours, theirs = [], []
    for i in range(args.repeat if not late else args.late_repeat):
        order = ("app", "server") if i % 2 == 0 else ("server", "app")
        for side in order:
            if side == "app":
                ours.append(asyncio.run(app_round(stack, case_id, count, late)))
            else:
                theirs.append(asyncio.run(server_round(server, prompt, count, args.tokens, late)))
        log(f"{count} {'(late) ' if late else ''}round {i + 1} done")
    return ours, theirs


def measure(env, case_id, prompt, count: int, args, port: int) -> None:
    slots = args.single_slots if count == 1 else count
    model = {"GEMMA_MODEL_PATH": args.gguf, "GEMMA_MAX_TOKENS": str(args.tokens),
             "GEMMA_N_CTX": str(N_CTX), "INFERENCE_SLOTS": str(slots)}  # fmt: skip
    stack = Stack(env, model)
    stack.port = port
    with stack, LlamaServer(args.gguf, count, args.threads, port + 1) as server:
        stack.browsers = Browsers(stack, case_id, max(count, 4))
        asyncio.run(app_round(stack, case_id, 1))  # warm: model, connections
        asyncio.run(server_round(server, prompt, 1, 8))
        ours, theirs = side_by_side(stack, server, case_id, prompt, args, count)
        measure_of = single_rate if count == 1 else aggregate
        ratios = [measure_of(o) / measure_of(t) for o, t in zip(ours, theirs, strict=True)]
        app = statistics.median(map(measure_of, ours))
        peer = statistics.median(map(measure_of, theirs))
        what = (f"one question's tokens/s (INFERENCE_SLOTS={slots})" if count == 1
                else f"{count} questions' aggregate tokens/s")  # fmt: skip
        print(f"{what}: app {app:.1f}, llama-server -np {count} {peer:.1f}; ratio median "
              f"{statistics.median(ratios):.3f} (all: {', '.join(f'{r:.3f}' for r in ratios)}; "
              "goal >= 0.95)", flush=True)  # fmt: skip
        if count == 4:
            ours, theirs = side_by_side(stack, server, case_id, prompt, args, 4, late=True)
            app, peer = p95([late_ttft(o) for o in ours]), p95([late_ttft(t) for t in theirs])
            print(f"a question arriving while 3 stream: p95 time to first token app "
                  f"{app * 1000:.0f} ms, llama-server -np 4 {peer * 1000:.0f} ms; ratio "
                  f"{app / peer:.2f} over {len(ours)} rounds a side", flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--late-repeat", type=int, default=6)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sizes", default="1,4,8")
    # The single question on a worker of this many slots: 1 is the plain loop (the CPU
    # default), more is the batching engine answering it alone.
    parser.add_argument("--single-slots", type=int, default=1)
    parser.add_argument("--port-base", type=int, default=18200)
    parser.add_argument("--gguf", default=str(DEMO))
    args = parser.parse_args()
    build_llama_server()
    folder = Path(tempfile.mkdtemp(prefix="gemma-bench-concurrency-"))
    from upload import start_valkey

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
        user = get_user_model().objects.create_user(USER, password=PASSWORD)
    case_id = str(Case.create_with_owner(user=user, title="Concurrency bench").id)
    env = dict(os.environ)
    subprocess.run([PYTHON, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT,
                   env=env, check=True)  # fmt: skip
    prompt = app_prompt(args.gguf)
    print(f"model {Path(args.gguf).name}, {args.tokens}-token answers, {args.threads} thread(s)"
          f", flash attention off on both sides, n_ctx {N_CTX} per slot", flush=True)  # fmt: skip
    try:
        for i, count in enumerate(int(size) for size in args.sizes.split(",")):
            measure(env, case_id, prompt, count, args, args.port_base + 10 * i)
    finally:
        if valkey is not None:
            valkey.stop()


if __name__ == "__main__":
    sys.exit(main())
