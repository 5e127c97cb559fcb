"""demo.guards.gate: what may be opened at all, data URLs, one log line per refusal."""

import base64
import io
import logging
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from demo.guards.gate import NOT_UPLOADED, allowed_path, decode_data_url, image_from_payload, log_rejection
from demo.pipeline.images import MAX_FILE_BYTES, ImageError


def data_url(raw: bytes, mime="image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(raw).decode()


def png(im) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def test_paths_outside_the_allowed_folders_are_refused_alike_whether_or_not_they_exist(tmp_path):
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "face.jpg").write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    (tmp_path / "secret.jpg").write_bytes((EXAMPLES / "astronaut.jpg").read_bytes())
    (uploads / "link.jpg").symlink_to(tmp_path / "secret.jpg")
    assert allowed_path(uploads / "face.jpg", [uploads]) == (uploads / "face.jpg").resolve()
    for outside in (tmp_path / "secret.jpg", tmp_path / "missing.jpg", uploads / ".." / "secret.jpg",
                    uploads / "link.jpg", "/etc/passwd"):
        with pytest.raises(ImageError) as err:
            allowed_path(outside, [uploads])
        assert str(err.value) == NOT_UPLOADED  # the same words: nothing about the file leaks


def test_payloads_by_path_data_url_and_expired_upload(tmp_path):
    rgb = image_from_payload(SimpleNamespace(path=str(EXAMPLES / "astronaut.jpg"), url=None), [EXAMPLES])
    assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8
    red = png(Image.new("RGB", (4, 3), (255, 0, 0)))
    rgb = image_from_payload(SimpleNamespace(path=None, url=data_url(red)), [])
    assert rgb.shape == (3, 4, 3) and rgb[0, 0].tolist() == [255, 0, 0]
    with pytest.raises(ImageError, match="no longer on the server .* after 2 minutes"):
        image_from_payload(SimpleNamespace(path=str(tmp_path / "gone.png"), url=None), [tmp_path], "2 minutes")
    with pytest.raises(ImageError, match="no image"):
        image_from_payload(SimpleNamespace(path=None, url=None), [tmp_path])


def test_data_urls_are_refused_from_their_length_and_their_header():
    too_long = "data:image/png;base64," + "A" * ((MAX_FILE_BYTES + 1024) * 4 // 3)
    with pytest.raises(ImageError, match="the limit is 25 MB"):
        decode_data_url(too_long)
    with pytest.raises(ImageError, match="too large: 13000 x 13000"):
        image_from_payload(SimpleNamespace(path=None, url=data_url(png(Image.new("1", (13000, 13000))))), [])
    with pytest.raises(ImageError, match="not valid base64"):
        decode_data_url("data:image/png;base64,@@@@")
    with pytest.raises(ImageError, match="base64-encoded"):
        decode_data_url("data:image/svg+xml,<svg/>")


def test_a_refusal_is_one_line_without_names_or_content(caplog):
    caplog.set_level(logging.INFO, logger="ekspresi.gate")
    log_rejection(ImageError("image is too large: 13000 x 13000 pixels; the limit is 50 megapixels"), "image", 20589)
    assert [r.getMessage() for r in caplog.records] == [
        "rejected image input: image is too large: 13000 x 13000 pixels (20589 bytes)"]


def test_webcam_frames_pass_the_same_gate(caplog):
    """A webcam frame arrives as a data URL: a 169-megapixel one used to be decoded (3.3 GB)."""
    import gradio as gr
    from gradio.data_classes import ImageData

    from demo.web.page import GatedImage

    cam = GatedImage(sources=["webcam"], streaming=True, type="numpy")
    caplog.set_level(logging.INFO, logger="ekspresi.gate")
    with pytest.raises(gr.Error, match="too large: 13000 x 13000"):
        cam.preprocess(ImageData(url=data_url(png(Image.new("1", (13000, 13000))))))
    assert caplog.records[-1].getMessage().startswith("rejected webcam input: image is too large")
    frame = cam.preprocess(ImageData(url=data_url(png(Image.new("RGB", (64, 48), (0, 90, 0))), "image/jpeg")))
    assert frame.shape == (48, 64, 3) and frame[0, 0].tolist() == [0, 90, 0]
