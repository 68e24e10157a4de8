"""BatchNorm folding: every BatchNorm gone, the same function, untraceable models untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import with_random_statistics
from PIL import Image
from torch import nn
from torchvision.models import get_model, get_model_weights

from cvtasks.speed import fold_batchnorm, forward_copy, is_channels_last


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "efficientnet_b0"])
def test_folding_removes_every_batchnorm_and_keeps_the_function(name, photos):
    torch.manual_seed(0)
    model = with_random_statistics(get_model(name, weights=None))
    reference = copy.deepcopy(model)
    folded = fold_batchnorm(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in reference.modules())
    transforms = get_model_weights(name).DEFAULT.transforms()
    small = transforms(Image.open(photos["chelsea"]).convert("RGB")).unsqueeze(0)
    other = torch.rand(2, 3, 160, 200)  # another size: the traced graph is not shape-bound
    with torch.inference_mode():
        for x in (small, other):
            expected, got = reference(x), folded(x)
            scale = expected.abs().max()
            assert torch.allclose(got, expected, atol=1e-5 * float(scale), rtol=1e-5)
            assert torch.equal(got.argmax(dim=1), expected.argmax(dim=1))


class DataDependent(nn.Module):
    """A branch on tensor values: torch.fx cannot trace it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(x))
        return y if y.sum() > 0 else -y


def test_untraceable_or_batchnorm_free_models_are_returned_unchanged():
    branchy = DataDependent().eval()
    assert fold_batchnorm(branchy) is branchy
    assert isinstance(branchy.bn, nn.BatchNorm2d)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    assert fold_batchnorm(plain) is plain


def test_forward_copy_keeps_the_original_and_its_layout():
    torch.manual_seed(0)
    model = with_random_statistics(get_model("resnet18", weights=None))
    model = model.to(memory_format=torch.channels_last)
    copy_ = forward_copy(model)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # original untouched
    assert not any(isinstance(m, nn.BatchNorm2d) for m in copy_.modules())
    assert is_channels_last(copy_) and is_channels_last(model)
    assert not is_channels_last(get_model("resnet18", weights=None))
    x = torch.rand(1, 3, 96, 96)
    with torch.inference_mode():
        assert torch.allclose(
            copy_(x), model(x), rtol=1e-4, atol=1e-4 * float(model(x).abs().max())
        )
