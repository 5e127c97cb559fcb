"""torchvision's ImageNet MobileNetV2, converted to Keras, gives the original's features."""

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

torch = pytest.importorskip("torch", reason="the converter test needs torch (installed by requirements-dev.txt)")

from trainer.models import build_model  # noqa: E402
from trainer.pixels import TORCH_MEAN, TORCH_STD  # noqa: E402
from trainer.pytorch.convert_mobilenet import convert, find_pth, load_state_dict, main  # noqa: E402

PHOTOS = ["astronaut.jpg", "coffee.jpg", "chelsea_cat_no_face.jpg"]


@pytest.fixture(scope="module")
def state():
    return load_state_dict(find_pth())


def photos(size):
    return np.stack([np.asarray(Image.open(EXAMPLES / n).convert("RGB").resize((size, size)), np.float32)
                     for n in PHOTOS])


def test_converted_backbone_matches_torch_on_real_photos(state):
    import torch_mobilenet_reference as reference

    x = (photos(96) - TORCH_MEAN) / TORCH_STD
    expected = reference.features({k: torch.from_numpy(v) for k, v in state.items()},
                                  torch.from_numpy(x.transpose(0, 3, 1, 2)).float()).numpy().transpose(0, 2, 3, 1)
    keras_backbone = convert(state, 96)
    got = np.asarray(keras_backbone(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))).astype("float32")))
    assert got.shape == expected.shape == (3, 3, 3, 1280)
    np.testing.assert_allclose(got, expected, atol=1e-3)
    # The features mean what ImageNet says: torchvision's own classifier on them.
    logits = got.mean((1, 2)) @ state["classifier.1.weight"].T + state["classifier.1.bias"]
    assert logits.argmax(1)[1] == 967  # espresso
    assert logits.argmax(1)[2] in (281, 282, 285)  # tabby / tiger cat / Egyptian cat


def test_converted_file_drives_the_registry_model(tmp_path):
    out = tmp_path / "mnv2.weights.h5"
    assert main(["--out", str(out)]) == 0
    model = build_model("mobilenetv2", (48, 48, 1), backbone_weights=str(out))
    assert model.get_layer("torch_preprocess") is not None  # flavour read from the JSON beside the file
    x = photos(48).mean(-1, keepdims=True).astype("float32")
    assert np.asarray(model(x, training=False)).shape == (3, 7)
