"""Turning untrusted image bytes into WebP renditions: pure CPU work, no I/O.

The pipeline is built for speed on a large photo: the JPEG decoder scales down while it
decodes (`draft`), and each rendition is made from the previous one, largest first, so the
full-size image is touched once.

WebP effort (`method`), measured on a 1200×1200 photo-like image at quality 80 on this machine
(bench/media.py prints the same table): method 0: 47 ms, 181 kB; 1: 49 ms, 180 kB;
2: 69 ms, 179 kB; 4: 163 ms, 185 kB; 6: 537 ms, 170 kB. Above 2 the encoder costs 2-10x the
time for at most 6 % fewer bytes (4 is even larger here), and the encoder dominates the
pipeline, so we use 1: method 0's speed with its bytes trimmed a little.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP")
WEBP_QUALITY = 80
WEBP_METHOD = 1
RESAMPLE = Image.Resampling.LANCZOS
# EXIF orientations that swap width and height (rotations by 90 or 270 degrees).
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SRGB = ImageCms.createProfile("sRGB")


class Fit(Enum):
    COVER = "cover"  # fill the box exactly, cropping the overflow around the centre
    CONTAIN = "contain"  # fit inside the box, keeping the whole picture


@dataclass(frozen=True)
class Target:
    name: str
    width: int
    height: int
    fit: Fit


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    data: bytes


@dataclass(frozen=True)
class Rendered:
    source_format: str
    source_width: int  # as displayed, after the EXIF orientation
    source_height: int
    renditions: list[Rendition]


class ImageRejected(Exception):
    """The bytes are not an image we accept; `status` is the HTTP status that says why."""

    status = 422


class UnsupportedImage(ImageRejected):
    status = 415


class CorruptImage(ImageRejected):
    status = 422


class TooManyPixels(ImageRejected):
    status = 422


def render(
    data: bytes,
    targets: Sequence[Target],
    *,
    max_pixels: int,
    method: int = WEBP_METHOD,
    quality: int = WEBP_QUALITY,
) -> Rendered:
    """Decodes `data` (JPEG, PNG or WebP, by its bytes) into one WebP per target.

    Targets are made largest first, each from the previous one when that loses nothing.
    DecompressionBombWarning must be an error in the calling process (see `harden_pillow`).
    """
    ordered = sorted(targets, key=lambda t: t.width * t.height, reverse=True)
    image = _open(data, max_pixels)
    source_format = image.format or "?"
    orientation = _orientation(image)
    width, height = image.size
    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    needed = tuple(
        max(sizes)
        for sizes in zip(*(_scaled_size((width, height), t) for t in ordered), strict=True)
    )
    if orientation in _SWAPPING_ORIENTATIONS:
        needed = (needed[1], needed[0])
    if source_format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale when that still covers the largest target.
        image.draft(image.mode if image.mode != "YCbCr" else "RGB", needed)
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
    except (OSError, ValueError, SyntaxError) as error:
        raise CorruptImage(f"the image data is damaged or truncated ({error})") from None
    image = _to_srgb(image)
    image.info.clear()  # nothing of the source's metadata may reach an output
    renditions = []
    previous: tuple[Image.Image, Target] | None = None
    for target in ordered:
        source = image
        if previous is not None and _can_derive(previous, target, image.size):
            source = previous[0]
        current = _fit(source, target)
        renditions.append(
            Rendition(target.name, *current.size, _webp(current, method=method, quality=quality))
        )
        previous = (current, target)
    return Rendered(source_format, width, height, renditions)


def harden_pillow() -> None:
    """Makes a decompression-bomb warning an error for the whole process.

    Installed once at start-up rather than per call with `warnings.catch_warnings()`: that
    swaps the process-wide filter list on entry and exit, so worker threads running it
    concurrently restore each other's filters and can leave a call unprotected.
    """
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError:
        raise UnsupportedImage("only JPEG, PNG and WebP images are accepted") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise TooManyPixels(f"the image has more than {max_pixels} pixels") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise CorruptImage(f"the image header is damaged ({error})") from None
    width, height = image.size
    if width < 1 or height < 1 or width * height > max_pixels:
        raise TooManyPixels(f"the image has more than {max_pixels} pixels")
    return image


def _orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (OSError, ValueError, SyntaxError):
        return 1  # unreadable EXIF: show the pixels as stored
    return value if isinstance(value, int) else 1


def _to_srgb(image: Image.Image) -> Image.Image:
    icc = image.info.get("icc_profile")
    image = _normalise_mode(image)
    if not icc:
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=image.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        # A broken or mismatched profile: treat the pixels as sRGB, as browsers do.
        return image
    return converted if converted is not None else image


def _normalise_mode(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if image.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits, do not clip
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    wanted = "RGBA" if has_alpha else "RGB"
    if image.mode == "CMYK" or image.mode != wanted:
        return image.convert(wanted)
    return image


def _scaled_size(size: tuple[int, int], target: Target) -> tuple[int, int]:
    """The size `size` must be scaled to, never up, for `target`'s box."""
    width, height = size
    if target.fit is Fit.COVER:
        scale = max(target.width / width, target.height / height)
    else:
        scale = min(target.width / width, target.height / height)
    scale = min(scale, 1.0)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _fit_size(size: tuple[int, int], target: Target) -> tuple[int, int]:
    width, height = size
    if target.fit is Fit.CONTAIN:
        scale = min(target.width / width, target.height / height, 1.0)
        return max(1, round(width * scale)), max(1, round(height * scale))
    # Cover: the target's aspect, scaled down to what the image has when it is smaller.
    shrink = min(width / target.width, height / target.height, 1.0)
    return max(1, round(target.width * shrink)), max(1, round(target.height * shrink))


def _can_derive(
    previous: tuple[Image.Image, Target], target: Target, full: tuple[int, int]
) -> bool:
    """Whether the previous rendition frames `target` as the full image would, at full size."""
    image, made_for = previous
    same_framing = made_for.fit is Fit.CONTAIN or (
        target.fit is Fit.COVER and made_for.width * target.height == made_for.height * target.width
    )
    return same_framing and _fit_size(image.size, target) == _fit_size(full, target)


def _fit(image: Image.Image, target: Target) -> Image.Image:
    size = _fit_size(image.size, target)
    if size == image.size:
        return image
    if target.fit is Fit.CONTAIN:
        return image.resize(size, RESAMPLE)
    return ImageOps.fit(image, size, RESAMPLE)


def _webp(image: Image.Image, *, method: int, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=quality, method=method)  # no exif/icc/xmp: stripped
    return out.getvalue()
