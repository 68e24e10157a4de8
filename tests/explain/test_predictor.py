"""`cvtasks explain`: records, panels and raw maps; the crop mapping; targets; layer defaults."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import jsonl
from PIL import Image
from torchvision.models import get_model, get_model_weights

from cvtasks.explain.classifier import crop_box
from cvtasks.explain.layers import default_layer, spatial_layers


def test_crop_box_by_hand():
    transforms = get_model_weights("resnet18").DEFAULT.transforms()  # resize 256, crop 224
    assert crop_box(transforms, 451, 300) == (94, 19, 357, 281)
    assert crop_box(transforms, 300, 451) == (19, 94, 281, 357)
    assert crop_box(transforms, 512, 512) == (32, 32, 480, 480)


def test_crop_box_is_what_the_model_sees(photos):
    transforms = get_model_weights("resnet18").DEFAULT.transforms()
    image = Image.open(photos["coffee"]).convert("RGB")
    seen = transforms(image)
    mean, std = (
        torch.tensor(transforms.mean)[:, None, None],
        torch.tensor(transforms.std)[:, None, None],
    )
    seen_rgb = (seen * std + mean).permute(1, 2, 0).numpy()
    x1, y1, x2, y2 = crop_box(transforms, *image.size)
    ours = np.asarray(image.crop((x1, y1, x2, y2)).resize((224, 224), Image.BILINEAR)) / 255.0
    assert np.abs(ours - seen_rgb).mean() < 0.02


def test_gradcam_cli_outputs(cli, photos, r18_file, tmp_path):
    out = tmp_path / "out"
    result = cli(
        [
            "explain",
            "gradcam",
            photos["chelsea"],
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            out,
            "--top-k",
            "2",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    (record,) = jsonl(result.stdout)
    assert record["method"] == "gradcam" and record["layer"] == "layer4"
    assert record["crop"] == [94, 19, 357, 281]
    assert [p["rank"] for p in record["predictions"]] == [1, 2]
    files = record["files"]
    assert set(files) == {"panel_1", "raw_1", "panel_2", "raw_2"}
    assert files["panel_1"] == "explain/chelsea.gradcam.1.png"
    assert np.load(out / files["raw_1"]).shape == (7, 7)
    panel = Image.open(out / files["panel_1"])
    assert panel.width > 3 * 451 and panel.height > 300
    pixels = np.asarray(panel.convert("RGB"))
    left = panel.width // 3 + 20  # inside the middle pane, left of the crop: dimmed, dark
    assert pixels[panel.height - 20, left + 10].max() < 60


def test_occlusion_cli_record(cli, photos, r18_file, tmp_path):
    out = tmp_path / "out"
    result = cli(
        [
            "explain",
            "occlusion",
            photos["astronaut"],
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            out,
            "--window",
            "56",
            "--stride",
            "56",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    (record,) = jsonl(result.stdout)
    (pred,) = record["predictions"]
    probs = np.load(out / record["files"]["raw_1"])
    assert probs.shape == (4, 4)
    assert record["files"]["drop_1"] == "explain/astronaut.occlusion.1.drop.npy"
    assert np.load(out / record["files"]["drop_1"]).shape == (224, 224)
    assert pred["min_score"] == pytest.approx(float(probs.min()), abs=1e-6)
    x1, y1, x2, y2 = pred["min_box"]
    assert (x2 - x1, y2 - y1) == (112, 112)  # a 56 px window of the 224 crop, in 512 px pixels
    assert x1 >= 32 and x2 <= 480 and y1 >= 32 and y2 <= 480


def test_target_by_name_or_index_and_errors(cli, photos, r18_file):
    base = [
        "explain",
        "saliency",
        photos["coffee"],
        "-m",
        "resnet18",
        "-w",
        r18_file,
        "-f",
        "jsonl",
        "-q",
    ]
    by_name = jsonl(cli([*base, "--target", "espresso"]).stdout)[0]["predictions"][0]
    by_index = jsonl(cli([*base, "--target", "967"]).stdout)[0]["predictions"][0]
    assert by_name["index"] == by_index["index"] == 967 and by_name["label"] == "espresso"
    bad = cli([*base, "--target", "expresso"])
    assert bad.exit_code == 2 and "did you mean 'espresso'" in bad.stderr
    assert cli([*base, "--channel", "3"]).exit_code == 2
    unit = cli(
        [
            "explain",
            "guided-backprop",
            photos["coffee"],
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--layer",
            "layer3",
            "--channel",
            "3",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert unit.exit_code == 0, unit.stderr
    assert jsonl(unit.stdout)[0]["predictions"][0]["label"] == "layer3 channel 3"
    assert cli(["explain", "gradcm", photos["coffee"], "-m", "resnet18"]).exit_code == 2


def test_vit_gradcam_uses_the_last_blocks_tokens(cli, photos):
    result = cli(["explain", "gradcam", photos["coffee"], "-m", "vit_b_32", "-w", "none", "-q",
                  "-f", "jsonl"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["layer"] == "encoder.layers.encoder_layer_11.ln_1"


@pytest.mark.parametrize(
    "name",
    [
        "resnet18",
        "vgg11",
        "alexnet",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "convnext_tiny",
        "densenet121",
        "regnet_y_400mf",
        "googlenet",
        "squeezenet1_0",
        "shufflenet_v2_x0_5",
        "mnasnet0_5",
        "inception_v3",
    ],
)
def test_default_layer_is_a_late_spatial_map(name):
    kwargs = (
        {"aux_logits": False, "init_weights": False}
        if name in ("googlenet", "inception_v3")
        else {}
    )
    model = get_model(name, weights=None, **kwargs).eval()
    layer = default_layer(name, model)
    size = 299 if name == "inception_v3" else 224
    candidates = spatial_layers(model, size)
    assert layer in candidates
    shapes = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: shapes.__setitem__(n, o.shape[-1]))
        for n, m in model.named_modules()
        if n in candidates
    ]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    assert shapes[layer] <= 2.5 * min(shapes.values())  # one of the last, coarsest stages


@pytest.mark.parametrize("fold", [True, False])
def test_occlusion_runs_on_a_folded_copy_made_once(photos, r18_file, fold):
    from cvtasks.explain.config import ExplainConfig
    from cvtasks.explain.predictor import ExplainPredictor

    cfg = ExplainConfig(
        model="resnet18",
        weights=str(r18_file),
        method="occlusion",
        fold_bn=fold,
        top_k=2,
        window=56,
        stride=56,
    )
    predictor = ExplainPredictor(cfg, torch.device("cpu"))
    folded = predictor.method_model
    has_bn = any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert has_bn is not fold and (folded is predictor.model) is not fold
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in predictor.model.modules())
    x = predictor.transforms(Image.open(photos["chelsea"]).convert("RGB"))
    first = predictor.infer(x.unsqueeze(0))[0]
    assert predictor.method_model is folded  # not re-made per image or target
    assert len(first) == 2 and all(t.attribution.extra["probability_map"].size for t in first)
    grad = ExplainConfig(model="resnet18", weights=str(r18_file), method="gradcam", fold_bn=fold)
    gradcam = ExplainPredictor(grad, torch.device("cpu"))
    assert gradcam.method_model is gradcam.model  # gradient methods keep their hooks' modules


def test_target_index_out_of_range_names_the_range(cli, photos, tmp_path):
    torch.save(
        get_model("resnet18", weights=None, num_classes=2).state_dict(), tmp_path / "two.pth"
    )
    (tmp_path / "labels.txt").write_text("real\nfake\n")
    base = ["explain", "saliency", photos["coffee"], "-m", "resnet18", "-w", tmp_path / "two.pth"]
    result = cli([*base, "--labels", tmp_path / "labels.txt", "--target", "5", "-q"])
    assert result.exit_code == 2
    assert "class index out of range 0-1 (the model has 2 classes)" in result.stderr


def test_occlusion_stride_beyond_window_and_oversized_window(cli, photos, r18_file, tmp_path):
    base = ["explain", "occlusion", photos["coffee"], "-m", "resnet18", "-w", r18_file, "-q"]
    gaps = cli([*base, "--window", "16", "--stride", "32"])
    assert gaps.exit_code == 2 and "--stride 32 is larger than --window 16" in gaps.stderr
    clamped = cli([*base, "--window", "300", "--stride", "300", "-f", "jsonl"])
    assert clamped.exit_code == 0
    assert "--window 300 is larger than the 224 px model input: clamped to 224" in clamped.stderr


def test_model_level_methods_refuse_two_model_names(cli, tmp_path):
    result = cli(["explain", "filters", "resnet18", "-m", "resnet50", "-o", tmp_path, "-w", "none"])
    assert (
        result.exit_code == 2
        and "two models named: resnet18 (argument) and resnet50" in result.stderr
    )


def test_sanity_over_several_runs_on_the_raw_map(cli, photos, r18_file):
    base = ["explain", "gradcam", photos["chelsea"], "-m", "resnet18", "-w", r18_file]
    result = cli([*base, "--sanity", "--sanity-runs", "2", "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    (pred,) = jsonl(result.stdout)[0]["predictions"]
    low, high = pred["sanity_rank_corr_range"]
    assert pred["sanity_runs"] == 2 and low <= pred["sanity_rank_corr"] <= high


def test_sanity_of_a_constant_map_is_null_with_a_warning(photos, r18_file, capsys):
    from cvtasks.explain.config import ExplainConfig
    from cvtasks.explain.methods import Attribution, sanity_map
    from cvtasks.explain.predictor import ExplainPredictor

    cfg = ExplainConfig(model="resnet18", weights=str(r18_file), method="gradcam", sanity=True)
    predictor = ExplainPredictor(cfg, torch.device("cpu"))
    x = predictor.transforms(Image.open(photos["chelsea"]).convert("RGB")).unsqueeze(0)
    flat = Attribution(np.zeros((224, 224), np.float32), np.zeros((7, 7), np.float32))
    assert sanity_map(flat).shape == (7, 7)  # Grad-CAM's cells, not 50,176 upsampled pixels
    sanity = predictor._sanity(x, 3, flat)
    assert sanity.values == [None, None, None]
    assert sanity.to_record() == {
        "sanity_rank_corr": None,
        "sanity_rank_corr_range": None,
        "sanity_runs": 3,
    }
    assert "is constant, so the rank correlation is undefined" in capsys.readouterr().err
