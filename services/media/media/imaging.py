"""Turning untrusted image bytes into WebP renditions: pure CPU work, no I/O.

Built for speed on a large photo: the JPEG decoder scales down while it decodes (`draft`),
and each rendition is made from the previous one, largest first, so the full-size image is
touched once. Choices below were measured on this machine (CPU ms, one thread, a noisy
photo-like image; bench/media_bench.py runs the whole pipeline):

WebP effort (`method`) at quality 80, ms / bytes:

    method      0            1            2            4            6
    1200²   48 / 181.1k  61 / 179.9k  87 / 179.4k 188 / 185.3k 461 / 169.7k
    500²     6.8 / 12.0k  8.4 / 11.6k 11.2 / 9.4k  27.6 / 9.0k  40.1 / 7.8k
    150²     1.2 / 2.60k  1.2 / 2.50k  1.7 / 1.98k  3.1 / 1.95k  4.8 / 1.87k

Large images gain at most 1 % from more effort at 2-10x the time, and their encode dominates
the pipeline: method 0. Medium and thumbnail images are the ones pages show by the dozen, and
there effort buys 22-28 % fewer bytes for a few ms: method 2 and 6.

Resizing uses Lanczos with `reducing_gap` 1.2 (a box reduce by an integer factor first):
1200² → 500² takes 11 ms instead of 24, a full 4000×3000 PNG → 1200 takes 51 ms instead of
174, at 40-45 dB PSNR against plain Lanczos, well under what WebP q80 itself changes.
"""

from __future__ import annotations

import io
import logging
import math
import warnings
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from enum import Enum

from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

FORMATS = ("JPEG", "PNG", "WEBP")
WEBP_QUALITY = 80
RESAMPLE = Image.Resampling.LANCZOS
REDUCING_GAP = 1.2
# EXIF orientations that swap width and height (rotations by 90 or 270 degrees).
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})
_SRGB = ImageCms.createProfile("sRGB")

log = logging.getLogger(__name__)


class Fit(Enum):
    COVER = "cover"  # fill the box exactly, cropping the overflow around the centre
    CONTAIN = "contain"  # fit inside the box, keeping the whole picture
    # The whole picture at the resolution decoded for the other targets, shrunk to the box if
    # larger: a bounded "original" that never forces a full-size decode of its own (alone, it
    # may come out up to 10 % under its box for the same reason).
    DECODED = "decoded"


def webp_method(width: int, height: int) -> int:
    """Encoder effort by size, from the table above."""
    pixels = width * height
    if pixels >= 1_000_000:
        return 0
    return 2 if pixels >= 200_000 else 6


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
    quality: int = WEBP_QUALITY,
    encoder: Executor | None = None,
) -> Rendered:
    """Decodes `data` (JPEG, PNG or WebP, by its bytes) into one WebP per target.

    With an `encoder` pool, each rendition is encoded there while this thread goes on to
    resize the next one (the WebP encoder releases the GIL), so one image uses two cores.

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
    drivers = [t for t in ordered if t.fit is not Fit.DECODED] or [
        # Alone, it may come out up to 10 % under its box rather than force a decode at full
        # size: a 4032×3024 photo gives 2016×1512 from a half-scale decode, not 2048×1536
        # from one with four times the pixels.
        Target(t.name, t.width * 9 // 10, t.height * 9 // 10, Fit.CONTAIN)
        for t in ordered
    ]
    needed = tuple(
        max(sizes)
        for sizes in zip(*(_scaled_size((width, height), t) for t in drivers), strict=True)
    )
    if orientation in _SWAPPING_ORIENTATIONS:
        needed = (needed[1], needed[0])
    if source_format == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale when that still covers the largest target.
        image.draft(image.mode if image.mode != "YCbCr" else "RGB", needed)
    try:
        image.load()
        ImageOps.exif_transpose(image, in_place=True)
        image = _to_srgb(image)
    except (OSError, ValueError, SyntaxError) as error:
        log.info("image data rejected: %s: %s", type(error).__name__, error)
        raise CorruptImage("the image data is damaged or truncated") from None
    image.info.clear()  # nothing of the source's metadata may reach an output
    made: list[tuple[Target, Image.Image, Future[bytes] | bytes]] = []
    previous: tuple[Image.Image, Target] | None = None
    for target in ordered:
        source = image
        if previous is not None and _can_derive(previous, target, image.size):
            source = previous[0]
        current = _fit(source, target)
        encoded = (
            _webp(current, quality) if encoder is None else encoder.submit(_webp, current, quality)
        )
        made.append((target, current, encoded))
        previous = (current, target)
    renditions = [
        Rendition(t.name, *i.size, e.result() if isinstance(e, Future) else e) for t, i, e in made
    ]
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
        log.info("image header rejected: %s: %s", type(error).__name__, error)
        raise CorruptImage("the image header is damaged") from None
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
    """RGB or RGBA in sRGB: the embedded profile applied (CMYK and greyscale included)."""
    icc = image.info.get("icc_profile")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    wanted = "RGBA" if has_alpha else "RGB"
    if image.mode == "P":
        image = image.convert(wanted)
    elif image.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits, do not clip
        image = image.convert("I").point(lambda v: v * (1 / 257)).convert("L")
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=wanted)
        except (ImageCms.PyCMSError, OSError, ValueError):
            converted = None  # a broken or mismatched profile: the pixels count as sRGB
        if converted is not None:
            image = converted
    return image if image.mode == wanted else image.convert(wanted)


def _scaled_size(size: tuple[int, int], target: Target) -> tuple[int, int]:
    """The size `size` must be scaled to, never up, for `target`'s box."""
    width, height = size
    if target.fit is Fit.COVER:
        scale = max(target.width / width, target.height / height)
    else:  # DECODED counts as CONTAIN here, when it is all there is to decode for
        scale = min(target.width / width, target.height / height)
    scale = min(scale, 1.0)
    return max(1, math.ceil(width * scale)), max(1, math.ceil(height * scale))


def _fit_size(size: tuple[int, int], target: Target) -> tuple[int, int]:
    width, height = size
    if target.fit is not Fit.COVER:
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
    same_framing = made_for.fit is not Fit.COVER or (
        target.fit is Fit.COVER and made_for.width * target.height == made_for.height * target.width
    )
    return same_framing and _fit_size(image.size, target) == _fit_size(full, target)


def _fit(image: Image.Image, target: Target) -> Image.Image:
    size = _fit_size(image.size, target)
    if size == image.size:
        return image
    width, height = image.size
    box = (0.0, 0.0, float(width), float(height))
    if target.fit is Fit.COVER:
        # ImageOps.fit's centred crop, passed as `box` so that `reducing_gap` applies too.
        if width * size[1] > height * size[0]:
            crop = height * size[0] / size[1]
            box = ((width - crop) / 2, 0.0, (width + crop) / 2, float(height))
        else:
            crop = width * size[1] / size[0]
            box = (0.0, (height - crop) / 2, float(width), (height + crop) / 2)
    return image.resize(size, RESAMPLE, box=box, reducing_gap=REDUCING_GAP)


def _webp(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No exif/icc_profile/xmp arguments: the output carries no metadata.
    image.save(out, "WEBP", quality=quality, method=webp_method(*image.size))
    return out.getvalue()
