"""What a projector (mmproj GGUF) can take, from its metadata read in pure Python.

The web process (registering a model, refusing a question the model cannot take) must not
load llama.cpp, so the two keys that say whether there is a vision and an audio encoder are
read by the bounded header reader (gguf_header.py). The answers match llama.cpp's own
`mtmd_get_cap_from_file` (a test compares them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from analysis.inference import gguf_header


@dataclass(frozen=True)
class Caps:
    vision: bool
    audio: bool


def capabilities(path: str | Path) -> Caps:
    metadata = gguf_header.read(path).metadata
    return Caps(
        vision=bool(metadata.get("clip.has_vision_encoder")),
        audio=bool(metadata.get("clip.has_audio_encoder")),
    )
