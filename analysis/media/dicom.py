"""DICOM (medical images): sniff, probe and render with pydicom, model input like a short video.

The media page shows the image with the window/level the file carries (else the full range),
with the study's metadata. Patient-identifying tags are kept apart under "patient": only the
case's members see them, on the case's pages; the model receives the rendered pixels only.
A multi-frame file (a cine loop, a stack of slices) is offered to the model as a few frames
spread over it, as a video is. pydicom and numpy are imported inside the functions that
parse: those run in the media worker's sandbox and the inference worker.
"""

from __future__ import annotations

import struct
from contextlib import contextmanager
from pathlib import Path

from analysis.media import images
from analysis.media.types import Detected, MediaDecodeError, MediaKind, MediaRejected, Sniffed

MIME = "application/dicom"
STUDY_TAGS = (
    "Modality", "StudyDescription", "SeriesDescription", "BodyPartExamined", "StudyDate",
    "Manufacturer", "ManufacturerModelName", "PhotometricInterpretation",
)  # fmt: skip
PATIENT_TAGS = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "OtherPatientIDs", "AccessionNumber", "InstitutionName", "ReferringPhysicianName",
)  # fmt: skip
# Uncompressed pixel data: what pydicom decodes without plugins.
NATIVE_SYNTAXES = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"}
MAX_FRAMES = 2000
STRIP_FRAMES = 8
PREVIEW_SIDE = 2048


def sniff(head: bytes) -> Sniffed | None:
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    if head[:2] == b"MZ" or head[:4] == b"\x7fELF":
        # The 128-byte preamble is free-form: an executable hidden there is a polyglot.
        raise MediaRejected("Detected a DICOM file whose preamble holds an executable.")
    return Sniffed("dicom", "dicom", MIME, "DICOM image", ".dcm")


@contextmanager
def _parsing(path: Path, what: str = "header"):
    """pydicom converts an element's bytes only when it is first read, so a damaged element
    fails at whichever access reaches it, with whatever its value parser raises (a length
    that is no multiple of the value size, an unknown VR, a number that is not one): every
    one of them is a refusal of the file, never an error of the worker."""
    from pydicom.errors import BytesLengthException, InvalidDicomError

    broken = (
        InvalidDicomError, BytesLengthException, NotImplementedError, struct.error, EOFError,
        AttributeError, KeyError, ValueError, TypeError, IndexError, OverflowError, OSError,
    )  # fmt: skip
    try:
        yield
    except broken as exc:
        why = str(exc).replace(str(path), "the file")
        why = why if len(why) <= 240 else why[:240] + "…"
        raise MediaRejected(f"The DICOM {what} could not be read: {why}") from exc


def _read(path: Path):
    import pydicom

    with _parsing(path):
        dataset = pydicom.dcmread(path)
        syntax = str(dataset.file_meta.TransferSyntaxUID)
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
        bits = int(dataset.BitsAllocated)
    if syntax not in NATIVE_SYNTAXES:
        raise MediaRejected(f"DICOM pixel data in transfer syntax {syntax} is not accepted.")
    if "PixelData" not in dataset:
        raise MediaRejected("The DICOM file has no image (no pixel data).")
    images.check_size(columns, rows, "DICOM")
    if not 1 <= frames <= MAX_FRAMES:
        raise MediaRejected(f"The DICOM file claims {frames} frames; at most {MAX_FRAMES}.")
    with _parsing(path):
        samples = int(getattr(dataset, "SamplesPerPixel", 1) or 1)
        stored = len(dataset.PixelData)
    expected = rows * columns * frames * samples * bits // 8
    if bits not in (8, 16) or stored < expected:
        raise MediaRejected(
            f"The DICOM pixel data is damaged: {stored} bytes for "
            f"{frames} frame(s) of {columns}×{rows} at {bits} bits."
        )
    return dataset, frames


def _text(dataset, tag: str) -> str:
    value = dataset.get(tag)
    return str(value)[:200] if value not in (None, "") else ""


def probe(path: Path, key: str) -> Detected:
    dataset, frames = _read(path)
    with _parsing(path, "image"):
        render(dataset, 0)  # the first frame must decode
    width, height = int(dataset.Columns), int(dataset.Rows)
    metadata: dict = {"width": width, "height": height, "frames": frames}
    with _parsing(path):
        metadata.update({t: v for t in STUDY_TAGS if (v := _text(dataset, t))})
        center, window = _window(dataset)
        patient = {t: v for t in PATIENT_TAGS if (v := _text(dataset, t))}
    if window:
        metadata["window"] = f"{center:g}/{window:g}"
    if patient:
        metadata["patient"] = patient
    modality = metadata.get("Modality", "")
    label = f"DICOM {modality + ' ' if modality else ''}image, {width}×{height}"
    if frames > 1:
        label += f", {frames} frames"
    return Detected("dicom", MIME, label, metadata)


def _window(dataset) -> tuple[float, float]:
    def first(value):
        return float(
            value[0] if hasattr(value, "__len__") and not isinstance(value, str) else value
        )

    try:
        return first(dataset.WindowCenter), first(dataset.WindowWidth)
    except (AttributeError, ValueError, TypeError, IndexError):
        return 0.0, 0.0


def render(dataset, index: int):
    """Frame `index` as 8-bit RGB pixels: modality rescale, then the file's window/level."""
    import numpy as np

    try:
        pixels = dataset.pixel_array
    except (ValueError, TypeError, AttributeError, NotImplementedError) as exc:
        raise MediaRejected(f"The DICOM pixel data does not decode: {exc}") from exc
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    frame = pixels[index] if frames > 1 else pixels
    if frame.ndim == 3:  # colour (RGB) pixels are shown as they are
        return np.ascontiguousarray(frame.astype(np.uint8))
    values = frame.astype(np.float64) * float(getattr(dataset, "RescaleSlope", 1) or 1)
    values += float(getattr(dataset, "RescaleIntercept", 0) or 0)
    center, window = _window(dataset)
    if window > 0:
        low, high = center - window / 2, center + window / 2
    else:
        low, high = float(values.min()), float(values.max())
    scaled = np.clip((values - low) / max(high - low, 1e-9), 0, 1) * 255
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        scaled = 255 - scaled  # 0 is white in this interpretation
    grey = scaled.astype(np.uint8)
    return np.stack([grey, grey, grey], axis=-1)


def _picture(dataset, index: int):
    from PIL import Image

    return Image.fromarray(render(dataset, index), "RGB")


def strip_indices(frames: int, count: int) -> list[int]:
    """Frames spread evenly over the file (the strip and the model take the same ones)."""
    count = max(1, min(frames, count))
    return sorted({min(frames - 1, int((i + 0.5) * frames / count)) for i in range(count)})


def derive(asset_id, path: Path, mime: str) -> tuple[dict, dict]:
    dataset, frames = _read(path)
    preview = images.save_jpeg(asset_id, "preview.jpg", _picture(dataset, 0), PREVIEW_SIDE)
    derived = {"preview": preview, "thumbnail": images.thumbnail_from(asset_id, preview)}
    metadata: dict = {}
    if frames > 1:
        chosen = strip_indices(frames, STRIP_FRAMES)
        derived["strip"] = [
            images.save_jpeg(asset_id, f"frame-{i + 1:04d}.jpg", _picture(dataset, i), 320)
            for i in chosen
        ]
        metadata["strip_frames"] = [i + 1 for i in chosen]
    return metadata, derived


# --- what the model receives ---------------------------------------------------------------


def frames_for_model(path: Path, indices: list[int], max_side: int) -> list:
    try:
        dataset, _ = _read(path)
        return [images.fit(render(dataset, i), max_side) for i in indices]
    except MediaRejected as exc:
        raise MediaDecodeError(f"{path.name}: {exc}") from exc


def section(item, number: int, caps, limits, plan):
    import pydicom

    from analysis.inference.units import EVEN, FIXED, Section, Unit, require

    require(caps.vision, "DICOM images", item)
    if plan is not None:
        indices = plan.get("frames", [])
    else:
        header = pydicom.dcmread(item.path, stop_before_pixels=True)
        frames = int(getattr(header, "NumberOfFrames", 1) or 1)
        indices = strip_indices(frames, limits.max_frames)
    side = limits.image_max_side if len(indices) == 1 else limits.frame_max_side
    units = []
    for group, index in enumerate(indices):
        label = f"[frame {index + 1}] " if len(indices) > 1 else ""
        unit = Unit("image", label, group, {"frames": index})
        unit.bitmap_id = f"{item.sha256}:dicom:{index}@{side}"
        units.append(unit)

    def load(todo: list) -> None:
        wanted = [u.ref["frames"] for u in todo]
        for unit, rgb in zip(todo, frames_for_model(item.path, wanted, side), strict=True):
            unit.payload = rgb

    strategy = EVEN if len(indices) > 1 else FIXED
    return Section(item, f'DICOM image {number} "{item.name}":', units, strategy, load)


def page(asset) -> dict:
    return {}


KIND = MediaKind(
    name="dicom",
    label="DICOM image",
    sniff=sniff,
    probe=probe,
    derive=derive,
    template="analysis/media/kinds/dicom.html",
    page=page,
    section=section,
    needs=frozenset({"vision"}),
    private_metadata=frozenset({"patient"}),
    extensions={MIME: ".dcm"},
)
