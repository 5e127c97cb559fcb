"""Pixel constants shared by trainer.models' Keras layers and trainer/pytorch/train.py's PyTorch twin.

NumPy only, so a GPU machine without Keras reads the same numbers.
"""

import numpy as np

# torchvision's ImageNet normalisation, on 0-255 pixels.
TORCH_MEAN = np.array([0.485, 0.456, 0.406]) * 255.0
TORCH_STD = np.array([0.229, 0.224, 0.225]) * 255.0
# Keras' "caffe" preprocessing for ResNet50: BGR order, minus the ImageNet mean.
CAFFE_MEAN_BGR = np.array([103.939, 116.779, 123.68])

# Geometric augmentation: rotation up to +-18 degrees, zoom and shift up to 10 %. The same
# ranges serve the in-model layers, trainer.augment's host-side version and the GPU twin.
ROTATION, ZOOM, TRANSLATION = 0.05, 0.1, 0.1  # rotation as a fraction of a full turn
