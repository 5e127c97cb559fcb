"""demo.pipeline.images: every colour mode to RGB, EXIF orientation, and clear errors for bad files."""

import io

import numpy as np
import pytest
from PIL import Image

from demo.pipeline.images import ImageError, load_rgb


def encode(im: Image.Image, fmt="PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "1", "I;16", "I", "F"])
def test_every_colour_mode_becomes_rgb_uint8(mode):
    gradient = np.tile(np.linspace(0, 255, 64), (32, 1)).astype(np.uint8)
    im = Image.fromarray(gradient, "L").convert("RGB").convert(mode) if mode not in ("I;16", "I", "F") else None
    if mode == "I;16":
        im = Image.fromarray((gradient.astype(np.uint16) * 257), "I;16")
    elif mode in ("I", "F"):
        im = Image.fromarray(gradient.astype(np.int32 if mode == "I" else np.float32) * 1000)
    rgb = load_rgb(im)
    assert rgb.shape == (32, 64, 3) and rgb.dtype == np.uint8
    if mode not in ("1", "P"):  # the gradient survives: dark on the left, bright on the right
        assert rgb[:, :4].mean() < 40 and rgb[:, -4:].mean() > 200


def test_transparency_is_shown_on_white():
    im = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert (load_rgb(encode(im)) == 255).all()


def test_exif_orientation_is_honoured():
    im = Image.new("RGB", (40, 20), (200, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb = load_rgb(encode(im, "JPEG", exif=exif))
    assert rgb.shape == (40, 20, 3)


def test_sixteen_bit_png_file():
    im = Image.fromarray(np.full((8, 8), 40000, np.uint16), "I;16")
    assert load_rgb(encode(im)).shape == (8, 8, 3)


@pytest.mark.parametrize(
    "payload, message",
    [
        (b"", "empty"),
        (b"%PDF-1.4 this is not an image", "not an image"),
        (encode(Image.new("RGB", (64, 64)), "JPEG")[:200], "truncated or corrupt"),
    ],
)
def test_bad_bytes_give_clear_errors(payload, message):
    with pytest.raises(ImageError, match=message):
        load_rgb(payload)


def test_bad_files_give_clear_errors(tmp_path):
    (tmp_path / "zero.png").write_bytes(b"")
    with pytest.raises(ImageError, match="the file is empty"):
        load_rgb(tmp_path / "zero.png")
    with pytest.raises(ImageError, match="not found"):
        load_rgb(tmp_path / "missing.png")


def test_huge_image_is_refused_before_decoding():
    big = encode(Image.new("L", (20000, 20000)))  # 400 megapixels, a few hundred kB of PNG
    with pytest.raises(ImageError, match="too large"):
        load_rgb(big)
    with pytest.raises(ImageError, match="too large: 9000 x 6000 pixels"):
        load_rgb(encode(Image.new("L", (9000, 6000))))


def test_animated_gif_is_refused():
    frames = [Image.new("RGB", (16, 16), (80 * i, 0, 0)) for i in range(3)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animated"):
        load_rgb(buf.getvalue())


def test_formats_outside_the_list_are_refused_from_the_header():
    with pytest.raises(ImageError, match="not an image"):
        load_rgb(encode(Image.new("RGB", (8, 8)), "ICO"))
    with pytest.raises(ImageError, match="not an image"):
        load_rgb(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")  # would run Ghostscript


def test_camera_jpeg_with_a_preview_frame_is_a_still_photo():
    photo, preview = Image.new("RGB", (64, 48), (200, 10, 10)), Image.new("RGB", (32, 24))
    buf = io.BytesIO()
    photo.save(buf, "MPO", save_all=True, append_images=[preview])
    assert load_rgb(buf.getvalue()).shape == (48, 64, 3)


def test_arrays_have_the_same_pixel_limit():
    with pytest.raises(ImageError, match="too large: 10000 x 6000"):
        load_rgb(np.broadcast_to(np.zeros((1, 1, 3), np.uint8), (6000, 10000, 3)))


def test_webp_and_arrays():
    assert load_rgb(encode(Image.new("RGB", (9, 7), (1, 2, 3)), "WEBP", lossless=True))[0, 0].tolist() == [1, 2, 3]
    assert load_rgb(np.zeros((5, 6), np.uint8)).shape == (5, 6, 3)
    with pytest.raises(ImageError):
        load_rgb(np.zeros((5,), np.uint8))
