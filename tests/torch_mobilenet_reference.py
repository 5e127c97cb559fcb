"""torchvision's MobileNetV2 feature extractor written out in plain torch, for tests only.

An independent implementation of the original network (padding=1 on every 3x3
convolution, BatchNorm epsilon 1e-5, ReLU6), run on torchvision's own state dict,
to check what trainer.pytorch.convert_mobilenet produces.
"""

import torch
import torch.nn.functional as F

from trainer.pytorch.convert_mobilenet import STAGES


def _bn(x, sd, p):
    return F.batch_norm(
        x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"],
        training=False, eps=1e-5,
    )


def _conv_bn(x, sd, conv, bn, stride=1, groups=1, act=True):
    w = sd[f"{conv}.weight"]
    x = F.conv2d(x, w, stride=stride, padding=w.shape[-1] // 2, groups=groups)
    x = _bn(x, sd, bn)
    return F.relu6(x) if act else x


@torch.no_grad()
def features(sd: dict, images_nchw: torch.Tensor) -> torch.Tensor:
    """Output of torchvision's mobilenet_v2().features (before pooling), NCHW."""
    x = _conv_bn(images_nchw, sd, "features.0.0", "features.0.1", stride=2)
    index, channels = 1, 32
    for t, c, n, s in STAGES:
        for i in range(n):
            stride = s if i == 0 else 1
            p = f"features.{index}.conv"
            y = x
            if t != 1:
                y = _conv_bn(y, sd, f"{p}.0.0", f"{p}.0.1")
                dw, proj, proj_bn = f"{p}.1", f"{p}.2", f"{p}.3"
            else:
                dw, proj, proj_bn = f"{p}.0", f"{p}.1", f"{p}.2"
            y = _conv_bn(y, sd, f"{dw}.0", f"{dw}.1", stride=stride, groups=y.shape[1])
            y = _conv_bn(y, sd, proj, proj_bn, act=False)
            x = x + y if stride == 1 and channels == c else y
            channels, index = c, index + 1
    return _conv_bn(x, sd, "features.18.0", "features.18.1")
