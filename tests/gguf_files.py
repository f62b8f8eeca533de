"""GGUF files for the model-file tests, made from the tiny fixtures by rewriting the header."""

from __future__ import annotations

import struct
from pathlib import Path

from analysis.inference import gguf_header

STRING = 8


def _string(value: bytes) -> bytes:
    return struct.pack("<Q", len(value)) + value


def with_chat_template(source: Path, target: Path, template: str) -> Path:
    """A copy of `source` whose tokenizer.chat_template is `template`; tensors untouched."""
    data = source.read_bytes()
    header = gguf_header.read(source)
    start, end = header.spans["tokenizer.chat_template"]
    key = b"tokenizer.chat_template"
    entry = _string(key) + struct.pack("<I", STRING) + _string(template.encode())
    head = data[:start] + entry + data[end : header.tensors_end]
    alignment = header.metadata.get("general.alignment", gguf_header.DEFAULT_ALIGNMENT)
    head += bytes(-len(head) % alignment)
    target.write_bytes(head + data[header.data_start :])
    return target


def corrupted(source: Path, target: Path, how: str) -> Path:
    data = bytearray(source.read_bytes())
    header = gguf_header.read(source)
    if how == "version":
        data[4:8] = struct.pack("<I", 99)
    elif how == "tensor-count":
        data[8:16] = struct.pack("<Q", 1 << 60)
    elif how == "string-length":  # the first key claims to be 2^62 bytes long
        data[24:32] = struct.pack("<Q", 1 << 62)
    elif how == "array-length":
        start, _ = header.spans["tokenizer.ggml.tokens"]
        key_end = start + 8 + len(b"tokenizer.ggml.tokens")
        data[key_end + 8 : key_end + 16] = struct.pack("<Q", 1 << 58)  # after type, item type
    elif how == "truncated":
        data = data[: header.data_start + (len(data) - header.data_start) // 2]
    else:
        raise ValueError(how)
    target.write_bytes(bytes(data))
    return target
