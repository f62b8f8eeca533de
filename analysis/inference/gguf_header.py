"""A bounded, pure-Python reader of a GGUF file's header, run before llama.cpp sees the file.

llama.cpp's own GGUF parser is C and has had memory-safety bugs on hostile headers (huge
string lengths, array counts, tensor dimensions). Registration reads the header here first:
every length is checked against what is left of the file before anything is read, counts and
dimensions have sane bounds, and every tensor must lie inside the file. A file that fails is
refused with the reason, and llama.cpp never opens it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

VERSIONS = (2, 3)
MAX_TENSORS = 1_000_000
MAX_KEYS = 100_000
MAX_STRING = 64 * 1024 * 1024  # the longest metadata string (a chat template is a few KB)
MAX_DIMS = 4  # GGML_MAX_DIMS
DEFAULT_ALIGNMENT = 32
SCALARS = {  # value type → struct format
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
STRING, ARRAY = 8, 9
# ggml type → (bytes per block, values per block), for the types models ship in.
TYPE_SIZES = {
    0: (4, 1), 1: (2, 1), 2: (18, 32), 3: (20, 32), 6: (22, 32), 7: (24, 32), 8: (34, 32),
    9: (36, 32), 10: (84, 256), 11: (110, 256), 12: (144, 256), 13: (176, 256),
    14: (210, 256), 15: (292, 256), 24: (1, 1), 25: (2, 1), 26: (4, 1), 27: (8, 1),
    28: (8, 1), 30: (2, 1),
}  # fmt: skip
MAX_TYPE = 64


class BadHeader(Exception):
    """The header is not a well-formed GGUF header; str(exc) says where and why."""


@dataclass
class Header:
    version: int
    tensor_count: int
    metadata: dict = field(default_factory=dict)  # arrays are kept as their length only
    spans: dict = field(default_factory=dict)  # key → (start, end) byte offsets of its entry
    tensors_end: int = 0
    data_start: int = 0

    @property
    def chat_template(self) -> str:
        value = self.metadata.get("tokenizer.chat_template", "")
        return value if isinstance(value, str) else ""


class _Reader:
    def __init__(self, f: BinaryIO, size: int) -> None:
        self.f, self.size = f, size

    @property
    def pos(self) -> int:
        return self.f.tell()

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or n > self.size - self.pos:
            raise BadHeader(f"{what} at byte {self.pos} runs past the end of the file")
        return self.f.read(n)

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        n = self.unpack("<Q", f"{what} length")
        if n > MAX_STRING:
            raise BadHeader(f"{what} at byte {self.pos} claims {n:,} bytes")
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise BadHeader(f"{what} at byte {self.pos} is not UTF-8") from None


def read(path: str | Path) -> Header:
    size = Path(path).stat().st_size
    with open(path, "rb") as f:
        r = _Reader(f, size)
        if r.take(4, "magic") != b"GGUF":
            raise BadHeader("it does not start with GGUF")
        version = r.unpack("<I", "version")
        if version not in VERSIONS:
            raise BadHeader(f"version {version} is not a GGUF version this site reads (2, 3)")
        tensors, keys = r.unpack("<Q", "tensor count"), r.unpack("<Q", "key count")
        if tensors > MAX_TENSORS or keys > MAX_KEYS:
            raise BadHeader(f"it claims {tensors:,} tensors and {keys:,} metadata keys")
        header = Header(version, tensors)
        for _ in range(keys):
            start = r.pos
            key = r.string("a metadata key")
            header.metadata[key] = _value(r, r.unpack("<I", f"type of {key}"), key, depth=0)
            header.spans[key] = (start, r.pos)
        infos = [_tensor(r) for _ in range(tensors)]
        header.tensors_end = r.pos
        alignment = header.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise BadHeader(f"general.alignment {alignment!r} is not a power of two")
        header.data_start = -(-r.pos // alignment) * alignment
        _check_tensors(infos, header.data_start, size)
    return header


def _value(r: _Reader, kind: int, key: str, depth: int):
    if kind in SCALARS:
        return r.unpack(SCALARS[kind], f"value of {key}")
    if kind == STRING:
        return r.string(f"value of {key}")
    if kind == ARRAY and depth == 0:
        item, count = r.unpack("<I", f"item type of {key}"), r.unpack("<Q", f"length of {key}")
        smallest = 8 if item == STRING else struct.calcsize(SCALARS.get(item, "<B"))
        if item not in SCALARS and item != STRING:
            raise BadHeader(f"{key} is an array of unknown type {item}")
        if count * smallest > r.size - r.pos:
            raise BadHeader(f"{key} claims {count:,} items, more than the file holds")
        if item == STRING:
            for _ in range(count):
                r.string(f"an item of {key}")
        else:
            r.take(count * smallest, f"items of {key}")
        return count
    raise BadHeader(f"{key} has an unknown value type {kind}")


def _tensor(r: _Reader) -> tuple[str, list[int], int, int]:
    name = r.string("a tensor name")
    n_dims = r.unpack("<I", f"dimensions of {name}")
    if not 1 <= n_dims <= MAX_DIMS:
        raise BadHeader(f"tensor {name} claims {n_dims} dimensions")
    dims = [r.unpack("<Q", f"a dimension of {name}") for _ in range(n_dims)]
    kind, offset = r.unpack("<I", f"type of {name}"), r.unpack("<Q", f"offset of {name}")
    if kind > MAX_TYPE or any(d == 0 or d > 1 << 40 for d in dims):
        raise BadHeader(f"tensor {name} has type {kind} and shape {dims}")
    return name, dims, kind, offset


def _check_tensors(infos, data_start: int, size: int) -> None:
    for name, dims, kind, offset in infos:
        count = 1
        for d in dims:
            count *= d
        block, per = TYPE_SIZES.get(kind, (0, 1))
        end = data_start + offset + -(-count // per) * block
        if data_start + offset > size or end > size:
            raise BadHeader(f"tensor {name} lies past the end of the file (truncated?)")
