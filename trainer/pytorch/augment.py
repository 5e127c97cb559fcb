"""FER2013's training augmentation on tensors, on whatever device they live (CPU or GPU).

The same ranges as trainer.models' Keras layers and trainer.augment (trainer.pixels): flip,
rotation, zoom and shift, then contrast, brightness and erasing.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from trainer.pixels import ROTATION, TRANSLATION, ZOOM

SIZE = 48


def augment(x: torch.Tensor) -> torch.Tensor:
    """(n, 1, 48, 48) float 0-255 -> augmented, all on the tensor's device."""
    n, dev = x.shape[0], x.device

    def uniform(scale):
        return (torch.rand(n, device=dev) * 2 - 1) * scale

    x = torch.where(torch.rand(n, 1, 1, 1, device=dev) < 0.5, x.flip(3), x)
    angle, zoom = uniform(ROTATION * 2 * math.pi), 1 + uniform(ZOOM)
    cos, sin = torch.cos(angle) * zoom, torch.sin(angle) * zoom
    theta = torch.stack([torch.stack([cos, -sin, uniform(2 * TRANSLATION)], 1),
                         torch.stack([sin, cos, uniform(2 * TRANSLATION)], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)  # "nearest" fill
    mean = x.mean((1, 2, 3), keepdim=True)
    x = (x - mean) * (1 + uniform(0.3)).view(n, 1, 1, 1) + mean + uniform(0.15 * 255).view(n, 1, 1, 1)
    # Erasing, a quarter of the images: a rectangle of 2-12 % of the area filled with noise.
    area = (0.02 + torch.rand(n, device=dev) * 0.10) * SIZE * SIZE
    ratio = torch.exp(uniform(math.log(2)))
    h = (area * ratio).sqrt().clamp(1, SIZE).view(n, 1, 1)
    w = (area / ratio).sqrt().clamp(1, SIZE).view(n, 1, 1)
    top = (torch.rand(n, 1, 1, device=dev) * (SIZE - h + 1)).floor()
    left = (torch.rand(n, 1, 1, device=dev) * (SIZE - w + 1)).floor()
    rows = torch.arange(SIZE, device=dev).view(1, SIZE, 1)
    cols = torch.arange(SIZE, device=dev).view(1, 1, SIZE)
    box = (rows >= top) & (rows < top + h) & (cols >= left) & (cols < left + w)
    box &= torch.rand(n, 1, 1, device=dev) < 0.25
    x = torch.where(box.unsqueeze(1), torch.rand_like(x) * 255, x)
    return x.clamp(0, 255)
