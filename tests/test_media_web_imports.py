"""The web process never loads a decoder or llama.cpp: only the media and inference workers do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

DECODERS = ("av", "pypdf", "pypdfium2", "pydicom", "llama_cpp", "PIL.Image")
ROOT = Path(__file__).resolve().parent.parent

# A fresh interpreter (this one has loaded them all for other tests): what the web process
# imports when it starts, then the modules the upload path uses once a file has arrived.
PROGRAM = """
import json, sys
import django
django.setup()
import gemma_web.urls, gemma_web.asgi
from analysis.media import registry, uploads
registry.sniff(b"\\x89PNG\\r\\n\\x1a\\n" + bytes(64))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {names})))
"""


def test_it_serves_and_takes_uploads_without_loading_a_decoder():
    names = {name.split(".")[0] for name in DECODERS}
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "gemma_web.settings"}
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM.format(names=sorted(names))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    loaded = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "django" not in names
    assert not loaded & set(DECODERS), sorted(loaded & set(DECODERS))
