"""detect: equal to torchvision on the same weights; filters, coordinates, exports, drawing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers import jsonl, match_detections, reference_detector
from PIL import Image
from torchvision.models import get_model_weights

from cvtasks.detect.predictor import (
    Detection,
    DetectionFilter,
    parse_classes,
    yolo_classes,
    yolo_lines,
)
from cvtasks.errors import UsageError
from cvtasks.render.draw import colour, draw_boxes

FRCNN = "fasterrcnn_mobilenet_v3_large_320_fpn"


def reference_records(model, weights, images, conf, min_size=None, **kwargs):
    net, transforms = reference_detector(model, weights, min_size, **kwargs)
    categories = (
        __import__("torchvision").models.get_model_weights(model).DEFAULT.meta["categories"]
    )
    out = []
    with torch.no_grad():
        for path in images:
            result = net([transforms(Image.open(path).convert("RGB"))])[0]
            dets = [
                {
                    "index": int(label),
                    "score": float(score),
                    "box": [float(v) for v in box],
                    "_i": i,
                }
                for i, (box, label, score) in enumerate(
                    zip(result["boxes"], result["labels"], result["scores"], strict=True)
                )
                if score >= conf and categories[int(label)] not in ("N/A", "__background__")
            ]
            out.append((dets, result))
    return out


@pytest.mark.parametrize("batch", ["1", "3"])
def test_matches_torchvision_reference(cli, photos, small_models, batch):
    images = list(photos.values())
    result = cli(
        [
            "detect",
            *images,
            "-m",
            FRCNN,
            "-w",
            small_models[FRCNN],
            "--conf",
            "0.1",
            "-b",
            batch,
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    expected = reference_records(FRCNN, small_models[FRCNN], images, 0.1, num_classes=91)
    assert sum(len(d) for d, _ in expected) >= 3  # the comparison is not vacuous
    for record, (dets, _) in zip(records, expected, strict=True):
        match_detections(record["predictions"], dets)
        scores = [p["score"] for p in record["predictions"]]
        assert scores == sorted(scores, reverse=True)


def test_filter_threshold_classes_nms_maxdet():
    boxes = torch.tensor(
        [[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60], [0, 0, 10, 10]], dtype=torch.float
    )
    scores = torch.tensor([0.9, 0.8, 0.7, 0.3])
    labels = torch.tensor([1, 1, 3, 3])
    assert DetectionFilter(conf=0.5).keep(boxes, scores, labels).tolist() == [0, 1, 2]
    assert DetectionFilter(conf=0.0, classes={3}).keep(boxes, scores, labels).tolist() == [2, 3]
    assert DetectionFilter(conf=0.0, iou=0.5).keep(boxes, scores, labels).tolist() == [0, 2, 3]
    assert DetectionFilter(conf=0.0, agnostic=True).keep(boxes, scores, labels).tolist() == [0, 2]
    assert DetectionFilter(conf=0.0, max_det=2).keep(boxes, scores, labels).tolist() == [0, 1]
    assert DetectionFilter(conf=0.0, hidden={1}).keep(boxes, scores, labels).tolist() == [2, 3]


def test_parse_classes():
    categories = ["__background__", "person", "bicycle", "N/A", "car"]
    assert parse_classes(["Person", "4"], categories) == {1, 4}
    assert parse_classes([], categories) is None
    with pytest.raises(UsageError, match="did you mean 'person'"):
        parse_classes(["persn"], categories)
    with pytest.raises(UsageError):
        parse_classes(["3"], categories)  # N/A is not a class


def test_unknown_class_name_is_exit_2(cli, photos, small_models):
    result = cli(
        [
            "detect",
            photos["chelsea"],
            "-m",
            FRCNN,
            "-w",
            small_models[FRCNN],
            "--classes",
            "persn,car",
        ]
    )
    assert result.exit_code == 2 and "did you mean 'person'" in result.stderr


def test_detect_rejects_other_task_models(cli, photos):
    result = cli(["detect", photos["chelsea"], "-m", "keypointrcnn_resnet50_fpn"])
    assert result.exit_code == 2 and "unknown detect model" in result.stderr


@pytest.fixture
def handmade(monkeypatch):
    """Replace the R-CNN box head: one detection at fixed coordinates of the *resized* input,
    so the model's own transform must scale it back to the original image."""
    from torchvision.models.detection.roi_heads import RoIHeads

    seen: dict[str, tuple[int, int]] = {}

    def fake_forward(self, features, proposals, image_shapes, targets=None):
        h, w = image_shapes[0]
        seen["resized"] = (h, w)
        boxes = torch.tensor(
            [
                [0.1 * w, 0.2 * h, 0.5 * w, 0.9 * h],
                [0.6 * w, 0.1 * h, 0.9 * w, 0.3 * h],
                [0.0, 0.0, 0.05 * w, 0.05 * h],
            ]
        )
        # keypoint models: 17 points per box, point k at (0.05 k, 0.05 k) of the input
        fractions = torch.arange(17, dtype=torch.float32) * 0.05
        points = torch.stack([fractions * w, fractions * h, torch.ones(17)], dim=1)
        return [
            {
                "boxes": boxes,
                "labels": torch.tensor([1, 3, 1]),
                "scores": torch.tensor([0.9, 0.6, 0.4]),
                "keypoints": points.expand(3, 17, 3).clone(),
                "keypoints_scores": torch.ones(3, 17),
            }
        ], {}

    monkeypatch.setattr(RoIHeads, "forward", fake_forward)
    return seen


def test_boxes_are_in_original_pixels_non_square_and_exif(
    cli, photos, small_models, handmade, tmp_path
):
    upright = Image.open(photos["coffee"])  # 600 x 400
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned 90 degrees, shown upright
    rotated = tmp_path / "rotated.jpg"
    upright.transpose(Image.Transpose.ROTATE_90).save(rotated, exif=exif, quality=95)
    for path in (photos["coffee"], rotated):
        result = cli(
            [
                "detect",
                path,
                "-m",
                FRCNN,
                "-w",
                small_models[FRCNN],
                "--conf",
                "0.5",
                "-f",
                "jsonl",
                "-q",
            ]
        )
        record = jsonl(result.stdout)[0]
        assert (record["width"], record["height"]) == (600, 400)
        boxes = [v for p in record["predictions"] for v in p["box"]]
        assert boxes == pytest.approx([60, 80, 300, 360, 360, 40, 540, 120], abs=0.05)
        assert [p["label"] for p in record["predictions"]] == ["person", "car"]
    assert handmade["resized"] != (400, 600)  # the model really resized internally


def test_coco_and_yolo_exports_round_trip(cli, photos, small_models, handmade, tmp_path):
    out = tmp_path / "out"
    args = [
        "detect",
        photos["coffee"],
        photos["chelsea"],
        "-m",
        FRCNN,
        "-w",
        small_models[FRCNN],
        "-q",
        "--conf",
        "0.3",
    ]
    records = jsonl(cli([*args, "-f", "jsonl", "-o", out, "--save-txt"]).stdout)
    coco = json.loads(cli([*args, "-f", "coco"]).stdout)
    assert [i["file_name"] for i in coco["images"]] == [
        str(photos["coffee"]),
        str(photos["chelsea"]),
    ]
    for image, record in zip(coco["images"], records, strict=True):
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        assert len(anns) == len(record["predictions"]) == 3
        for ann, pred in zip(anns, record["predictions"], strict=True):
            x, y, w, h = ann["bbox"]
            assert [x, y, x + w, y + h] == pytest.approx(pred["box"], abs=0.02)
            assert (ann["category_id"], ann["score"]) == (pred["index"], pred["score"])
    assert {c["name"] for c in coco["categories"]} == {"person", "car"}
    # Read back as YOLO tools do: the class id is a line number of labels/classes.txt, and
    # data.yaml's names agree with it; ids are contiguous (COCO's 80 classes, not 91 slots).
    names = (out / "labels" / "classes.txt").read_text().splitlines()
    data = yaml.safe_load((out / "labels" / "data.yaml").read_text())
    assert len(names) == data["nc"] == 80 and data["names"] == dict(enumerate(names))
    assert (names[0], names[39], names[79]) == ("person", "bottle", "toothbrush")
    for record in records:
        rel = record["files"]["labels"]
        lines = (out / rel).read_text().splitlines()
        for line, pred in zip(lines, record["predictions"], strict=True):
            index, cx, cy, w, h, _score = (float(v) for v in line.split())
            W, H = record["width"], record["height"]
            box = [(cx - w / 2) * W, (cy - h / 2) * H, (cx + w / 2) * W, (cy + h / 2) * H]
            assert box == pytest.approx(pred["box"], abs=0.01)
            assert names[int(index)] == pred["label"]


def test_yolo_lines_and_contiguous_ids():
    names, ids = yolo_classes(["__background__", "person", "N/A", "bottle", "book"])
    assert names == ["person", "bottle", "book"] and ids == {1: 0, 3: 1, 4: 2}
    text = yolo_lines([Detection("book", 4, 0.5, [10, 20, 30, 60])], 100, 200, ids)
    assert text == "2 0.200000 0.200000 0.200000 0.200000 0.500000\n"
    coco = get_model_weights("fasterrcnn_resnet50_fpn").DEFAULT.meta["categories"]
    coco_names, coco_ids = yolo_classes(coco)
    assert len(coco_names) == 80 and coco_ids[44] == 39 and coco_names[39] == "bottle"


def test_drawn_box_pixels_are_on_the_box():
    image = np.zeros((200, 300, 3), np.uint8)
    out = draw_boxes(image, [[50, 60, 250, 180]], [""], [colour(1)])
    changed = out.any(axis=2)
    assert changed[60, 100] and changed[180, 100] and changed[100, 50] and changed[100, 250]
    assert not changed[120, 150] and not changed[10, 10]
    assert tuple(out[60, 100]) == colour(1)


def test_annotated_detections_land_on_boxes(cli, photos, small_models, handmade, tmp_path):
    out = tmp_path / "out"
    cli(
        [
            "detect",
            photos["coffee"],
            "-m",
            FRCNN,
            "-w",
            small_models[FRCNN],
            "-o",
            out,
            "--save-images",
            "-q",
        ]
    )
    drawn = np.asarray(Image.open(out / Path(photos["coffee"]).name)).astype(int)
    original = np.asarray(Image.open(photos["coffee"])).astype(int)
    changed = np.abs(drawn - original).max(axis=2) > 60
    assert changed[200, 58:63].any() and changed[200, 297:303].any()  # left/right edges of box 1
    assert not changed[250, 150:250].any()  # inside box 1, away from its tag


@pytest.mark.parametrize("task", ["detect", "pose"])
def test_reduced_scale_decoding_maps_boxes_back_exactly(
    cli, photos, small_models, handmade, tmp_path, monkeypatch, task
):
    """A 2400x1600 photo stored turned (EXIF 6) is decoded at 1/4 scale for a model resizing
    to 320 px (--jpeg-draft, the default): boxes come back in full-size upright pixels."""
    import cvtasks.samples

    big = Image.open(photos["coffee"]).resize((2400, 1600), Image.BICUBIC)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "big.jpg"
    big.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)
    decoded: list[tuple[int, int]] = []
    original = cvtasks.samples.decode_image

    def spy(*args, **kwargs):
        image = original(*args, **kwargs)
        decoded.append(image.size)
        return image

    monkeypatch.setattr(cvtasks.samples, "decode_image", spy)
    if task == "detect":
        model, weights = FRCNN, small_models[FRCNN]
    else:  # keypointrcnn resized to 480 here (800 by default): 1/2 scale
        model, weights = "keypointrcnn_resnet50_fpn", small_models["keypointrcnn_resnet50_fpn"]
    base = [task, path, "-m", model, "-w", weights, "--conf", "0.5", "-f", "jsonl", "-q"]
    base += ["--min-size", "480"] if task == "pose" else []
    records = {}
    flags = ["--jpeg-draft", "--no-jpeg-draft"]
    if task == "detect":  # the GPU code on CPU tensors (pose shares it; keypointrcnn is slow)
        flags.append("--decode-on=device")
    for flag in flags:
        result = cli([*base, flag])
        assert result.exit_code == 0, result.stderr
        records[flag] = jsonl(result.stdout)[0]
    assert decoded[0] == ((600, 400) if task == "detect" else (1200, 800))  # reduced, upright
    assert decoded[-1] == (2400, 1600)
    for record in records.values():
        assert (record["width"], record["height"]) == (2400, 1600)
        boxes = [v for p in record["predictions"] for v in p["box"]]
        expected = [240, 320, 1200, 1440, 1440, 160, 2160, 480]
        assert boxes[: len(expected)] == pytest.approx(expected[: len(boxes)], abs=0.05)
        if task == "pose":
            points = list(record["predictions"][0]["keypoints"].values())
            want = [v for k in range(17) for v in (0.05 * k * 2400, 0.05 * k * 1600)]
            assert [v for p in points for v in p[:2]] == pytest.approx(want, abs=0.05)


def test_boxes_take_the_colour_of_their_class():
    from cvtasks.detect.predictor import Detection, draw_detections
    from cvtasks.render.palette import class_colour

    image = np.full((200, 300, 3), 255, np.uint8)
    objects = [
        Detection("person", 1, 0.9, [10, 10, 90, 190]),
        Detection("person", 1, 0.8, [110, 10, 190, 190]),
        Detection("car", 3, 0.7, [210, 10, 290, 190]),
    ]
    drawn = draw_detections(image, objects)
    left_edges = [tuple(int(v) for v in drawn[150, x]) for x in (10, 110, 210)]
    assert left_edges == [class_colour(1), class_colour(1), class_colour(3)]
