"""ctypes plumbing for llama.cpp's multimodal library (mtmd) and the KV state of a context.

The engine drives mtmd itself instead of llama-cpp-python's chat handlers: those ignore audio
parts and refuse a projector without vision. Everything that touches a raw pointer
lives here, so engine.py reads as the steps of a request.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import llama_cpp.mtmd_cpp as mtmd
import numpy as np
from llama_cpp._logger import llama_log_callback
from llama_cpp._utils import suppress_stdout_stderr

from analysis.inference.gguf_meta import Caps

TEXT = mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT
IMAGE = mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE
AUDIO = mtmd.MTMD_INPUT_CHUNK_TYPE_AUDIO
# What input_ids holds at positions filled by media embeddings (no token there). A valid id
# (the pad token of Gemma vocabularies), so nothing downstream ever decodes garbage.
MEDIA_PLACEHOLDER = 0

# mtmd logs every chunk at INFO on stderr; route it through llama-cpp's logger, which prints
# only errors unless a Llama was created with verbose=True.
mtmd.mtmd_log_set(llama_log_callback, ctypes.c_void_p(0))
mtmd.mtmd_helper_log_set(llama_log_callback, ctypes.c_void_p(0))


class MtmdError(RuntimeError):
    pass


def marker() -> str:
    """The placeholder the prompt carries once per bitmap, in bitmap order."""
    return mtmd.mtmd_default_marker().decode()


def file_capabilities(path: str | Path) -> Caps:
    """What an mmproj can take, read from its metadata without loading it (about 1 ms)."""
    with suppress_stdout_stderr(disable=False):
        caps = mtmd.mtmd_get_cap_from_file(str(path).encode())
    return Caps(vision=bool(caps.inp_vision), audio=bool(caps.inp_audio))


class Projector:
    """An mtmd context bound to a loaded text model."""

    def __init__(self, path: str, llm, *, use_gpu: bool) -> None:
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.print_timings = False
        params.n_threads = llm.n_threads
        params.warmup = False
        with suppress_stdout_stderr(disable=False):
            self.ctx = mtmd.mtmd_init_from_file(path.encode(), llm.model, params)
        if not self.ctx:
            raise MtmdError(f"{Path(path).name} is not a projector this model can use.")
        self.vision = bool(mtmd.mtmd_support_vision(self.ctx))
        self.audio = bool(mtmd.mtmd_support_audio(self.ctx))
        self.sample_rate = int(mtmd.mtmd_get_audio_sample_rate(self.ctx)) if self.audio else 0

    def close(self) -> None:
        if self.ctx:
            mtmd.mtmd_free(self.ctx)
            self.ctx = None


class Bitmaps:
    """Bitmaps for one prompt, in marker order; mtmd copies the pixels/samples it is given."""

    def __init__(self) -> None:
        self.items: list = []
        self.ids: list[str] = []

    def add_image(self, rgb: np.ndarray, bitmap_id: str) -> None:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        height, width = rgb.shape[:2]
        pixels = rgb.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
        self._add(mtmd.mtmd_bitmap_init(width, height, pixels), bitmap_id)

    def add_audio(self, pcm: np.ndarray, bitmap_id: str) -> None:
        pcm = np.ascontiguousarray(pcm, dtype=np.float32)
        samples = pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._add(mtmd.mtmd_bitmap_init_from_audio(len(pcm), samples), bitmap_id)

    def _add(self, bitmap, bitmap_id: str) -> None:
        if not bitmap:
            raise MtmdError(f"could not create a bitmap for {bitmap_id}")
        # The id comes back on the chunk: that is how chunks are matched to media units.
        mtmd.mtmd_bitmap_set_id(bitmap, bitmap_id.encode())
        self.items.append(bitmap)
        self.ids.append(bitmap_id)

    def __len__(self) -> int:
        return len(self.items)

    def close(self) -> None:
        for bitmap in self.items:
            mtmd.mtmd_bitmap_free(bitmap)
        self.items.clear()


@dataclass
class Chunk:
    kind: int
    n_tokens: int
    tokens: list[int] | None  # text chunks only
    media_id: str | None  # media chunks only: the bitmap id
    ptr: object


class Tokenized:
    """A prompt split by mtmd into text and media chunks (owns the native chunk list)."""

    def __init__(self, projector: Projector, text: str, bitmaps: Bitmaps, add_special: bool):
        raw = text.encode("utf-8")
        given = mtmd.mtmd_input_text()
        given.text, given.text_len = raw, len(raw)
        given.add_special, given.parse_special = add_special, True
        self._chunks = mtmd.mtmd_input_chunks_init()
        array = (mtmd.mtmd_bitmap_p_ctypes * len(bitmaps))(*bitmaps.items)
        with suppress_stdout_stderr(disable=False):
            rc = mtmd.mtmd_tokenize(
                projector.ctx, self._chunks, ctypes.byref(given), array, len(bitmaps)
            )
        if rc != 0:
            self.close()
            # 1: markers and bitmaps disagree in number; 2: a bitmap could not be preprocessed.
            raise MtmdError(f"mtmd could not tokenize the prompt (error {rc})")
        self.chunks = [self._chunk(i) for i in range(mtmd.mtmd_input_chunks_size(self._chunks))]
        self.n_tokens = sum(chunk.n_tokens for chunk in self.chunks)

    def _chunk(self, index: int) -> Chunk:
        ptr = mtmd.mtmd_input_chunks_get(self._chunks, index)
        kind = mtmd.mtmd_input_chunk_get_type(ptr)
        if kind == TEXT:
            count = ctypes.c_size_t()
            data = mtmd.mtmd_input_chunk_get_tokens_text(ptr, ctypes.byref(count))
            tokens = [data[j] for j in range(count.value)]
            return Chunk(kind, len(tokens), tokens, None, ptr)
        media_id = (mtmd.mtmd_input_chunk_get_id(ptr) or b"").decode()
        return Chunk(kind, mtmd.mtmd_input_chunk_get_n_tokens(ptr), None, media_id, ptr)

    def close(self) -> None:
        if self._chunks:
            mtmd.mtmd_input_chunks_free(self._chunks)
            self._chunks = None

    def __enter__(self) -> Tokenized:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def eval_media_chunk(projector: Projector, llm, chunk: Chunk) -> None:
    """Encode one image/audio chunk and decode its embeddings at the context's end."""
    end = eval_media_chunk_at(projector, llm._ctx.ctx, chunk, llm.n_tokens, 0, llm.n_batch)
    llm.input_ids[llm.n_tokens : end] = MEDIA_PLACEHOLDER
    llm.n_tokens = end


def eval_media_chunk_at(projector: Projector, ctx, chunk: Chunk, n_past: int, seq_id: int,
                        n_batch: int) -> int:  # fmt: skip
    """Encode one media chunk into sequence `seq_id` from position `n_past`; returns the
    position after it. No logits: a text chunk always follows."""
    end = llama_cpp.llama_pos(0)
    rc = mtmd.mtmd_helper_eval_chunk_single(
        projector.ctx, ctx, chunk.ptr, n_past, seq_id, n_batch, False, ctypes.byref(end)
    )
    if rc != 0:
        raise MtmdError(f"mtmd could not evaluate a media chunk (error {rc})")
    return end.value


def save_sequence(llm) -> bytes:
    """The KV cells of sequence 0: the evaluated prompt so far, without logits.

    Llama.save_state would also copy the whole logits buffer (n_batch × n_vocab floats:
    512 MB for Gemma's 262k vocabulary), which a prefix never needs: a text chunk is always
    evaluated after it.
    """
    return save_seq(llm._ctx.ctx, 0)


def save_seq(ctx, seq_id: int) -> bytes:
    """The KV cells of one sequence of a context (its positions, keys and values)."""
    size = llama_cpp.llama_state_seq_get_size(ctx, seq_id)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, seq_id)
    return bytes(memoryview(buffer)[:written])


def load_seq(ctx, data: bytes, seq_id: int) -> None:
    """Put saved cells into an empty sequence of a context."""
    buffer = (ctypes.c_uint8 * len(data)).from_buffer_copy(data)
    if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(data), seq_id) != len(data):
        raise MtmdError("could not restore the cached media prefix")


def load_sequence(llm, data: bytes, input_ids: np.ndarray) -> None:
    """Restore a prefix saved by save_sequence into a cleared context."""
    llm.reset()
    llm._ctx.kv_cache_clear()
    load_seq(llm._ctx.ctx, data, 0)
    llm.input_ids[: len(input_ids)] = input_ids
    llm.n_tokens = len(input_ids)
