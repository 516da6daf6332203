"""Test images made with Pillow, including the hostile ones."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image, ImageChops, ImageDraw

RED = (220, 20, 20)
BLUE = (20, 20, 220)


def photo(width: int, height: int) -> Image.Image:
    """Gradients, noise and shapes: compresses like a photograph, not like a flat fill."""
    gradient = Image.linear_gradient("L")
    gx = gradient.resize((width, height), Image.Resampling.BILINEAR)
    gy = gradient.transpose(Image.Transpose.ROTATE_90).resize(
        (width, height), Image.Resampling.BILINEAR
    )
    noise = _noise(width, height)
    image = Image.merge(
        "RGB",
        (
            ImageChops.add(gx, noise, scale=1.4),
            ImageChops.add(gy, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), scale=1.4),
            ImageChops.blend(gx, gy, 0.5),
        ),
    )
    draw = ImageDraw.Draw(image)
    for i in range(12):
        left, top = width * i // 14, height * (i % 5) // 6
        draw.ellipse(
            (left, top, left + width // 8, top + height // 5),
            fill=(40 * i % 255, 200 - 10 * i, 90 + 12 * i),
        )
    return image


def _noise(width: int, height: int) -> Image.Image:
    # A small Gaussian patch tiled: effect_noise over megapixels is slow for a test.
    patch = Image.effect_noise((256, 256), 30)
    noise = Image.new("L", (width, height))
    for top in range(0, height, 256):
        for left in range(0, width, 256):
            noise.paste(patch, (left, top))
    return noise


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg(width: int = 640, height: int = 480, **options: object) -> bytes:
    return encode(photo(width, height), "JPEG", quality=90, **options)


def halves(width: int, height: int) -> Image.Image:
    """Left half red, right half blue: shows which way an image was turned."""
    image = Image.new("RGB", (width, height), BLUE)
    ImageDraw.Draw(image).rectangle((0, 0, width // 2 - 1, height - 1), fill=RED)
    return image


def rotated_jpeg() -> bytes:
    """Stored 300×200 with EXIF orientation 6 (rotate 90° clockwise to show): displays as
    200×300 with red on top. Carries a camera tag and GPS position that must not survive."""
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation
    exif[0x010F] = "RTMN Test Camera"  # Make
    exif[0x8825] = {1: "N", 2: (12.0, 58.0, 0.0)}  # GPSInfo
    return encode(halves(300, 200), "JPEG", quality=95, exif=exif.tobytes())


def png_with_alpha(width: int = 400, height: int = 300) -> bytes:
    image = photo(width, height).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((width, height)))
    return encode(image, "PNG", compress_level=1)


def webp(width: int = 800, height: int = 600) -> bytes:
    return encode(photo(width, height), "WEBP", quality=90)


def gif() -> bytes:
    return encode(photo(64, 64).convert("P"), "GIF")


SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<script>alert(1)</script><rect width="10" height="10"/></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def truncated_jpeg() -> bytes:
    data = jpeg(800, 600)
    return data[: len(data) // 2]


def bomb_png(width: int, height: int) -> bytes:
    """A valid PNG header declaring width×height pixels, with a few hundred bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    rows = zlib.compress(b"\x00" * 4096, 9)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    )


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
