"""The image pipeline alone: no I/O, real images in, real WebP out."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytest
from media_images import (
    BLUE,
    HTML,
    RED,
    SVG,
    bomb_png,
    decoded,
    encode,
    gif,
    jpeg,
    photo,
    png_with_alpha,
    rotated_jpeg,
    truncated_jpeg,
    webp,
)
from PIL import Image, ImageCms, ImageStat
from PIL.JpegImagePlugin import JpegImageFile

from media.domain import VARIANTS, original_target
from media.imaging import (
    CorruptImage,
    Fit,
    ImageRejected,
    Target,
    TooManyPixels,
    UnsupportedImage,
    harden_pillow,
    render,
)

MAX_PIXELS = 40_000_000
PRODUCT = (original_target(1920), *VARIANTS)


def sizes(data: bytes) -> dict[str, tuple[int, int]]:
    rendered = render(data, PRODUCT, max_pixels=MAX_PIXELS)
    for r in rendered.renditions:
        image = decoded(r.data)
        assert image.format == "WEBP"
        assert image.size == (r.width, r.height)
    return {r.name: (r.width, r.height) for r in rendered.renditions}


@pytest.mark.parametrize(
    ("make", "fmt"),
    [
        (lambda: jpeg(2100, 1300), "JPEG"),
        (lambda: png_with_alpha(1300, 1250), "PNG"),
        (lambda: webp(1250, 1300), "WEBP"),
    ],
    ids=["jpeg", "png", "webp"],
)
def test_each_accepted_format_gives_square_variants_and_a_bounded_original(
    make: Callable[[], bytes], fmt: str
) -> None:
    rendered = render(make(), PRODUCT, max_pixels=MAX_PIXELS)
    assert rendered.source_format == fmt
    got = {r.name: (r.width, r.height) for r in rendered.renditions}
    assert got["large"] == (1200, 1200)
    assert got["medium"] == (500, 500)
    assert got["thumbnail"] == (150, 150)
    width, height = rendered.source_width, rendered.source_height
    scale = min(1920 / max(width, height), 1)
    assert got["original"] == (round(width * scale), round(height * scale))


def test_renditions_come_largest_first_whatever_order_they_are_asked_in() -> None:
    rendered = render(jpeg(1300, 1250), tuple(reversed(PRODUCT)), max_pixels=MAX_PIXELS)
    assert [r.name for r in rendered.renditions] == ["original", "large", "medium", "thumbnail"]


def test_alpha_survives_for_a_transparent_png() -> None:
    rendered = render(png_with_alpha(), VARIANTS, max_pixels=MAX_PIXELS)
    assert decoded(rendered.renditions[0].data).mode == "RGBA"


def test_a_small_image_is_cropped_to_shape_but_never_enlarged() -> None:
    assert sizes(jpeg(400, 320)) == {
        "original": (400, 320),
        "large": (320, 320),
        "medium": (320, 320),
        "thumbnail": (150, 150),
    }


def test_exif_orientation_is_applied_and_no_metadata_survives() -> None:
    rendered = render(rotated_jpeg(), PRODUCT, max_pixels=MAX_PIXELS)
    assert (rendered.source_width, rendered.source_height) == (200, 300)
    for r in rendered.renditions:
        image = decoded(r.data)
        width, height = image.size
        top, bottom = image.getpixel((width // 2, 2)), image.getpixel((width // 2, height - 3))
        assert _near(top, RED), (r.name, top)
        assert _near(bottom, BLUE), (r.name, bottom)
        assert not image.getexif()
        assert not {"exif", "icc_profile", "xmp"} & set(image.info)
        assert b"RTMN Test Camera" not in r.data
    assert {r.name: (r.width, r.height) for r in rendered.renditions} == {
        "original": (200, 300),
        "large": (200, 200),
        "medium": (200, 200),
        "thumbnail": (150, 150),
    }


def test_a_colour_profile_is_converted_to_srgb_then_dropped() -> None:
    # A greyscale-to-RGB stand-in for a wide-gamut profile: pixels tagged with a LAB-free
    # XYZ-ish profile would be exotic; a lighter-than-sRGB gamma is easy to see instead.
    source = Image.new("RGB", (300, 300), (128, 128, 128))
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
    plain = render(encode(source, "PNG"), VARIANTS, max_pixels=MAX_PIXELS)
    tagged = render(
        encode(source, "PNG", icc_profile=profile.tobytes()), VARIANTS, max_pixels=MAX_PIXELS
    )
    for p, t in zip(plain.renditions, tagged.renditions, strict=True):
        assert "icc_profile" not in decoded(t.data).info
        assert _near(decoded(p.data).getpixel((5, 5)), decoded(t.data).getpixel((5, 5)))


def test_a_broken_colour_profile_is_ignored_rather_than_failing_the_upload() -> None:
    data = encode(photo(300, 300), "JPEG", icc_profile=b"not a profile at all" * 10)
    assert len(render(data, VARIANTS, max_pixels=MAX_PIXELS).renditions) == 3


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (gif, UnsupportedImage),
        (lambda: SVG, UnsupportedImage),
        (lambda: HTML, UnsupportedImage),
        (lambda: b"", UnsupportedImage),
        (truncated_jpeg, CorruptImage),
        (lambda: bomb_png(100_000, 100_000), TooManyPixels),  # Pillow's own error
        (lambda: bomb_png(10_000, 10_000), TooManyPixels),  # Pillow's warning, made an error
        (lambda: bomb_png(8_000, 6_000), TooManyPixels),  # under Pillow's cap, over ours
    ],
    ids=["gif", "svg", "html", "empty", "truncated-jpeg", "bomb", "bomb-warning", "40mp-cap"],
)
def test_what_is_not_an_acceptable_image_is_rejected_with_its_reason(
    make: Callable[[], bytes], error: type[ImageRejected]
) -> None:
    with pytest.raises(error) as raised:
        render(make(), VARIANTS, max_pixels=MAX_PIXELS)
    assert 400 <= raised.value.status < 500


def test_contain_keeps_the_whole_picture() -> None:
    target = Target("wide", 1000, 1000, Fit.CONTAIN)
    [r] = render(jpeg(1600, 400), (target,), max_pixels=MAX_PIXELS).renditions
    assert (r.width, r.height) == (1000, 250)


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_covers_the_target(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded_sizes = []
    draft = JpegImageFile.draft

    def spy(self: JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        result = draft(self, mode, size)
        decoded_sizes.append(self.size)
        return result

    monkeypatch.setattr(JpegImageFile, "draft", spy)
    # A 500 cover of 2400×1600 needs 750×500: the decoder can halve, not quarter, that.
    [r] = render(jpeg(2400, 1600), VARIANTS[1:2], max_pixels=MAX_PIXELS).renditions
    assert decoded_sizes == [(1200, 800)]
    assert (r.width, r.height) == (500, 500)


def _near(pixel: object, colour: tuple[int, ...], tolerance: int = 40) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=False))


def test_webp_output_is_lossy_at_quality_80() -> None:
    rendered = render(jpeg(600, 600), VARIANTS[2:], max_pixels=MAX_PIXELS)
    data = rendered.renditions[0].data
    assert data[:4] == b"RIFF"
    assert data[12:16] == b"VP8 "  # the lossy bitstream, not VP8L (lossless)


def test_the_original_comes_at_the_resolution_decoded_for_the_variants() -> None:
    data = jpeg(3200, 2400)  # the 1200 cover needs 1600×1200: the decoder halves it
    product = render(data, PRODUCT, max_pixels=MAX_PIXELS)
    sizes = {r.name: (r.width, r.height) for r in product.renditions}
    assert sizes["original"] == (1600, 1200)
    assert sizes["large"] == (1200, 1200)
    # Alone (a plain image upload), the original's box decides: at most 1920 on a side.
    [alone] = render(data, (original_target(1920),), max_pixels=MAX_PIXELS).renditions
    assert (alone.width, alone.height) == (1920, 1440)


def test_a_decompression_bomb_warning_is_an_error_once_pillow_is_hardened() -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")  # as in production: warnings are only printed
        harden_pillow()
        with pytest.raises(TooManyPixels):
            render(bomb_png(10_000, 10_000), VARIANTS, max_pixels=MAX_PIXELS)
    assert seen == []  # raised at the warning, not printed and carried on past it


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [("CMYK", "JPEG"), ("L", "JPEG"), ("LA", "PNG"), ("P", "PNG"), ("I;16", "PNG")],
)
def test_other_pixel_modes_come_out_as_rgb_or_rgba(mode: str, fmt: str) -> None:
    source = photo(320, 240).convert("L" if mode.startswith("I") else mode)
    if mode.startswith("I"):
        source = source.convert("I").point(lambda v: v * 257).convert("I;16")
    if mode == "LA":
        source.putalpha(Image.linear_gradient("L").resize(source.size))
    [r] = render(encode(source, fmt), VARIANTS[2:], max_pixels=MAX_PIXELS).renditions
    image = decoded(r.data)
    assert image.mode == ("RGBA" if mode == "LA" else "RGB")
    # 16-bit values were scaled, not clipped to white.
    assert 40 < sum(ImageStat.Stat(image.convert("L")).mean) < 220


def test_an_original_alone_may_come_out_a_little_under_its_box_to_decode_at_half_size() -> None:
    [r] = render(jpeg(2000, 1500), (original_target(1024),), max_pixels=MAX_PIXELS).renditions
    assert (r.width, r.height) == (1000, 750)  # not 1024×768 from a full-size decode
    [r] = render(jpeg(2000, 1500), (original_target(1200),), max_pixels=MAX_PIXELS).renditions
    assert (r.width, r.height) == (1200, 900)  # half would be 17 % under: decoded in full
