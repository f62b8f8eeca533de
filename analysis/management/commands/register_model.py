"""Register (or re-approve) a GGUF model by path: hashes it, reads its capabilities.

    python manage.py register_model --name gemma-4-e4b \
        --gguf /srv/models/gemma-4-E4B-it-Q4_K_M.gguf \
        --mmproj /srv/models/mmproj-gemma-4-E4B-it-f16.gguf \
        --n-ctx 32768 --n-gpu-layers -1 --default

See docs/models.md for what each Gemma 4 size needs.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from analysis.inference import registry
from analysis.inference.types import EngineError

SAMPLER_OPTIONS = {
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "min_p": float,
    "repeat_penalty": float,
    "seed": int,
    "max_tokens": int,
}


class Command(BaseCommand):
    help = "Register a GGUF model (+ optional mmproj projector) by server path and SHA-256."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--gguf", required=True, help="absolute path of the model GGUF")
        parser.add_argument("--mmproj", default="", help="absolute path of the projector GGUF")
        parser.add_argument("--n-ctx", type=int, default=8192)
        parser.add_argument("--n-gpu-layers", type=int, default=0, help="-1: all on the GPU")
        parser.add_argument("--n-threads", type=int, default=0, help="0: llama.cpp picks")
        parser.add_argument("--default", action="store_true", help="make it the default model")
        for option, kind in SAMPLER_OPTIONS.items():
            parser.add_argument(f"--{option.replace('_', '-')}", type=kind, default=None)

    def handle(self, *args: Any, **opts: Any) -> None:
        sampler = {k: opts[k] for k in SAMPLER_OPTIONS if opts[k] is not None}
        try:
            model = registry.register(
                name=opts["name"],
                gguf=opts["gguf"],
                mmproj=opts["mmproj"],
                default=opts["default"],
                n_ctx=opts["n_ctx"],
                n_gpu_layers=opts["n_gpu_layers"],
                n_threads=opts["n_threads"],
                **({"sampler": sampler} if sampler else {}),
            )
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        default = " (default)" if model.is_default else ""
        self.stdout.write(
            f"Model {model.name}{default}: {', '.join(model.capabilities)}; "
            f"gguf sha256 {model.gguf_sha256}"
            + (f", mmproj sha256 {model.mmproj_sha256}" if model.mmproj_sha256 else "")
        )
