"""classify equals torchvision's reference pipeline on the same weights file."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
from helpers import (
    jsonl,
    noise_video,
    reference_topk,
    seeded_state_dict,
    with_random_statistics,
)
from torchvision.models import get_model, get_model_weights

from cvtasks.classify.predictor import architecture_kwargs, classification_models
from cvtasks.weights import resolve_weights


@pytest.mark.parametrize(
    "extra", [[], ["--batch-size", "4", "--workers", "2"]], ids=["b8w0", "b4w2"]
)
def test_matches_torchvision_reference(cli, photos, r18_file, extra):
    images = [photos["astronaut"], photos["chelsea"], photos["coffee"]]
    result = cli(
        [
            "classify",
            *images,
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-f",
            "jsonl",
            "--top-k",
            "5",
            "-q",
            *extra,
        ]
    )
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    expected = reference_topk("resnet18", r18_file, images, 5)
    assert [r["source"] for r in records] == [str(p) for p in images]
    categories = get_model_weights("resnet18").DEFAULT.meta["categories"]
    for record, (indices, scores) in zip(records, expected, strict=True):
        assert [p["index"] for p in record["predictions"]] == indices
        assert [p["score"] for p in record["predictions"]] == pytest.approx(scores, abs=1e-4)
        assert [p["label"] for p in record["predictions"]] == [categories[i] for i in indices]
        assert (record["width"], record["height"]) in {(512, 512), (451, 300), (600, 400)}
        assert record["task"] == "classify" and record["model"] == "resnet18"
        assert record["frame"] is None


def test_predictions_sorted_and_probabilities(cli, photos, r18_file):
    result = cli(
        [
            "classify",
            photos["chelsea"],
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "--top-k",
            "1000",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    preds = jsonl(result.stdout)[0]["predictions"]
    scores = [p["score"] for p in preds]
    assert len(preds) == 1000
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-3)


def test_labels_file_sets_custom_head(cli, photos, tmp_path):
    weights = tmp_path / "three.pth"
    seeded_state_dict("resnet18", weights, num_classes=3)
    labels = tmp_path / "labels.txt"
    labels.write_text("red\ngreen\n\nblue\n")
    result = cli(
        [
            "classify",
            photos["coffee"],
            "-m",
            "resnet18",
            "-w",
            weights,
            "--labels",
            labels,
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    preds = jsonl(result.stdout)[0]["predictions"]
    ((indices, scores),) = reference_topk("resnet18", weights, [photos["coffee"]], 3, num_classes=3)
    assert [p["index"] for p in preds] == indices
    assert [p["label"] for p in preds] == [["red", "green", "blue"][i] for i in indices]
    assert [p["score"] for p in preds] == pytest.approx(scores, abs=1e-4)


def test_labels_count_must_match_pretrained_head(cli, photos, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\n")
    result = cli(["classify", photos["coffee"], "-m", "resnet18", "--labels", labels, "-q"])
    assert result.exit_code == 2
    assert "2 names" in result.stderr and "1000 classes" in result.stderr


def test_weights_none_warns_and_runs(cli, photos):
    result = cli(
        [
            "classify",
            photos["coffee"],
            "-m",
            "mobilenet_v3_small",
            "-w",
            "none",
            "-f",
            "jsonl",
            "-q",
            "--top-k",
            "2",
        ]
    )
    assert result.exit_code == 0
    assert "random weights" in result.stderr
    assert len(jsonl(result.stdout)[0]["predictions"]) == 2


def test_wrong_class_count_file_is_exit_3(cli, photos, tmp_path):
    weights = tmp_path / "ten.pth"
    seeded_state_dict("resnet18", weights, num_classes=10)
    result = cli(["classify", photos["coffee"], "-m", "resnet18", "-w", weights, "-q"])
    assert result.exit_code == 3
    assert "fc.weight" in result.stderr and "(10, 512)" in result.stderr


def test_every_classifier_is_listed():
    names = classification_models()
    assert {"resnet50", "vit_b_16", "convnext_tiny", "mobilenet_v3_small"} <= set(names)
    assert not any(n.startswith(("fasterrcnn", "deeplab", "r3d", "raft")) for n in names)


class _Built(Exception):
    """Raised from load_state_dict to stop torchvision's builder once the model exists."""


def _torchvision_pretrained_build(name: str, member_name: str) -> torch.nn.Module:
    """The module torchvision's builder creates when given the weights enum member.

    No download happens: ``get_state_dict`` returns nothing and ``load_state_dict`` stops the
    builder, so we get the architecture torchvision derives from the weights.
    """
    member = get_model_weights(name)[member_name]
    built: dict[str, torch.nn.Module] = {}

    def stop(self, *args, **kwargs):
        built["model"] = self
        raise _Built()

    with (
        mock.patch.object(type(member), "get_state_dict", lambda self, *a, **k: {}),
        mock.patch.object(torch.nn.Module, "load_state_dict", stop),
        pytest.raises(_Built),
    ):
        get_model(name, weights=member)
    return built["model"]


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("googlenet", "DEFAULT"),
        ("inception_v3", "DEFAULT"),
        ("vit_b_16", "IMAGENET1K_SWAG_E2E_V1"),
        ("maxvit_t", "DEFAULT"),
        ("resnet18", "DEFAULT"),
    ],
)
def test_architecture_matches_torchvision_pretrained_build(name, member):
    reference = _torchvision_pretrained_build(name, member)
    resolved = resolve_weights(name, member)
    state = reference.state_dict()
    ours = get_model(
        name,
        weights=None,
        num_classes=len(resolved.categories),
        **architecture_kwargs(name, resolved, state),
    )
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == {
        k: tuple(v.shape) for k, v in state.items()
    }
    assert getattr(ours, "transform_input", None) == getattr(reference, "transform_input", None)


def test_compile_and_layout_options_give_the_same_answers(cli, photos, tmp_path):
    weights = tmp_path / "squeeze.pth"
    seeded_state_dict(
        "squeezenet1_1", weights, head_keys=("classifier.1.weight", "classifier.1.bias")
    )
    base = [
        "classify",
        photos["chelsea"],
        "-m",
        "squeezenet1_1",
        "-w",
        weights,
        "-f",
        "jsonl",
        "-q",
        "--top-k",
        "3",
    ]
    plain = jsonl(cli([*base, "--no-channels-last"]).stdout)[0]["predictions"]
    fast = jsonl(cli([*base, "--compile"]).stdout)[0]["predictions"]
    assert [p["index"] for p in fast] == [p["index"] for p in plain]
    assert [p["score"] for p in fast] == pytest.approx([p["score"] for p in plain], abs=1e-4)


def test_folded_batchnorm_gives_the_unfolded_answers(cli, photos, tmp_path):
    torch.manual_seed(1)
    model = with_random_statistics(get_model("resnet18", weights=None), seed=1)
    state = model.state_dict()
    state["fc.weight"] = state["fc.weight"] * 40  # well separated probabilities
    torch.save(state, tmp_path / "r18.pth")
    base = ["classify", *photos.values(), "-m", "resnet18", "-w", tmp_path / "r18.pth"]
    base += ["-f", "jsonl", "-q", "--top-k", "5"]
    folded = jsonl(cli(base).stdout)
    plain = jsonl(cli([*base, "--no-fold-bn"]).stdout)
    assert len(folded) == len(plain) == 3
    for a, b in zip(folded, plain, strict=True):
        assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
        scores = [p["score"] for p in b["predictions"]]
        assert [p["score"] for p in a["predictions"]] == pytest.approx(scores, abs=1e-5)


def test_lanes_give_the_same_records_in_the_same_order(cli, photos, r18_file, tmp_path):
    (tmp_path / "broken.jpg").write_bytes(b"<html>")
    images = [photos["astronaut"], tmp_path / "broken.jpg", photos["chelsea"], photos["coffee"]]
    base = ["classify", *images, "-m", "resnet18", "-w", r18_file, "-f", "jsonl", "-b", "1"]
    one = cli([*base, "--lanes", "1"])
    laned = cli([*base, "--lanes", "2"])
    assert one.exit_code == laned.exit_code == 1
    assert "broken.jpg" in laned.stderr and "not a recognised image" in laned.stderr
    ours, theirs = jsonl(laned.stdout), jsonl(one.stdout)
    assert (
        [r["source"] for r in ours]
        == [r["source"] for r in theirs]
        == [str(p) for p in images if p.name != "broken.jpg"]
    )
    for a, b in zip(ours, theirs, strict=True):
        assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
        scores = [p["score"] for p in b["predictions"]]
        assert [p["score"] for p in a["predictions"]] == pytest.approx(scores, abs=1e-5)
    with_workers = cli([*base[:-2], "--lanes", "2", "--workers", "1", "-q"])
    auto = cli([*base[:-2], "--workers", "1", "-q"])  # the automatic choice says nothing
    assert auto.exit_code == 1 and "--lanes" not in auto.stderr
    assert with_workers.exit_code == 1
    assert "--lanes does not combine with --workers: running one lane" in with_workers.stderr


@pytest.mark.parametrize("method", ["mean", "vote"])
def test_video_verdict_aggregates_the_frames(cli, r18_file, tmp_path, method):

    video = noise_video(tmp_path / "clip.mp4", 7)
    args = [
        "classify",
        video,
        "-m",
        "resnet18",
        "-w",
        r18_file,
        "--top-k",
        "1000",
        "--aggregate",
        method,
    ]
    result = cli([*args, "--vid-stride", "2", "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    *frames, verdict = jsonl(result.stdout)
    assert [r["frame"] for r in frames] == [0, 2, 4, 6] and verdict["frame"] is None
    assert verdict["aggregate"] == method and verdict["frames"] == 4
    means = {}
    for record in frames:
        for p in record["predictions"]:
            means[p["label"]] = means.get(p["label"], 0.0) + p["score"] / 4
    for p in verdict["predictions"][:5]:
        assert p["score"] == pytest.approx(means[p["label"]], abs=1e-5)
    tops = [r["predictions"][0]["label"] for r in frames]
    assert verdict["votes"] == {label: tops.count(label) / 4 for label in set(tops)}
    expected = max(means, key=means.get) if method == "mean" else max(set(tops), key=tops.count)
    assert verdict["verdict"]["label"] == expected
