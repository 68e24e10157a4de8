"""The explanations are right: a CNN trained here on squares and circles is explained by
where the object is; the ReLU backward rules match a hand computation; occlusion equals a
brute-force loop; randomising the model destroys Grad-CAM's map."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn
from toy_cnn import draw

from cvtasks.explain.methods import (
    MethodOptions,
    attribute,
    occlusion,
    randomized_copy,
    rank_correlation,
    window_positions,
)


def objects(count: int = 8):
    rng = np.random.default_rng(7)
    return [(draw(rng, i % 2), i % 2) for i in range(count)]


def inside(point_yx, box, margin=4) -> bool:
    x1, y1, x2, y2 = box
    y, x = point_yx
    return x1 - margin <= x < x2 + margin and y1 - margin <= y < y2 + margin


def test_occlusion_minimum_is_on_the_object(trained):
    opts = MethodOptions(window=12, stride=4, baseline="zero")
    for (x, box), kind in objects():
        attr = attribute("occlusion", trained, x.unsqueeze(0), kind, opts)
        mx1, my1, mx2, my2 = attr.extra["min_box"]
        assert inside(((my1 + my2) / 2, (mx1 + mx2) / 2), box), (attr.extra["min_box"], box)
        assert attr.extra["min_score"] < 0.8 * attr.extra["score"]


def test_gradcam_peak_is_on_the_object(trained):
    opts = MethodOptions(layer="features.6")
    for (x, box), kind in objects():
        heat = attribute("gradcam", trained, x.unsqueeze(0), kind, opts).heat
        assert inside(np.unravel_index(heat.argmax(), heat.shape), box)


@pytest.mark.parametrize(
    "method", ["saliency", "smoothgrad", "guided-backprop", "integrated-gradients"]
)
def test_gradient_mass_is_on_the_object(trained, method):
    opts = MethodOptions(samples=10, steps=16, baseline="zero")
    for (x, box), kind in objects(4):
        heat = attribute(method, trained, x.unsqueeze(0), kind, opts).heat
        x1, y1, x2, y2 = box
        mask = np.zeros_like(heat, dtype=bool)
        mask[max(0, y1 - 2) : y2 + 2, max(0, x1 - 2) : x2 + 2] = True  # the box is 8% of the image
        assert heat[mask].sum() / heat.sum() > 0.5, method


def test_sanity_check_randomisation_destroys_gradcam(trained):
    """Adebayo et al. 2018: a map that survives re-initialising the weights explains the
    input, not the model. Grad-CAM must lose its ranking under randomisation, and keep it
    under a harmless 1 % weight perturbation (so the check can tell the two apart)."""
    opts = MethodOptions(layer="features.6")
    random_model = randomized_copy(trained)
    nudged = copy.deepcopy(trained)
    with torch.no_grad():
        for parameter in nudged.parameters():
            parameter.mul_(1 + 0.01 * torch.randn_like(parameter))
    randomised, perturbed = [], []
    for (x, _), kind in objects(6):
        real = attribute("gradcam", trained, x.unsqueeze(0), kind, opts).heat
        randomised.append(
            rank_correlation(
                real, attribute("gradcam", random_model, x.unsqueeze(0), kind, opts).heat
            )
        )
        perturbed.append(
            rank_correlation(real, attribute("gradcam", nudged, x.unsqueeze(0), kind, opts).heat)
        )
    assert np.mean(randomised) < 0.5 and max(randomised) < 0.75, randomised
    assert min(perturbed) > 0.9, perturbed
    assert rank_correlation(np.arange(10.0), np.arange(10.0)) == pytest.approx(1.0)
    assert rank_correlation(np.arange(10.0), -np.arange(10.0)) == pytest.approx(-1.0)
    assert rank_correlation(np.array([0, 0, 0, 1.0]), np.array([0, 0, 0, 1.0])) == pytest.approx(
        1.0
    )


class ReluNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.fc = nn.Linear(4 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.relu(self.conv(x)).flatten(1))


@pytest.mark.parametrize("method", ["deconvnet", "guided-backprop"])
def test_relu_backward_rules_by_hand(method):
    net = ReluNet().eval()
    x = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(5))
    target = 1
    f = net.conv(x)  # the ReLU's input
    r_out = net.fc.weight[target].reshape(1, 4, 4, 4)  # d score / d ReLU output
    rules = {
        "backprop": (f > 0) * r_out,
        "deconvnet": (r_out > 0) * r_out,
        "guided-backprop": (f > 0) * (r_out > 0) * r_out,
    }
    xx = x.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(net.conv(xx), xx, grad_outputs=rules[method].detach())
    got = attribute(method, net, x, target, MethodOptions()).raw
    np.testing.assert_allclose(got, expected[0].detach().numpy(), rtol=1e-5, atol=1e-6)
    (plain,) = torch.autograd.grad(net(xx)[0, target], xx)
    (by_rule,) = torch.autograd.grad(net.conv(xx), xx, grad_outputs=rules["backprop"].detach())
    np.testing.assert_allclose(plain.numpy(), by_rule.numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got, plain[0].numpy())  # the rule really changed the gradient


def test_occlusion_equals_brute_force():
    torch.manual_seed(1)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 5)
    ).eval()
    x = torch.randn(1, 3, 20, 17)
    opts = MethodOptions(window=6, stride=4, baseline="mean", batch_size=7)
    attr = occlusion(net, x, 2, opts)
    base = x.mean(dim=(2, 3), keepdim=True)
    ys, xs = window_positions(20, 6, 4), window_positions(17, 6, 4)
    assert ys == [0, 4, 8, 12, 14] and xs == [0, 4, 8, 11]
    expected = np.zeros((len(ys), len(xs)))
    with torch.no_grad():
        for i, y in enumerate(ys):
            for j, x0 in enumerate(xs):
                occluded = x.clone()
                occluded[..., y : y + 6, x0 : x0 + 6] = base
                expected[i, j] = float(net(occluded).softmax(1)[0, 2])
    np.testing.assert_allclose(attr.extra["probability_map"], expected, atol=1e-6)


def test_occlusion_heat_equals_captum_occlusion():
    from captum.attr import Occlusion

    torch.manual_seed(2)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 3), nn.Softmax(1)
    ).eval()
    x = torch.randn(1, 3, 16, 16)
    ours = occlusion(
        nn.Sequential(*list(net)[:-1]), x, 1, MethodOptions(window=4, stride=4, baseline="zero")
    )
    theirs = Occlusion(net).attribute(
        x, sliding_window_shapes=(3, 4, 4), strides=(3, 4, 4), target=1, baselines=0
    )
    np.testing.assert_allclose(
        ours.heat, np.clip(theirs[0, 0].detach().numpy(), 0, None), atol=1e-6
    )
    # The saved per-pixel drop is Captum's attribution itself, negative values included,
    # when the windows tile the input; otherwise the last window differs (cut vs flush).
    np.testing.assert_allclose(ours.extra["drop"], theirs[0, 0].detach().numpy(), atol=1e-6)
    assert (ours.extra["drop"] < 0).any()
    shifted = occlusion(
        nn.Sequential(*list(net)[:-1]), x, 1, MethodOptions(window=6, stride=4, baseline="zero")
    )
    cut = Occlusion(net).attribute(
        x, sliding_window_shapes=(3, 6, 6), strides=(3, 4, 4), target=1, baselines=0
    )
    assert not np.allclose(shifted.extra["drop"], cut[0, 0].detach().numpy(), atol=1e-6)
