"""The cheap similarities beside the kernel: pixels, penultimate activations, probabilities."""

import numpy as np
import pytest
import torch
from torch import nn

from losskernel.method.chains import TensorData
from losskernel.method.features import input_features, last_linear
from losskernel.readings.similarity import cosine_similarity


def test_features_are_the_inputs_the_last_linear_layers_input_and_the_softmax():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    inputs = torch.randn(5, 1, 2, 2)
    features = input_features(model, TensorData(inputs, torch.zeros(5, dtype=torch.long)),
                              batch_size=2)
    np.testing.assert_allclose(features["pixels"], inputs.flatten(1).numpy())
    hidden = torch.relu(model[1](inputs.flatten(1)))
    np.testing.assert_allclose(features["activations"], hidden.detach().numpy(), rtol=1e-6)
    probabilities = torch.softmax(model[3](hidden), dim=1).detach().numpy()
    np.testing.assert_allclose(features["probabilities"], probabilities, rtol=1e-6)
    assert not last_linear(model)._forward_pre_hooks  # the hook is removed afterwards


def test_large_images_are_pooled_to_at_most_max_side():
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))
    images = torch.ones(2, 3, 64, 64)
    images[:, :, :32] = 0.0  # top half dark
    features = input_features(model, TensorData(images, torch.zeros(2, dtype=torch.long)),
                              batch_size=8, max_side=32)
    pooled = features["pixels"].reshape(2, 3, 32, 32)
    assert pooled.shape == (2, 3, 32, 32)
    np.testing.assert_allclose(pooled[:, :, :16], 0.0) and np.testing.assert_allclose(
        pooled[:, :, 16:], 1.0)


def test_a_model_without_a_linear_layer_is_refused():
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        last_linear(nn.Sequential(nn.ReLU()))


def test_cosine_similarity_by_hand():
    features = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(cosine_similarity(features),
                               [[1, 2 ** -0.5, 0], [2 ** -0.5, 1, 0], [0, 0, 0]])
