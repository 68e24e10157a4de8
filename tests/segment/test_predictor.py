"""segment: semantic masks equal torchvision's upsample-then-argmax; instance masks as RLE."""

from __future__ import annotations

import json

import numpy as np
import pycocotools.mask as coco_mask
import pytest
import torch
import torch.nn.functional as F
from helpers import jsonl, match_detections, reference_detector
from PIL import Image
from torchvision.models import get_model, get_model_weights

from cvtasks.render.draw import blend_masks, colour
from cvtasks.segment.predictor import decode_rle, encode_rle, mask_polygons, upsampled_argmax

LRASPP = "lraspp_mobilenet_v3_large"
MASKRCNN = "maskrcnn_resnet50_fpn"


def test_semantic_matches_torchvision(cli, photos, small_models, tmp_path):
    out = tmp_path / "out"
    images = list(photos.values())
    result = cli(
        [
            "segment",
            *images,
            "-m",
            LRASPP,
            "-w",
            small_models[LRASPP],
            "-o",
            out,
            "-q",
            "-f",
            "jsonl",
        ]
    )
    assert result.exit_code == 0, result.stderr
    net = get_model(LRASPP, weights=None, weights_backbone=None, num_classes=21)
    net.load_state_dict(torch.load(small_models[LRASPP], weights_only=True))
    net.eval()
    transforms = get_model_weights(LRASPP).DEFAULT.transforms()
    for record, path in zip(jsonl(result.stdout), images, strict=True):
        image = Image.open(path).convert("RGB")
        with torch.no_grad():
            logits = net(transforms(image).unsqueeze(0))["out"]
        expected = (
            F.interpolate(
                logits, size=(image.height, image.width), mode="bilinear", align_corners=False
            )
            .argmax(1)[0]
            .numpy()
        )
        mask = np.asarray(Image.open(out / record["files"]["mask"]))
        assert mask.shape == (image.height, image.width)
        assert (mask == expected).mean() > 0.9999
        assert len(np.unique(expected)) > 2  # not a trivial map
        fractions = {p["index"]: p["fraction"] for p in record["predictions"]}
        for index, count in zip(*np.unique(mask, return_counts=True), strict=True):
            assert fractions[int(index)] == pytest.approx(count / mask.size, abs=1e-6)


def _reference_up(logits: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    up = F.interpolate(logits.unsqueeze(0), size=size, mode="bilinear", align_corners=False)
    return up[0].numpy()


def assert_same_classes(ours: np.ndarray, logits: torch.Tensor, size: tuple[int, int]) -> None:
    """Equal to upsample-then-argmax, except at float-rounding ties (then both are maxima)."""
    up = _reference_up(logits, size)
    expected = up.argmax(axis=0)
    differ = np.argwhere(ours != expected)
    assert len(differ) <= 1e-5 * ours.size
    tolerance = 1e-6 * float(np.abs(up).max())
    for y, x in differ:
        assert up[ours[y, x], y, x] >= up[expected[y, x], y, x] - tolerance


@pytest.mark.parametrize(
    ("classes", "low", "size"),
    [
        (21, (65, 87), (480, 640)),  # the usual: 8x up, aspect kept
        (5, (13, 17), (100, 70)),  # odd factors, aspect changed
        (3, (40, 40), (17, 23)),  # downsampling
        (4, (1, 9), (7, 50)),  # a single source row
        (21, (30, 40), (30, 40)),  # same size
    ],
)
def test_upsampled_argmax_equals_upsampling_every_class(classes, low, size):
    generator = torch.Generator().manual_seed(sum(low) + classes)
    # Smooth regions (as real logits have) and pure noise (every pixel a border).
    smooth = F.interpolate(
        torch.randn(1, classes, max(1, low[0] // 6), max(1, low[1] // 6), generator=generator),
        size=low,
        mode="bilinear",
    )[0]
    noise = torch.randn(classes, *low, generator=generator)
    for logits in (smooth, noise):
        assert_same_classes(upsampled_argmax(logits, size, None), logits, size)
    restricted = upsampled_argmax(smooth, size, [2])
    assert set(np.unique(restricted)) <= {0, 2}
    two = np.where(restricted == 2, 1, 0)
    assert_same_classes(two, smooth[[0, 2]], size)


@pytest.mark.parametrize("seed", [0, 7, 8])
def test_upsampled_argmax_on_a_photo_sized_map(seed):
    generator = torch.Generator().manual_seed(seed)
    low = torch.randn(1, 21, 10, 14, generator=generator)
    logits = F.interpolate(low, size=(520, 728), mode="bilinear")[0]
    classes = upsampled_argmax(logits, (1500, 2100), None)
    assert classes.shape == (1500, 2100) and len(np.unique(classes)) > 3
    assert_same_classes(classes, logits, (1500, 2100))


def test_handmade_logits_land_at_original_size(cli, photos, small_models, monkeypatch, tmp_path):
    """Left half class 8 (cat), right half class 12 (dog), at the model's low resolution."""
    from torchvision.models.segmentation.lraspp import LRASPP as Model

    def fake_forward(self, x):
        logits = torch.zeros(x.shape[0], 21, 8, 8)
        logits[:, 8, :, :4] = 5.0
        logits[:, 12, :, 4:] = 5.0
        return {"out": logits}

    monkeypatch.setattr(Model, "forward", fake_forward)
    out = tmp_path / "out"
    result = cli(
        [
            "segment",
            photos["chelsea"],
            "-m",
            LRASPP,
            "-w",
            small_models[LRASPP],
            "-o",
            out,
            "--save-images",
            "-q",
            "-f",
            "jsonl",
        ]
    )
    record = jsonl(result.stdout)[0]
    mask = np.asarray(Image.open(out / record["files"]["mask"]))
    assert mask.shape == (300, 451)
    assert (mask[:, :220] == 8).all() and (mask[:, 232:] == 12).all()
    assert {p["label"]: p["fraction"] for p in record["predictions"]} == pytest.approx(
        {"cat": 0.5, "dog": 0.5}, abs=0.02
    )
    annotated = np.asarray(Image.open(out / record["files"]["annotated"])).astype(int)
    original = np.asarray(Image.open(photos["chelsea"])).astype(int)
    tint = annotated[250:, :200] - original[250:, :200]  # bottom-left, clear of the legend
    expected = 0.5 * (np.array(colour(8)) - original[250:, :200])
    assert np.abs(tint - expected).mean() < 3


def test_rle_round_trip_and_pycocotools():
    rng = np.random.default_rng(0)
    mask = np.zeros((37, 53), bool)
    mask[5:20, 10:40] = True
    mask[rng.random(mask.shape) > 0.95] = True
    rle = encode_rle(mask)
    assert json.loads(json.dumps(rle)) == rle
    assert np.array_equal(decode_rle(rle), mask)
    official = coco_mask.decode({"size": rle["size"], "counts": rle["counts"].encode()})
    assert np.array_equal(official.astype(bool), mask)
    assert coco_mask.area({"size": rle["size"], "counts": rle["counts"].encode()}) == mask.sum()


def test_polygons_cover_the_mask():
    mask = np.zeros((50, 60), bool)
    mask[10:30, 20:50] = True
    (polygon,) = mask_polygons(mask)
    xs, ys = polygon[0::2], polygon[1::2]
    assert (min(xs), max(xs), min(ys), max(ys)) == (20, 49, 10, 29)


def test_blend_masks_changes_only_masked_pixels():
    image = np.full((20, 20, 3), 100, np.uint8)
    mask = np.zeros((20, 20), bool)
    mask[5:10, 5:10] = True
    out = blend_masks(image, [mask], [(200, 0, 0)], 0.5)
    assert (out[mask] == [150, 50, 50]).all() and (out[~mask] == 100).all()


def test_instance_matches_torchvision(cli, photos, small_models):
    path = photos["astronaut"]
    result = cli(
        [
            "segment",
            path,
            "-m",
            MASKRCNN,
            "-w",
            small_models[MASKRCNN],
            "--min-size",
            "320",
            "--conf",
            "0.5",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    record = jsonl(result.stdout)[0]
    net, transforms = reference_detector(MASKRCNN, small_models[MASKRCNN], 320, num_classes=91)
    with torch.no_grad():
        ref = net([transforms(Image.open(path).convert("RGB"))])[0]
    categories = get_model_weights(MASKRCNN).DEFAULT.meta["categories"]
    keep = [
        i
        for i, (s, label) in enumerate(
            zip(ref["scores"].tolist(), ref["labels"].tolist(), strict=True)
        )
        if s >= 0.5 and categories[label] != "N/A"
    ]
    assert keep, "reference finds nothing: the test would be vacuous"
    theirs = [
        {
            "index": int(ref["labels"][i]),
            "score": float(ref["scores"][i]),
            "box": ref["boxes"][i].tolist(),
            "_mask": (ref["masks"][i, 0] > 0.5).numpy(),
        }
        for i in keep
    ]
    match_detections(record["predictions"], theirs)
    for pred in record["predictions"]:
        ours = decode_rle(pred["mask"])
        twin = min(
            theirs,
            key=lambda t: abs(t["score"] - pred["score"]) + abs(t["box"][0] - pred["box"][0]),
        )
        assert ours.shape == (512, 512)
        assert (ours == twin["_mask"]).mean() > 0.999
