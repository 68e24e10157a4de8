"""inspect: MACs and parameters equal torchvision's published figures for every classifier;
output sizes and receptive fields follow the lecture's arithmetic."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import get_model_weights

from cvtasks.inspect.build import build_for_inspection, default_input_size
from cvtasks.inspect.table import inspect_model

TRANSFORMERS = ("vit_", "swin_", "maxvit_")


def table_of(name: str):
    model, resolved = build_for_inspection(name)
    return inspect_model(model, name, default_input_size(resolved))


@pytest.mark.parametrize("name", torchvision.models.list_models(module=torchvision.models))
def test_params_exact_and_macs_match_torchvision(name):
    meta = get_model_weights(name).DEFAULT.meta
    table = table_of(name)
    assert table.total_params == meta["num_params"]
    tolerance = 0.05 if name.startswith(TRANSFORMERS) else 0.01
    # _ops is published with 3 decimals: allow that rounding too (shufflenet_v2_x0_5: 0.040)
    assert abs(table.gmacs - meta["_ops"]) <= max(tolerance * meta["_ops"], 0.0005), (
        table.gmacs,
        meta["_ops"],
    )


def rows_by_name(table):
    found = {}
    for row in table.rows:
        found.setdefault(row.name, []).append(row)
    return found


def test_known_receptive_fields():
    vgg = rows_by_name(table_of("vgg16"))
    assert vgg["features.28"][0].rf == 196  # conv5_3
    assert vgg["features.30"][0].rf == 212 and vgg["features.30"][0].jump == 32  # pool5
    alexnet = rows_by_name(table_of("alexnet"))
    assert alexnet["features.0"][0].rf == 11 and alexnet["features.0"][0].jump == 4
    resnet = rows_by_name(table_of("resnet50"))
    assert resnet["layer4.2.conv3"][0].rf == 427
    assert resnet["fc"][0].rf is None and resnet["fc"][0].global_
    assert resnet["fc"][0].text("rf") == "global"


@pytest.mark.parametrize(("stride", "size", "fits"), [(1, 5, True), (2, 3, True), (3, 2, False)])
def test_lecture_7x7_input_3x3_filter(stride, size, fits):
    net = nn.Sequential(nn.Conv2d(1, 1, 3, stride=stride))
    (row,) = inspect_model(net, "toy", 7, channels=1).rows
    assert row.output == [1, size, size]
    assert row.rf == 3 and row.jump == stride and row.kernel == 3
    assert (row.note is None) == fits
    if not fits:
        assert "(7-3+2*0)/3+1=2.33333 does not fit, last 1 px unused" in row.note


def test_padding_keeps_size_and_macs_by_hand():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 4, 5, stride=2, padding=2, bias=False)
    )
    table = inspect_model(net, "toy", 32)
    first, second = table.rows
    assert first.output == [8, 32, 32] and second.output == [4, 16, 16]
    assert first.macs == 8 * 32 * 32 * 3 * 3 * 3
    assert second.macs == 4 * 16 * 16 * 8 * 5 * 5
    assert first.params == 8 * 3 * 9 + 8 and second.params == 4 * 8 * 25
    assert table.total_macs == first.macs + second.macs


class TwoPaths(nn.Module):
    """A residual block: 1x1 shortcut + two 3x3 convs; the sum sees the wider field."""

    def __init__(self) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(3, 4, 1)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.after = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        return self.after(self.pool(self.shortcut(x) + self.b(self.a(x))))


def test_hand_built_receptive_fields():
    stack = inspect_model(nn.Sequential(nn.Conv2d(3, 3, 3), nn.Conv2d(3, 3, 3)), "toy", 16)
    assert [(r.rf, r.jump) for r in stack.rows] == [(3, 1), (5, 1)]
    strided = inspect_model(
        nn.Sequential(nn.Conv2d(3, 3, 3, stride=2), nn.Conv2d(3, 3, 3)), "toy", 17
    )
    assert [(r.rf, r.jump) for r in strided.rows] == [(3, 2), (7, 2)]
    rows = rows_by_name(inspect_model(TwoPaths(), "toy", 16))
    assert rows["shortcut"][0].rf == 1 and rows["b"][0].rf == 5
    assert (rows["pool"][0].rf, rows["pool"][0].jump) == (6, 2)  # 5 + (2-1)*1
    assert (rows["after"][0].rf, rows["after"][0].jump) == (10, 2)  # 6 + (3-1)*2


def test_attention_counted_despite_fast_path():
    assert torch.backends.mha.get_fastpath_enabled()
    table = table_of("vit_b_32")
    assert table.gmacs == pytest.approx(
        get_model_weights("vit_b_32").DEFAULT.meta["_ops"], rel=0.01
    )
    assert torch.backends.mha.get_fastpath_enabled()  # restored


def test_cli(cli):
    result = cli(["inspect", "vgg16", "-f", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    layers = {layer["name"]: layer for layer in data["layers"]}
    assert layers["features.0"] == {
        "name": "features.0", "type": "Conv2d", "kernel": 3, "stride": 1, "padding": 1,
        "output": [64, 224, 224], "rf": 3, "global": False, "jump": 1, "params": 1792,
        "macs": 86704128, "note": None,
    }  # fmt: skip
    assert layers["classifier.6"]["rf"] is None and layers["classifier.6"]["global"] is True
    assert layers["features.30"]["kernel"] == 2 and layers["features.30"]["padding"] == 0
    assert data["total_params"] == 138357544 and data["total_gmacs"] == pytest.approx(
        15.47, abs=0.01
    )
    csv_out = cli(["inspect", "resnet18", "-f", "csv", "--input-size", "64"]).stdout.splitlines()
    assert csv_out[0] == "name,type,kernel,stride,padding,output,rf,global,jump,params,macs,note"
    assert any(line.startswith("layer4.1.conv2,Conv2d,3,1,1,512x2x2,") for line in csv_out)
    assert any(line.startswith("fc,Linear,,,,1000,,true,,") for line in csv_out)
    assert cli(["inspect", "fasterrcnn_resnet50_fpn"]).exit_code == 2
    small = cli(["inspect", "alexnet", "--input-size", "16"])
    assert small.exit_code == 2 and "cannot run on a 16 px input" in small.stderr


def test_weights_file_sets_the_head(cli, tmp_path):
    weights = tmp_path / "ten.pth"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), weights)
    rows = [
        json.loads(line)
        for line in cli(["inspect", "resnet18", "-w", weights, "-f", "jsonl"]).stdout.splitlines()
    ]
    assert next(r for r in rows if r.get("name") == "fc")["output"] == [10]


def test_unequal_sides_are_lists():
    net = nn.Sequential(nn.Conv2d(3, 4, (1, 7), stride=(1, 2), padding=(0, 3)))
    (row,) = inspect_model(net, "toy", 32).rows
    assert row.kernel == [1, 7] and row.stride == [1, 2] and row.padding == [0, 3]
    assert row.rf == [1, 7] and row.jump == [1, 2] and row.text("kernel") == "1x7"
