"""depth: equal to transformers' own pipeline on a tiny saved model; honest units; scoring."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from helpers import jsonl, tiny_depth_model
from PIL import Image

from cvtasks.depth.eval import load_ground_truth, score


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_depth_model(tmp_path_factory.mktemp("tiny_depth"))


@pytest.fixture(scope="module")
def tiny_metric(tmp_path_factory):
    return tiny_depth_model(tmp_path_factory.mktemp("tiny_metric"), metric=True)


def test_matches_transformers_pipeline(cli, photos, tiny, tmp_path):
    from transformers import pipeline

    out = tmp_path / "out"
    images = list(photos.values())  # three sizes: the batch is grouped by processed shape
    # --no-jpeg-draft: this tiny model's 70 px input would let 512 px photos decode at half size
    result = cli(
        [
            "depth",
            *images,
            "-m",
            tiny,
            "-b",
            "3",
            "-o",
            out,
            "-f",
            "jsonl",
            "-q",
            "--no-jpeg-draft",
            "--save-images",
        ]
    )
    assert result.exit_code == 0, result.stderr
    pipe = pipeline("depth-estimation", model=str(tiny), device="cpu")
    for record, path in zip(jsonl(result.stdout), images, strict=True):
        ours = np.load(out / record["files"]["raw"])
        theirs = pipe(str(path))["predicted_depth"].numpy()
        assert ours.shape == theirs.shape == (record["height"], record["width"])
        assert np.abs(ours - theirs).max() < 1e-4
        assert theirs.std() > 1e-3  # not a constant map
        stats = record["stats"]
        assert stats["median"] == pytest.approx(float(np.median(theirs)), abs=1e-4)
        assert (record["depth_type"], record["units"]) == ("relative_inverse", None)
        aligned = Image.open(out / record["files"]["depth"])  # pixel-aligned with the input
        assert aligned.size == (record["width"], record["height"])
        figure = Image.open(out / record["files"]["figure"])  # the map plus its colour bar
        assert figure.height == record["height"] and figure.width > record["width"] + 40
        drawn = np.asarray(Image.open(out / Path(str(path)).name).convert("RGB"))
        assert drawn.shape[:2] == (record["height"], record["width"])  # the annotated copy
        left = np.asarray(figure.convert("RGB"))[:, : record["width"]].astype(float)
        assert np.abs(left - drawn).mean() < 3  # the same map (the annotated copy is a JPEG)
        assert np.array_equal(np.asarray(aligned.convert("RGB")), left.astype(np.uint8))


def test_metric_models_say_metres(cli, photos, tiny_metric):
    record = jsonl(
        cli(["depth", photos["chelsea"], "-m", tiny_metric, "-f", "jsonl", "-q"]).stdout
    )[0]
    assert (record["depth_type"], record["units"]) == ("metric", "m")


def test_png16_raw_with_scale(cli, photos, tiny, tmp_path):
    out = tmp_path / "out"
    record = jsonl(
        cli(
            [
                "depth",
                photos["coffee"],
                "-m",
                tiny,
                "--raw-format",
                "png16",
                "-o",
                out,
                "-f",
                "jsonl",
                "-q",
            ]
        ).stdout
    )[0]
    levels = np.asarray(Image.open(out / record["files"]["raw"])).astype(np.float64)
    assert levels.max() == 65535
    restored = levels * record["png16_scale"]
    assert restored.max() == pytest.approx(record["stats"]["max"], rel=1e-4)


def test_scores_are_zero_for_scaled_shifted_copies():
    rng = np.random.default_rng(0)
    depth = rng.uniform(1.0, 10.0, size=(40, 50)).astype(np.float32)
    disparity = 1.0 / depth
    exact = score(3.0 * disparity + 0.2, disparity.copy(), "relative", "disparity")
    assert exact.abs_rel < 1e-6 and exact.delta1 == 1.0
    assert exact.scale == pytest.approx(1 / 3) and exact.shift == pytest.approx(-0.2 / 3)
    from_depth = score(2.0 * disparity + 1.0, depth.copy(), "relative", "depth")
    assert from_depth.abs_rel < 1e-6 and from_depth.delta1 == 1.0
    metric = score(1.0 / (0.5 * disparity + 0.01), depth.copy(), "metric", "depth")
    assert metric.abs_rel < 1e-6 and metric.delta1 == 1.0
    noisy = score(
        disparity * rng.uniform(0.5, 1.5, size=depth.shape),
        disparity.copy(),
        "relative",
        "disparity",
    )
    assert noisy.abs_rel > 0.05 and noisy.delta1 < 1.0
    holes = disparity.copy()
    holes[:5] = np.nan
    assert score(3.0 * disparity, holes, "relative", "disparity").valid_pixels == 35 * 50


def test_motorcycle_stereo_pair_through_eval_gt(cli, tiny, tmp_path):
    left, _right, disparity = skimage.data.stereo_motorcycle()
    image = tmp_path / "motorcycle.png"
    Image.fromarray(left).save(image)
    gt = tmp_path / "gt"
    gt.mkdir()
    np.save(gt / "motorcycle.npy", disparity)
    result = cli(["depth", image, "-m", tiny, "--eval-gt", gt, "-f", "jsonl"])
    assert result.exit_code == 0, result.stderr
    evaluation = jsonl(result.stdout)[0]["eval"]
    valid = np.isfinite(disparity) & (disparity > 0)
    assert evaluation["valid_pixels"] == int(valid.sum())
    assert evaluation["abs_rel"] > 0 and 0 <= evaluation["delta1"] <= 1
    assert "depth eval over 1 image(s): AbsRel" in result.stderr
    assert np.isnan(load_ground_truth(gt / "motorcycle.npy")[~valid]).all()


def test_eval_gt_size_mismatch_is_an_item_error(cli, photos, tiny, tmp_path):
    gt = tmp_path / "gt.npy"
    np.save(gt, np.ones((10, 10), np.float32))
    result = cli(["depth", photos["coffee"], "-m", tiny, "--eval-gt", gt, "-f", "jsonl", "-q"])
    assert result.exit_code == 1 and "ground truth is 10x10, the image 600x400" in result.stderr


def test_offline_hub_model_is_exit_3(cli, photos):
    result = cli(["depth", photos["coffee"]])  # the default: depth-anything-v2-small
    assert result.exit_code == 3
    assert "cvtasks models pull depth-anything-v2-small" in result.stderr
    assert "Depth-Anything-V2-Small-hf" in result.stderr
    pulled = cli(["models", "pull", "depth-anything-v2-small"])
    assert pulled.exit_code == 3


def test_depth_catalogue(cli):
    rows = jsonl(cli(["models", "list", "--task", "depth", "-f", "jsonl"]).stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name["depth-anything-v2-small"]["licence"] == "Apache-2.0"
    assert "non-commercial" in by_name["depth-anything-v2-large"]["licence"]
    assert by_name["zoedepth-nyu-kitti"]["metric"] == "metric depth"
    info = json.loads(cli(["models", "info", "depth-anything-v2-base"]).stdout)
    assert (
        info["hub_id"] == "depth-anything/Depth-Anything-V2-Base-hf"
        and "non-commercial" in info["licence"]
    )


def test_unknown_depth_model(cli, photos):
    result = cli(["depth", photos["coffee"], "-m", "not-a-model"])
    assert result.exit_code == 2 and "unknown depth model" in result.stderr


def test_depth_cuda_free_grouping_keeps_order(photos, tiny):
    from cvtasks.api import predict

    sizes = [
        (f.width, f.height)
        for f, _ in predict("depth", list(photos.values()), model=str(tiny), batch_size=3)
    ]
    assert sizes == [(512, 512), (451, 300), (600, 400)]
    assert torch.get_num_threads() >= 1


def test_unreachable_hub_fails_in_seconds_without_retries(photos, tmp_path):
    """No offline flag set: one connection probe, then exit 3 (not minutes of retries)."""
    import os
    import subprocess
    import sys
    import time

    env = {k: v for k, v in os.environ.items() if k not in ("CVTASKS_OFFLINE", "HF_HUB_OFFLINE")}
    env.update(HF_HOME=str(tmp_path / "hf"), HF_ENDPOINT="http://127.0.0.1:9")  # closed port
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cvtasks", "depth", photos["coffee"], "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    assert "cannot reach 127.0.0.1:9" in result.stderr
    assert "cvtasks models pull depth-anything-v2-small" in result.stderr
    assert "Retrying" not in result.stderr and "Traceback" not in result.stderr
    assert elapsed < 60  # was 98 s of retries; the probe itself waits at most 3 s


def test_weights_none_builds_the_shipped_architecture_offline(cli, photos, tmp_path):
    """Depth Anything aliases need no hub for --weights none: the architecture ships with
    cvtasks (the parameter counts are the published ones: V2-Small 24.8 M)."""
    from transformers import AutoModelForDepthEstimation

    from cvtasks.depth.models import known_model, shipped_architecture

    config, processor = shipped_architecture(known_model("depth-anything-v2-small"))
    model = AutoModelForDepthEstimation.from_config(config)
    assert sum(p.numel() for p in model.parameters()) == 24_785_089
    assert processor.size == {"height": 518, "width": 518} and processor.ensure_multiple_of == 14
    metric = shipped_architecture(known_model("depth-anything-v2-metric-outdoor-small"))[0]
    assert metric.depth_estimation_type == "metric" and metric.max_depth == 80

    small = tmp_path / "small.jpg"
    Image.open(photos["coffee"]).resize((140, 210)).save(small)
    result = cli(["depth", small, "-w", "none", "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["depth_type"] == "relative_inverse" and (record["width"], record["height"]) == (
        140,
        210,
    )
    assert "random weights" in result.stderr
    other = cli(["depth", small, "-m", "dpt-large", "-w", "none", "-q"])
    assert other.exit_code == 3 and "cvtasks models pull dpt-large" in other.stderr
