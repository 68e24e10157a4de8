"""`cvtasks explain` on detectors and segmenters: crafted weight files whose outputs depend on
known regions (tests/crafted_models.py), Grad-CAM against pytorch-grad-cam's, the D-RISE
matching, and what is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from crafted_models import (
    GREEN_BOX,
    REACH,
    RED_BOX,
    crafted_detector,
    crafted_segmenter,
    labels_file,
    two_squares,
)
from helpers import jsonl
from PIL import Image
from torchvision.models import get_model

from cvtasks import predict
from cvtasks.explain.objects import default_object_layer, matched_scores

DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"
SEGMENTER = "lraspp_mobilenet_v3_large"
OCCLUSION = {"window": 64, "stride": 32}  # 9 x 9 positions on the 320-px image
# How far beyond what the output depends on a method may spread it: occlusion's patch, and
# Grad-CAM's upsampling of its stride-32 layer by one cell.
SPREAD = {"occlusion": OCCLUSION["window"], "gradcam": 32}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("crafted")
    return {
        "image": two_squares(folder / "two.png"),
        "detector": crafted_detector(folder / "detector.pth"),
        "segmenter": crafted_segmenter(folder / "segmenter.pth"),
        "labels": labels_file(folder / "labels.txt"),
    }


def _explain(scene, method: str, model: str, **options) -> list:
    weights = scene["detector" if model == DETECTOR else "segmenter"]
    found = predict(
        "explain", [scene["image"]], method=method, model=model, weights=str(weights),
        labels=str(scene["labels"]), quiet=True, **options,
    )  # fmt: skip
    return [result for _, result in found]


def _near(shape: tuple[int, int], inside: np.ndarray, reach: float) -> np.ndarray:
    """The pixels within ``reach`` (Chebyshev) of ``inside``."""
    ys, xs = np.nonzero(inside)
    near = np.zeros(shape, bool)
    y1, y2 = max(0, int(ys.min() - reach)), int(ys.max() + reach) + 1
    x1, x2 = max(0, int(xs.min() - reach)), int(xs.max() + reach) + 1
    near[y1:y2, x1:x2] = True
    return near


def _box_mask(shape: tuple[int, int], box) -> np.ndarray:
    mask = np.zeros(shape, bool)
    x1, y1, x2, y2 = (round(v) for v in box)
    mask[y1:y2, x1:x2] = True
    return mask


@pytest.mark.parametrize("method", ["saliency", "gradcam", "guided-backprop", "occlusion"])
def test_each_detection_is_explained_by_its_own_square(scene, method):
    options = OCCLUSION if method == "occlusion" else {}
    (result,) = _explain(scene, method, DETECTOR, conf=0.9, **options)
    assert {t.label for t in result.targets} == {"red", "green"}
    for target in result.targets:
        heat = np.clip(target.attribution.heat, 0, None)  # the input is the 320-px image
        assert heat.shape == (320, 320) and heat.sum() > 0
        reach = REACH + SPREAD.get(method, 0)
        near = _near(heat.shape, _box_mask(heat.shape, target.box), reach)
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        assert near[peak], (target.label, target.box, peak)
        assert heat[near].sum() / heat.sum() > 0.999, (target.label, heat[~near].max())
        square = RED_BOX if target.label == "red" else GREEN_BOX
        other = GREEN_BOX if target.label == "red" else RED_BOX
        own = _near(heat.shape, _box_mask(heat.shape, square), 16)  # the pointing game's tolerance
        assert own[peak]  # on its own square, never on the other
        assert heat[_box_mask(heat.shape, other)].sum() == 0


@pytest.mark.parametrize("method", ["saliency", "gradcam", "occlusion"])
def test_each_class_region_is_explained_by_its_own_square(scene, method):
    options = {"window": 96, "stride": 48} if method == "occlusion" else {}
    (result,) = _explain(scene, method, SEGMENTER, **options)
    assert [t.label for t in result.targets] == ["green", "red"]  # the larger region first
    for target in result.targets:
        heat = np.clip(target.attribution.heat, 0, None)  # at the model's 520-px input
        scale = heat.shape[0] / 320
        reach = (REACH + (96 if method == "occlusion" else 0) / scale) * scale
        near = _near(heat.shape, target.region, reach)
        assert heat.sum() > 0 and heat[near].sum() / heat.sum() > 0.999
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        square = [v * scale for v in (RED_BOX if target.label == "red" else GREEN_BOX)]
        assert _box_mask(heat.shape, square)[peak]
        assert 0.05 < target.fields["fraction"] < 0.15  # a 96-px square of a 320-px image


def test_records_name_the_detection_as_detect_lists_it(scene, cli, tmp_path):
    common = ["-m", DETECTOR, "-w", scene["detector"], "--labels", scene["labels"], "--conf",
              "0.8", "-f", "jsonl", "-q"]  # fmt: skip
    detected = cli(["detect", scene["image"], *common])
    assert detected.exit_code == 0, detected.stderr
    (boxes,) = jsonl(detected.stdout)
    out = tmp_path / "out"
    explained = cli(["explain", "gradcam", scene["image"], *common, "--target", "green", "-o", out,
                     "--report"])  # fmt: skip
    assert explained.exit_code == 0, explained.stderr
    (record,) = jsonl(explained.stdout)
    assert record["predictions"] and all(p["label"] == "green" for p in record["predictions"])
    for prediction in record["predictions"]:
        listed = boxes["predictions"][prediction["detection"] - 1]
        assert listed["label"] == "green"
        assert prediction["box"] == [round(v) for v in listed["box"]]
        assert prediction["score"] == pytest.approx(listed["score"], abs=1e-6)
    panel = Image.open(out / record["files"]["panel_1"])
    assert panel.width >= 900  # three 320-px panes and a colour bar
    page = (out / "report" / "data.js").read_text()  # the results page shows the panels
    (item,) = json.loads(page.split("=", 1)[1].strip().rstrip(";"))["items"]
    assert item["caption"].startswith("green") and item["thumb"]
    assert any((out / "report" / "thumbs").iterdir())


def test_odam_equals_pytorch_grad_cams_hirescam(scene):
    from pytorch_grad_cam import HiResCAM

    from cvtasks.explain.objects import relax_detector

    (result,) = _explain(scene, "gradcam", DETECTOR, conf=0.9)
    model = get_model(DETECTOR, weights=None, weights_backbone=None, num_classes=3).eval()
    model.load_state_dict(torch.load(scene["detector"], weights_only=True))
    relax_detector(model)
    layer = dict(model.named_modules())[default_object_layer(model)]
    image = torch.from_numpy(np.array(Image.open(scene["image"]))).permute(2, 0, 1) / 255.0
    for target in result.targets:
        box = torch.tensor([target.box])
        label = torch.tensor([target.index])

        def score(output, box=box, label=label):
            return matched_scores(output, box, label)[0]

        with HiResCAM(model=model, target_layers=[layer]) as cam:
            theirs = cam(input_tensor=image[None], targets=[score])[0]
        ours = target.attribution.heat
        ours = (ours - ours.min()) / (ours.max() - ours.min())
        assert np.abs(ours - theirs).max() < 0.02


def test_segment_gradcam_equals_pytorch_grad_cams(tmp_path, photos):
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    torch.manual_seed(0)
    model = get_model(SEGMENTER, weights=None, weights_backbone=None, num_classes=21).eval()
    torch.save(model.state_dict(), tmp_path / "seg.pth")
    found = predict("explain", [photos["chelsea"]], method="gradcam", model=SEGMENTER,
                    weights=str(tmp_path / "seg.pth"), quiet=True)  # fmt: skip
    ((_, result),) = list(found)
    assert result.layer == "backbone.16" and result.targets

    class Logits(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x):
            return self.model(x)["out"]

    from torchvision.models import get_model_weights

    transforms = get_model_weights(SEGMENTER).DEFAULT.transforms()
    x = transforms(Image.open(photos["chelsea"]).convert("RGB"))[None]
    for target in result.targets[:2]:
        wanted = SemanticSegmentationTarget(target.index, target.region.astype(np.float32))
        with GradCAM(model=Logits(), target_layers=[model.backbone["16"]]) as cam:
            theirs = cam(input_tensor=x, targets=[wanted])[0]
        ours = target.attribution.heat
        ours = (ours - ours.min()) / (ours.max() - ours.min())
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() < 0.02


def test_matching_follows_d_rise():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
    labels = torch.tensor([1, 2])
    output = {
        "boxes": torch.tensor([[0.0, 0.0, 10.0, 5.0], [20.0, 20.0, 30.0, 30.0], [0, 0, 10, 10.0]]),
        "labels": torch.tensor([1, 2, 3]),
        "scores": torch.tensor([0.9, 0.4, 0.99]),
    }
    # red: no identical box of its class; the half-height one, IoU 0.5 x 0.9. green: itself.
    assert matched_scores(output, boxes, labels).tolist() == pytest.approx([0.45, 0.4])
    empty = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
             "scores": torch.zeros(0)}  # fmt: skip
    assert matched_scores(empty, boxes, labels).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    "model",
    ["fasterrcnn_resnet50_fpn", "retinanet_resnet50_fpn", "fcos_resnet50_fpn", "ssd300_vgg16",
     "ssdlite320_mobilenet_v3_large", "maskrcnn_resnet50_fpn", "keypointrcnn_resnet50_fpn",
     "deeplabv3_resnet50", "fcn_resnet50", "deeplabv3_mobilenet_v3_large"],
)  # fmt: skip
def test_the_default_layer_is_a_map_each_family_computes(model):
    net = get_model(model, weights=None, weights_backbone=None).eval()
    name = default_object_layer(net)
    seen = []
    handle = dict(net.named_modules())[name].register_forward_hook(
        lambda m, i, o: seen.append(o.shape)
    )
    if hasattr(net, "transform") and not getattr(net.transform, "fixed_size", None):
        net.transform.min_size, net.transform.max_size = (96,), 96  # SSDs keep their 300/320
    with torch.no_grad():
        net([torch.rand(3, 96, 96)] if hasattr(net, "transform") else torch.rand(1, 3, 96, 96))
    handle.remove()
    assert len(seen) == 1 and len(seen[0]) == 4 and seen[0][-1] > 1, (name, seen)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["explain", "feature-maps", "-m", DETECTOR], "looks inside a classifier"),
        (["explain", "filters", "-m", SEGMENTER], "looks inside a classifier"),
        (["explain", "guided-backprop", "-m", DETECTOR, "--layer", "backbone", "--channel", "1"],
         "--channel explains a classifier's unit"),
        (["explain", "saliency", "-m", DETECTOR, "--sanity"], "--sanity is for classifiers"),
    ],
)  # fmt: skip
def test_what_objects_cannot_do_is_refused(cli, scene, args, message):
    result = cli([*args, scene["image"], "-w", scene["detector" if DETECTOR in args else
                                                      "segmenter"], "--labels", scene["labels"]])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.stderr
