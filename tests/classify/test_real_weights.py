"""Real torchvision weights (MobileNetV2, IMAGENET1K_V1) give torchvision's own answers with
default options: the reference pipeline is Pillow decoding, ``.convert("RGB")``, the release's
``transforms()`` and an fp32 forward, image by image."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from cvtasks.weights import resolve_weights

RELEASE = MobileNet_V2_Weights.IMAGENET1K_V1


@pytest.fixture(scope="module")
def reference(mnv2_file: Path) -> torch.nn.Module:
    model = mobilenet_v2()
    model.load_state_dict(torch.load(mnv2_file, weights_only=True))
    return model.eval()


def reference_probabilities(model: torch.nn.Module, path: Path) -> torch.Tensor:
    x = RELEASE.transforms()(Image.open(path).convert("RGB")).unsqueeze(0)
    with torch.no_grad():
        return model(x).softmax(dim=1)[0]


def test_a_release_file_is_known_by_its_content(mnv2_file, r18_file):
    found = resolve_weights("mobilenet_v2", str(mnv2_file))  # called my_mobilenet.pth
    assert (found.member, found.release_from) == (RELEASE, "hash")
    assert found.transforms().resize_size == [256]  # V1's, not DEFAULT (V2: 232)
    assert "IMAGENET1K_V1 (the file is that release, by its SHA-256)" in (
        found.describe_preprocessing()
    )
    named = resolve_weights("mobilenet_v2", str(mnv2_file), "IMAGENET1K_V2")
    assert (named.member.name, named.release_from) == ("IMAGENET1K_V2", "option")
    other = resolve_weights("resnet18", str(r18_file))
    assert (other.member.name, other.release_from) == ("IMAGENET1K_V1", "default")
    assert "name the one it was trained from with --release" in other.describe_preprocessing()


def test_release_option_errors_are_usage_errors(cli, mnv2_file, photos):
    bad = cli(["classify", photos["chelsea"], "-m", "mobilenet_v2", "-w", mnv2_file,
               "--release", "IMAGENET1K_V9"])  # fmt: skip
    assert bad.exit_code == 2 and "choose one of IMAGENET1K_V1, IMAGENET1K_V2" in bad.stderr
    enum = cli(["classify", photos["chelsea"], "-m", "mobilenet_v2", "--release", "IMAGENET1K_V1"])
    assert enum.exit_code == 2 and "names the release a weights *file* comes from" in enum.stderr


def test_classify_defaults_equal_the_reference_on_photos_of_every_size(
    cli, mnv2_file, sized_photos, reference, tmp_path
):
    result = cli(["classify", *sized_photos.values(), "-m", "mobilenet_v2", "-w", mnv2_file,
                  "--top-k", "5", "-f", "jsonl", "-o", tmp_path / "out"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "preprocessing of MobileNet_V2_Weights.IMAGENET1K_V1 (the file is that release" in (
        result.stderr
    )
    config = (tmp_path / "out" / "config.yaml").read_text()
    assert "resize 256 (bilinear), centre crop 224" in config
    records = {Path(r["source"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert len(records) == len(sized_photos) == 12
    worst = 0.0
    for path in sized_photos.values():
        expected = reference_probabilities(reference, path)
        predictions = records[path.name]["predictions"]
        assert predictions[0]["index"] == int(expected.argmax()), path.name
        for p in predictions:
            worst = max(worst, abs(p["score"] - float(expected[p["index"]])))
    assert worst <= 1e-3, worst


def test_explain_and_classify_report_the_same_score(cli, mnv2_file, sized_photos, reference):
    path = sized_photos["astronaut_1000"]
    expected = reference_probabilities(reference, path)
    result = cli(["explain", "gradcam", path, "-m", "mobilenet_v2", "-w", mnv2_file,
                  "-f", "jsonl"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (record,) = map(json.loads, result.stdout.splitlines())
    target = record["predictions"][0]
    assert target["index"] == int(expected.argmax())
    assert abs(target["score"] - float(expected[target["index"]])) <= 1e-3


def test_explain_and_classify_agree_with_jpeg_draft_too(cli, mnv2_file, sized_photos):
    path = sized_photos["coffee_2000"]
    common = [path, "-m", "mobilenet_v2", "-w", mnv2_file, "-f", "jsonl", "-q", "--jpeg-draft"]
    classified = cli(["classify", *common, "--top-k", "1"])
    explained = cli(["explain", "saliency", *common])
    assert classified.exit_code == explained.exit_code == 0, explained.stderr
    a = json.loads(classified.stdout)["predictions"][0]
    b = json.loads(explained.stdout)["predictions"][0]
    assert (a["index"], a["score"]) == (b["index"], b["score"])


def test_models_info_says_which_release_a_file_is(cli, mnv2_file):
    result = cli(["models", "info", "mobilenet_v2", "-w", mnv2_file])
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["release"] == "MobileNet_V2_Weights.IMAGENET1K_V1"
    assert info["release_from"] == "sha256"
    assert info["preprocessing"].startswith("resize 256 (bilinear), centre crop 224")
    named = json.loads(
        cli(
            ["models", "info", "mobilenet_v2", "-w", mnv2_file, "--release", "IMAGENET1K_V2"]
        ).stdout
    )
    assert (named["release_from"], named["preprocessing"][:10]) == ("--release", "resize 232")


def test_eval_errors_name_a_few_classes_not_a_thousand(cli, mnv2_file, photos, tmp_path):
    folder = tmp_path / "data" / "not-an-imagenet-class"
    folder.mkdir(parents=True)
    (folder / "cat.jpg").write_bytes(photos["chelsea"].read_bytes())
    result = cli(["eval", "classify", tmp_path / "data", "-m", "mobilenet_v2", "-w", mnv2_file])
    assert result.exit_code == 2
    assert "not-an-imagenet-class" in result.stderr and "… and 992 more" in result.stderr
    assert max(len(line) for line in result.stderr.splitlines()) < 400
