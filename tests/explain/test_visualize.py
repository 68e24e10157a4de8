"""Visualisations: filter grids, feature maps, top patches, embeddings, class maximisation."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from helpers import jsonl
from PIL import Image, ImageDraw
from torch import nn

from cvtasks.explain import visualize as viz


def has_title(figure: Image.Image) -> bool:
    """A white band with dark text above the picture."""
    top = np.asarray(figure.convert("L"))[:40]
    return (top < 80).sum() > 50 and (top > 240).mean() > 0.6


def test_filter_grid_layouts():
    rgb = viz.filter_grid(torch.randn(64, 3, 7, 7), scale=8)
    assert (rgb.mode, rgb.rows, rgb.columns) == ("rgb", 8, 8)
    assert rgb.image.shape == (8 * (56 + 2) + 2, 8 * (56 + 2) + 2, 3)
    deep = viz.filter_grid(torch.randn(128, 64, 3, 3), max_channels=16, scale=4)
    assert (deep.mode, deep.rows, deep.columns) == ("channels", 16, 16)
    assert deep.image.shape == (16 * (12 + 2) + 2, 16 * (12 + 2) + 2, 3)
    odd = viz.filter_grid(torch.randn(10, 3, 5, 5), scale=1)
    assert (odd.rows, odd.columns) == (3, 4)
    readable = viz.filter_grid(torch.randn(64, 3, 7, 7))  # default: tiles of at least 64 px
    assert readable.image.shape[0] >= 8 * 64 and viz.scale_for(7) == 10 and viz.scale_for(3) == 22


def test_filters_cli(cli, r18_file, tmp_path):
    result = cli(["explain", "filters", "resnet18", "-w", r18_file, "-o", tmp_path])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["layer"] == "conv1" and record["shape"] == [64, 3, 7, 7]
    assert np.load(tmp_path / record["files"]["raw"]).shape == (64, 3, 7, 7)
    figure = Image.open(tmp_path / record["files"]["grid"])
    assert figure.width == 8 * (70 + 2) + 2 and figure.height > figure.width  # 70 px tiles + title
    assert has_title(figure)
    assert cli(["explain", "filters", "resnet18", "-w", r18_file]).exit_code == 2  # no --out


def test_feature_maps_cli(cli, photos, r18_file, tmp_path):
    result = cli(
        [
            "explain",
            "feature-maps",
            photos["chelsea"],
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--layer",
            "layer1",
            "-o",
            tmp_path,
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = jsonl(result.stdout)[0]
    assert record["shape"] == [64, 56, 56]
    assert np.load(tmp_path / record["files"]["raw"]).shape == (64, 56, 56)
    figure = Image.open(tmp_path / record["files"]["grid"])
    assert figure.width >= 8 * 64 and has_title(figure)
    missing = cli(["explain", "feature-maps", photos["chelsea"], "-m", "resnet18", "-w", r18_file])
    assert missing.exit_code == 2 and "needs --layer NAME" in missing.stderr


class PlusDetector(nn.Module):
    """Channel 0 fires on a bright 5x5 plus sign; channel 1 on a bright 5x5 square."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 5, bias=False)
        plus = torch.zeros(5, 5)
        plus[2, :] = 1
        plus[:, 2] = 1
        square = torch.ones(5, 5)
        with torch.no_grad():
            self.conv.weight[0] = (plus - plus.mean()).expand(3, 5, 5)
            self.conv.weight[1] = (square - 0.5 * plus).expand(3, 5, 5) / 25
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.conv(x))


def test_top_patches_find_the_pattern():
    rng = np.random.default_rng(0)
    model = PlusDetector().eval()
    collector = viz.TopPatchCollector(None, k=3)
    images, where = [], []
    for i in range(20):
        image = 0.3 * rng.random((3, 40, 40)).astype(np.float32)
        y, x = rng.integers(0, 35, size=2)
        if i % 4 == 0:  # every 4th image has a plus
            image[:, y + 2, x : x + 5] = 1.0
            image[:, y : y + 5, x + 2] = 1.0
            where.append((i, y, x))
        images.append(torch.from_numpy(image))
    field = viz.layer_field(model, "conv", images[0].unsqueeze(0))
    with torch.no_grad():
        for i, image in enumerate(images):
            collector.update(model(image.unsqueeze(0))[0], i)
    assert all(len(h) <= 3 for h in collector.heaps.values())
    assert all(isinstance(h, viz.Hit) for heap in collector.heaps.values() for h in heap)
    hits = collector.ranked(0)
    planted = {i: (y, x) for i, y, x in where}
    for hit in hits:
        assert hit.image in planted
        x1, y1, x2, y2 = viz.unit_box(field, hit.y, hit.x, 40, 40)
        assert (x2 - x1, y2 - y1) == (5, 5)
        patch = images[hit.image][0, y1:y2, x1:x2].numpy()
        assert (patch[2, :] == 1.0).all() and (patch[:, 2] == 1.0).all()  # the plus, centred


def test_top_patches_cli(cli, photos, r18_file, tmp_path):
    result = cli(
        [
            "explain",
            "top-patches",
            *photos.values(),
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--layer",
            "layer2",
            "--top-units",
            "4",
            "--k",
            "2",
            "-o",
            tmp_path,
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    assert len(jsonl(result.stdout)) == 3
    data = json.loads((tmp_path / "explain/top-patches.layer2.json").read_text())
    assert len(data["units"]) == 4 and len(data["patches"]) == 8 and data["images"] == 3
    assert data["receptive_field"] == [99, 99] and data["jump"] == [8, 8]
    for patch in data["patches"]:
        x1, y1, x2, y2 = patch["box_model_input"]
        assert 0 <= x1 < x2 <= 224 and 0 <= y1 < y2 <= 224
    grid = Image.open(tmp_path / "explain/top-patches.layer2.png")
    assert grid.width > 2 * 72 and grid.height > 4 * 72 and has_title(grid)


def draw_set(folder: Path, count: int, colour_rgb, shape: str, rng) -> None:
    folder.mkdir(parents=True)
    for i in range(count):
        image = Image.new("RGB", (96, 96), tuple(int(v) for v in rng.integers(90, 140, size=3)))
        draw = ImageDraw.Draw(image)
        x, y = rng.integers(10, 50, size=2)
        box = (int(x), int(y), int(x) + 36, int(y) + 36)
        (draw.rectangle if shape == "square" else draw.ellipse)(box, fill=colour_rgb)
        image.save(folder / f"{i:02d}.png")


@pytest.mark.parametrize("projection", ["tsne", "pca"])
def test_embed_separates_two_drawn_classes(cli, r18_file, tmp_path, projection):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    draw_set(tmp_path / "data" / "red", 12, (230, 30, 30), "square", rng)
    draw_set(tmp_path / "data" / "blue", 12, (30, 40, 230), "disc", rng)
    out = tmp_path / "out"
    result = cli(
        [
            "explain",
            "embed",
            tmp_path / "data",
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--color",
            "folder",
            "--projection",
            projection,
            "-o",
            out,
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    with (out / f"explain/embed.{projection}.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    coords = np.array([[float(r["x"]), float(r["y"])] for r in rows])
    labels = np.array([r["folder"] for r in rows])
    accuracy = LogisticRegression().fit(coords, labels).score(coords, labels)
    assert accuracy > 0.9
    assert Image.open(out / f"explain/embed.{projection}.png").size[0] > 500
    mosaic = Image.open(out / f"explain/embed.{projection}.mosaic.png")
    assert has_title(mosaic) and mosaic.width == 6 * (72 + 2) + 2  # 24 images: a 6x4 grid
    assert 4 * 74 < mosaic.height < 4 * 74 + 120


def test_maximize_raises_the_class_score(trained):
    model = copy.deepcopy(trained)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    result = viz.maximize_class(model, 1, 64, [0, 0, 0], [1, 1, 1], steps=40)
    assert result.scores[-1] > result.scores[0] + 3.0
    assert np.mean(result.scores[-10:]) > np.mean(result.scores[:10])  # rises overall, not by luck
    assert result.image.shape == (64, 64, 3) and result.image.dtype == np.uint8


def test_maximize_cli(cli, r18_file, tmp_path):
    result = cli(
        [
            "explain",
            "maximize",
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--target",
            "tabby",
            "--ascent-steps",
            "3",
            "-o",
            tmp_path,
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["target"] == {"label": "tabby", "index": 281}
    alone = Image.open(tmp_path / record["files"]["input"])
    assert alone.size == (224, 224)
    trace = (tmp_path / record["files"]["trajectory"]).read_text().splitlines()
    assert trace[0] == "step,score,probability" and len(trace) == 5
    figure = Image.open(tmp_path / record["files"]["image"])
    assert figure.width == 448 and figure.height > 448 and has_title(figure)
    assert (
        cli(["explain", "maximize", "-m", "resnet18", "-w", r18_file, "-o", tmp_path]).exit_code
        == 2
    )


def test_mosaic_positions_spread_and_never_overlap():
    rng = np.random.default_rng(0)
    ys = rng.uniform(0, 1, (80, 1))
    xs = np.concatenate([rng.normal(0, 0.01, (40, 1)), rng.normal(100, 0.01, (40, 1))])
    crowded = np.concatenate([xs, ys], axis=1)  # two tight columns of points
    cells = viz.grid_positions(crowded, 10, 8)
    assert len(set(cells)) == 80  # one image per cell
    left = [c for c, _ in cells[:40]]
    right = [c for c, _ in cells[40:]]
    # each cluster spreads over its own half (the last few placed may land elsewhere)
    assert sum(c < 5 for c in left) >= 38 and sum(c >= 5 for c in right) >= 38


def test_maximize_with_the_defaults_raises_the_logit(cli, tmp_path):
    """The reported case: resnet18 (seed 0, random), tabby: the logit went -0.011 -> -0.068
    with the old defaults (jitter 8 on a network that is not shift-invariant)."""
    torch.manual_seed(0)
    weights = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), weights)
    result = cli(
        [
            "explain",
            "maximize",
            "-m",
            "resnet18",
            "-w",
            weights,
            "--target",
            "tabby",
            "--ascent-steps",
            "50",
            "-o",
            tmp_path,
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["steps"] == 50
    trace = np.loadtxt(tmp_path / record["files"]["trajectory"], delimiter=",", skiprows=1)
    assert record["final_score"] > record["initial_score"] + 0.3
    assert trace[-10:, 1].mean() > trace[1:11, 1].mean()


def test_jitter_is_undone_before_the_update():
    """The step is the gradient at the shifted image shifted back: for a model that only sees
    one pixel, the update lands on that pixel of the unshifted image."""

    class OnePixel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.unused = nn.Parameter(torch.zeros(1))  # where maximize_class finds the device

        def forward(self, x):
            return x[:, :, 10, 10].sum(dim=1, keepdim=True).repeat(1, 2)

    result = viz.maximize_class(
        OnePixel(), 0, 32, [0, 0, 0], [1, 1, 1], steps=3, jitter=4, blur_every=0, l2=0.0
    )
    assert result.scores[-1] > result.scores[0]


def test_maximize_with_defaults_reaches_the_class_on_the_real_model(cli, mnv2_file, tmp_path):
    """The best step is saved (the last one may have fallen back), and the saved input, fed to
    the model at its input size, is the class with p >= 0.9."""
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    result = cli(["explain", "maximize", "-m", "mobilenet_v2", "-w", mnv2_file,
                  "--target", "Egyptian cat", "-o", tmp_path])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["steps"] == 200 and 0 < record["best_step"] <= 200
    trace = np.loadtxt(tmp_path / record["files"]["trajectory"], delimiter=",", skiprows=1)
    assert trace[record["best_step"], 1] == trace[:, 1].max()
    model = mobilenet_v2()
    model.load_state_dict(torch.load(mnv2_file, weights_only=True))
    release = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    pixels = np.array(Image.open(tmp_path / record["files"]["input"]).convert("RGB"))
    assert pixels.shape == (224, 224, 3)
    x = torch.from_numpy(pixels).permute(2, 0, 1).float()[None] / 255
    x = (x - torch.tensor(release.mean).view(1, 3, 1, 1)) / torch.tensor(release.std).view(
        1, 3, 1, 1
    )
    with torch.no_grad():
        p = model.eval()(x).softmax(dim=1)[0]
    assert int(p.argmax()) == 285 and float(p[285]) >= 0.9
    assert abs(float(p[285]) - record["final_probability"]) < 1e-4  # recorded as saved


def test_maximize_one_unit_of_an_intermediate_layer(cli, mnv2_file, tmp_path):
    args = ["explain", "maximize", "-m", "mobilenet_v2", "-w", mnv2_file, "-o", tmp_path,
            "--layer", "features.10", "--ascent-steps", "20"]  # fmt: skip
    result = cli([*args, "--channel", "5"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["unit"] == {"layer": "features.10", "channel": 5}
    assert record["final_score"] > record["initial_score"] + 1.0
    assert (tmp_path / "explain" / "maximize.features.10.5.input.png").is_file()
    assert has_title(Image.open(tmp_path / record["files"]["image"]))
    bad = cli([*args, "--channel", "9999"])
    assert bad.exit_code == 2 and "features.10 has 64 channels" in bad.stderr
