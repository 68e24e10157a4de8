"""Every attribution method on one torchvision classifier of each family (random weights):
ReLU6, Hardswish, SiLU, GELU models included, and Grad-CAM on a vision transformer's tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import GuidedBackprop, LayerGradCam
from torch import nn
from torchvision.models import get_model

from cvtasks.explain.activations import Guided, guided_copy
from cvtasks.explain.gradcam import gradcam
from cvtasks.explain.layers import default_layer, get_layer
from cvtasks.explain.methods import METHODS, MethodOptions, attribute

FAMILIES = [
    "resnet18",
    "vgg11",
    "mobilenet_v2",  # ReLU6
    "mobilenet_v3_small",  # Hardswish
    "efficientnet_b0",  # SiLU
    "convnext_tiny",  # GELU
    "densenet121",
    "regnet_y_400mf",
    "vit_b_32",  # GELU, tokens (a quarter of vit_b_16's work: 7 x 7 patches)
]


def _model(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = get_model(name, weights=None).eval()
    if name.startswith("vit_"):  # torchvision zero-initialises the ViT head: no gradients
        nn.init.normal_(model.heads.head.weight, std=0.05)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


@pytest.mark.parametrize("name", FAMILIES)
def test_every_method_runs_on_every_family(name):
    model = _model(name)
    size = 224 if name.startswith("vit_") else 64
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    opts = MethodOptions(window=size // 2, stride=size // 2, samples=2, steps=3, batch_size=8)
    for method in METHODS:
        found = attribute(method, model, x, 3, opts, name)
        assert found.heat.shape == (size, size), (name, method)
        assert np.isfinite(found.heat).all(), (name, method)
        if method == "occlusion":  # a probability per window position
            assert found.raw.shape == (2, 2) and (found.raw >= 0).all()
        elif method in ("gradcam", "guided-gradcam"):  # ReLU of a random map may be all zero
            assert found.extra["layer"] == default_layer(name, model)
        else:  # gradients reach the input
            assert float(found.heat.max()) > float(found.heat.min()), (name, method)


def test_guided_backprop_rule_for_relu6_by_hand():
    """max(0, f'(x) * R): the gradient passes where 0 < x < 6 and only where it is positive."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU6(), nn.Conv2d(4, 2, 1), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )  # fmt: skip
    net.eval()
    x = (torch.randn(1, 3, 6, 6) * 8).requires_grad_(True)
    guided = guided_copy(net)
    assert isinstance(guided[1], Guided) and isinstance(guided[1].inner, nn.ReLU6)
    found = GuidedBackprop(guided).attribute(x, target=1)
    pre = net[0](x)
    incoming = torch.zeros_like(pre)
    incoming += net[2].weight[1].view(1, 4, 1, 1) / 36  # d out[1] / d (ReLU6 output)
    passed = torch.clamp(incoming * ((pre > 0) & (pre < 6)), min=0)
    (expected,) = torch.autograd.grad(pre, x, passed)
    assert torch.allclose(found, expected, atol=1e-5)
    assert torch.equal(net(x), guided(x))  # the forward is unchanged


def test_gradcam_equals_captum_on_a_convolutional_map():
    model = _model("resnet18")
    x = torch.randn(1, 3, 96, 96).requires_grad_(True)
    ours = gradcam(model, model.layer4, x, 7)
    theirs = LayerGradCam(model, model.layer4).attribute(x, target=7, relu_attributions=True)
    assert torch.allclose(ours, theirs, atol=1e-6)


def test_vit_gradcam_lays_tokens_on_the_patch_grid():
    model = _model("vit_b_32")
    layer = default_layer("vit_b_32", model)
    assert layer == "encoder.layers.encoder_layer_11.ln_1"
    x = torch.randn(1, 3, 224, 224).requires_grad_(True)
    cam = gradcam(model, get_layer(model, layer), x, 3)
    assert cam.shape == (1, 1, 7, 7)  # 49 patch tokens, the class token dropped
