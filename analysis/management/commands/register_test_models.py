"""Register the tiny random-weight Gemma 4 fixtures (tests/fixtures/models) as models.

    python manage.py register_test_models [--default]

"tiny-gemma4" (vision + audio projector) and "tiny-gemma4-text" (text only). They answer
gibberish, fast: for development and tests of the real llama.cpp paths, never for cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from analysis.inference import registry

FIXTURES = Path(settings.BASE_DIR) / "tests" / "fixtures" / "models"
TEXT = FIXTURES / "tiny-gemma4-f16.gguf"
MMPROJ = FIXTURES / "mmproj-tiny-gemma4-f16.gguf"


class Command(BaseCommand):
    help = "Register the tiny Gemma 4 test models (idempotent)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--default", action="store_true", help="make tiny-gemma4 the default")

    def handle(self, *args: Any, **opts: Any) -> None:
        # Greedy, short answers: the tiny models never stop on their own.
        sampler = {"temperature": 0.0, "max_tokens": 48}
        text = registry.register(
            name="tiny-gemma4-text", gguf=str(TEXT), n_ctx=4096, n_threads=2, sampler=sampler
        )
        multi = registry.register(
            name="tiny-gemma4", gguf=str(TEXT), mmproj=str(MMPROJ),
            n_ctx=4096, n_threads=2, sampler=sampler, default=opts["default"],
        )  # fmt: skip
        for model in (text, multi):
            default = " (default)" if model.is_default else ""
            self.stdout.write(f"{model.name}{default}: {', '.join(model.capabilities)}")
