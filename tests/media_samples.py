"""Tiny media for the upload tests, made on the fly as bytes (no binary fixtures committed).

Every clip is a few KB and encodes in milliseconds, so a 2-core CI machine does not notice.
"""

from __future__ import annotations

import io
import math
import os
import struct
import tempfile
import wave
import zlib
from fractions import Fraction

import av
import numpy as np
from PIL import Image

IMAGE_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "tiff": "TIFF", "bmp": "BMP"}


def image(fmt: str = "png", size: tuple[int, int] = (64, 48), color=(200, 40, 40)) -> bytes:
    picture = Image.new("RGB", size, color)
    for x in range(0, size[0], 4):  # a pattern, so that no two sizes or colours hash alike
        picture.putpixel((x, 0), (x % 256, 0, 0))
    out = io.BytesIO()
    picture.save(out, IMAGE_FORMATS.get(fmt, fmt.upper()))
    return out.getvalue()


def gif(frames: int = 3, size: tuple[int, int] = (32, 32)) -> bytes:
    pictures = [Image.new("RGB", size, (i * 80, 0, 255 - i * 80)) for i in range(frames)]
    out = io.BytesIO()
    pictures[0].save(out, "GIF", save_all=True, append_images=pictures[1:], duration=100)
    return out.getvalue()


def png_header(width: int, height: int, bit_depth: int = 1, color_type: int = 0) -> bytes:
    """The PNG signature and an IHDR chunk claiming these dimensions."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bomb(side: int = 20_000) -> bytes:
    """A real decompression bomb: side×side 1-bit black pixels, ~50 MB of pixels in ~50 KB."""
    row = b"\x00" + bytes((side + 7) // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return png_header(side, side) + _chunk(b"IDAT", body) + _chunk(b"IEND", b"")


def wide_png(width: int = 100_000, height: int = 1) -> bytes:
    row = b"\x00" + bytes((width + 7) // 8)
    return (
        png_header(width, height)
        + _chunk(b"IDAT", zlib.compress(row * height))
        + _chunk(b"IEND", b"")
    )


def wav(seconds: float = 0.5, rate: int = 8000, channels: int = 1) -> bytes:
    n = int(seconds * rate)
    tone = [int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(n)]
    frames = b"".join(struct.pack("<" + "h" * channels, *([s] * channels)) for s in tone)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return out.getvalue()


def audio(container: str, codec: str, rate: int = 48000, seconds: float = 0.5) -> bytes:
    """A short stereo tone: ("mp3", "libmp3lame"), ("flac", "flac"), ("ogg", "libopus"),
    ("ipod", "aac") for M4A, ("adts", "aac") for raw AAC."""
    out = io.BytesIO()
    with av.open(out, "w", format=container) as box:
        stream = box.add_stream(codec, rate=rate, layout="stereo")
        _encode_audio(box, stream, rate, seconds)
    return out.getvalue()


def _encode_audio(box, stream, rate: int, seconds: float) -> None:
    t = np.arange(int(rate * seconds)) / rate
    samples = np.tile((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), (2, 1))
    size = stream.codec_context.frame_size or 1024
    resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="stereo")
    for start in range(0, samples.shape[1], size):
        block = np.ascontiguousarray(samples[:, start : start + size])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts, frame.time_base = rate, start, Fraction(1, rate)
        for converted in resampler.resample(frame):
            box.mux(stream.encode(converted))
    box.mux(stream.encode(None))


def video(
    container: str = "mp4",
    codec: str = "libx264",
    *,
    seconds: float = 1.0,
    fps: int = 10,
    size: tuple[int, int] = (64, 48),
    with_audio: bool = False,
    faststart: bool = False,
    gop: int | None = None,
) -> bytes:
    """A clip whose colour changes frame by frame (so posters and strip frames differ).

    faststart moves the index to the front, which needs a real file to rewrite; gop sets
    the keyframe interval in frames (the encoder's default otherwise).
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f"clip.{container}")
        options = {"movflags": "faststart"} if faststart else {}
        with av.open(path, "w", format=container, options=options) as box:
            stream = box.add_stream(codec, rate=fps)
            stream.width, stream.height = size
            stream.pix_fmt = "yuv420p"
            if codec == "libx265":
                stream.options = {"x265-params": "log-level=none"}
            if gop:
                stream.options = {**stream.options, "g": str(gop), "keyint_min": str(gop)}
            sound = box.add_stream(_audio_codec(container), rate=48000) if with_audio else None
            _encode_frames(box, stream, int(seconds * fps), size)
            if sound is not None:
                _encode_audio(box, sound, 48000, seconds)
        with open(path, "rb") as f:
            return f.read()


def _encode_frames(box, stream, count: int, size: tuple[int, int]) -> None:
    for i in range(count):
        level = int(255 * i / max(1, count - 1))
        pixels = np.full((size[1], size[0], 3), (level, 80, 255 - level), dtype=np.uint8)
        box.mux(stream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")))
    box.mux(stream.encode(None))


def _audio_codec(container: str) -> str:
    return {"webm": "libopus", "matroska": "libopus", "avi": "libmp3lame"}.get(container, "aac")


def pdf(pages: list[str], *, catalog: bytes = b"") -> bytes:
    """A minimal hand-written PDF with one line of Helvetica text per page; `catalog` adds
    entries to the document catalog (an /OpenAction, say)."""
    streams = [f"BT /F1 24 Tf 40 700 Td ({text}) Tj ET".encode() for text in pages]
    return _pdf([(s, b"") for s in streams], catalog)


def pdf_stream(content: bytes, *, catalog: bytes = b"") -> bytes:
    """One page whose content stream is `content`, Flate-compressed (a few KB on disk
    however large it is once inflated)."""
    packer = zlib.compressobj(9)
    return _pdf([(packer.compress(content) + packer.flush(), b" /Filter /FlateDecode")], catalog)


def pdf_inflating_to(size_mib: int) -> bytes:
    """One page whose content stream inflates to `size_mib` MiB of zeros, in ~1 KB per MiB.

    Built from one compressed MiB repeated (each piece ends in a full flush, so it stands
    alone) and the zlib checksum of the whole, so the test never compresses it all."""
    block = bytes(2**20)
    packer = zlib.compressobj(9)
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    header, piece = first[:2], first[2:]
    checksum = 1
    for _ in range(size_mib):
        checksum = zlib.adler32(block, checksum)
    stream = header + piece * size_mib + b"\x03\x00" + checksum.to_bytes(4, "big")
    return _pdf([(stream, b" /Filter /FlateDecode")], b"")


def _pdf(contents: list[tuple[bytes, bytes]], catalog: bytes) -> bytes:
    font = 3 + 2 * len(contents)
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(contents)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R" + catalog + b" >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {len(contents)} >>".encode(),
    ]
    for i, (content, extra) in enumerate(contents):
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 800] /Contents {4 + 2 * i} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(
            b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(content), extra, content)
        )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO(b"%PDF-1.4\n")
    out.seek(0, io.SEEK_END)
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (number, body))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1))
    out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
    return out.getvalue()


def dicom(
    frames: int = 1,
    size: tuple[int, int] = (64, 48),
    *,
    window: tuple[float, float] | None = (40.0, 400.0),
    patient: str = "Doe^Jane",
) -> bytes:
    """A DICOM file written by pydicom: 16-bit CT-like pixels (a gradient that brightens
    frame by frame), the window/level in the file, a patient and a study."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    sop_class = "1.2.840.10008.5.1.4.1.1.7.3" if frames > 1 else "1.2.840.10008.5.1.4.1.1.7"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("sample.dcm", {}, file_meta=meta, preamble=bytes(128))
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = patient, "PID-4711", "19700101"
    ds.Modality, ds.StudyDescription, ds.StudyDate = "CT", "Chest without contrast", "20261201"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    width, height = size
    ds.Rows, ds.Columns, ds.SamplesPerPixel = height, width, 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = window
    if frames > 1:
        ds.NumberOfFrames = frames
    ramp = np.linspace(0, 1, width, dtype=np.float64)[None, :].repeat(height, axis=0)
    stack = [(ramp * 400 + 800 + 60 * i).astype(np.uint16) for i in range(frames)]
    ds.PixelData = np.stack(stack).tobytes()
    out = io.BytesIO()
    pydicom.dcmwrite(out, ds, enforce_file_format=True)
    return out.getvalue()


# One real sample of every accepted kind: name → (maker, kind, MIME type).
ACCEPTED = {
    "jpeg": (lambda: image("jpeg"), "image", "image/jpeg"),
    "png": (lambda: image("png"), "image", "image/png"),
    "webp": (lambda: image("webp"), "image", "image/webp"),
    "tiff": (lambda: image("tiff"), "image", "image/tiff"),
    "bmp": (lambda: image("bmp"), "image", "image/bmp"),
    "gif": (gif, "image", "image/gif"),
    "wav": (wav, "audio", "audio/wav"),
    "mp3": (lambda: audio("mp3", "libmp3lame"), "audio", "audio/mpeg"),
    "flac": (lambda: audio("flac", "flac"), "audio", "audio/flac"),
    "m4a": (lambda: audio("ipod", "aac"), "audio", "audio/mp4"),
    "aac": (lambda: audio("adts", "aac"), "audio", "audio/aac"),
    "opus": (lambda: audio("ogg", "libopus"), "audio", "audio/ogg"),
    "mp4-h264": (lambda: video("mp4", "libx264"), "video", "video/mp4"),
    "mp4-h265": (lambda: video("mp4", "libx265"), "video", "video/mp4"),
    "mov": (lambda: video("mov", "libx264"), "video", "video/quicktime"),
    "webm": (lambda: video("webm", "libvpx-vp9"), "video", "video/webm"),
    "mkv": (lambda: video("matroska", "libx264"), "video", "video/x-matroska"),
    "avi": (lambda: video("avi", "mpeg4"), "video", "video/x-msvideo"),
    "pdf": (lambda: pdf(["One"]), "document", "application/pdf"),
    "text": (lambda: "Zeugenaussage — 12 Zeilen\n".encode(), "document", "text/plain"),
    "dicom": (dicom, "dicom", "application/dicom"),
}
