"""Records are a function of the inputs and the options that affect results, nothing else.

Every config key marked ``affects_results=False`` gets a run here whose records are compared
with a run without it: output options must give identical records, speed options the same
records up to float rounding (1e-5 on scores).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import tiny_depth_model
from PIL import Image

from cvtasks.config import config_fields, meta_of
from cvtasks.tasks.registry import TASKS

# Options covered by a test elsewhere, by test name.
ELSEWHERE = {
    "compile": "tests/classify/test_predictor.py::test_compile_and_layout_options_give_the_same_answers",
    # the Ray engine: records equal to the local engine's (classify, detect, track, resume)
    **{
        key: "tests/engines/test_ray_data.py"
        for key in ("engine", "ray_address", "ray_actors", "ray_cpus", "ray_gpus")
    },
}


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    """A record without ``files`` (the list of what was written, present only with --out)."""
    return {k: v for k, v in record.items() if k != "files"}


def _read(path: Path) -> list[dict[str, Any]]:
    return [_strip(json.loads(line)) for line in path.read_text().splitlines()]


def _close(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= tol
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
        )
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(_close(x, y, tol) for x, y in zip(a, b, strict=True))
        )
    return a == b


@pytest.fixture(scope="module")
def images(tmp_path_factory, photos) -> list[Path]:
    """Photos including a large JPEG that the model's decoding reduces (draft scale 4)."""
    folder = tmp_path_factory.mktemp("invariance")
    big = folder / "big.jpg"
    Image.open(photos["astronaut"]).resize((1024, 1024)).save(big, quality=90)
    return [big, photos["chelsea"], photos["coffee"]]


def run(cli, tmp_path: Path, args: list[Any], name: str) -> list[dict[str, Any]]:
    out = tmp_path / name
    result = cli([*args, "-o", out, "-q", "-f", "jsonl"])
    assert result.exit_code == 0, result.stderr
    records = _read(out / "results.jsonl")
    assert records == [_strip(json.loads(line)) for line in result.stdout.splitlines()]
    return records


@pytest.fixture(scope="module")
def soft_r18(tmp_path_factory) -> Path:
    """resnet18 with BatchNorm statistics and an unscaled head: probabilities far from 0 and 1,
    so that a changed input (e.g. decoded at another scale) shows in the scores."""
    import torch
    from helpers import with_random_statistics
    from torchvision.models import get_model

    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("soft") / "r18_soft.pth"
    torch.save(
        with_random_statistics(get_model("resnet18", weights=None), seed=3).state_dict(), path
    )
    return path


@pytest.fixture(scope="module")
def classify_base(images, soft_r18) -> list[Any]:
    return ["classify", *images, "-m", "resnet18", "-w", soft_r18, "--top-k", "5", "-b", "2"]


OUTPUT_VARIANTS = {
    "save_images": ["--save-images"],
    "wait_lock": ["--wait-lock"],
    "max_image_pixels": ["--max-image-pixels", "900000000"],
    "report": ["--report"],
}
SPEED_VARIANTS = {
    "batch_size": ["-b", "1"],
    "workers": ["--workers", "1"],
    "lanes": ["--lanes", "1"],  # the default (0) is two lanes on 2+ cores
    "device": ["--device", "cpu"],
    "channels_last": ["--no-channels-last"],
    "fold_bn": ["--no-fold-bn"],
    "threads": ["--threads", "1"],
}


@pytest.fixture(scope="module")
def classify_reference(classify_base, tmp_path_factory) -> list[dict[str, Any]]:
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    out = tmp_path_factory.mktemp("reference") / "out"
    result = CliRunner().invoke(app, [str(a) for a in [*classify_base, "-o", out, "-q"]])
    assert result.exit_code == 0, result.stderr
    return _read(out / "results.jsonl")


@pytest.mark.parametrize("option", sorted(OUTPUT_VARIANTS))
def test_output_options_leave_records_identical(
    cli, tmp_path, classify_base, classify_reference, option
):
    assert (
        run(cli, tmp_path, [*classify_base, *OUTPUT_VARIANTS[option]], option) == classify_reference
    )


@pytest.mark.parametrize("option", sorted(SPEED_VARIANTS))
def test_speed_options_leave_records_equal_to_rounding(
    cli, tmp_path, classify_base, classify_reference, option
):
    records = run(cli, tmp_path, [*classify_base, *SPEED_VARIANTS[option]], option)
    assert _close(records, classify_reference, 1e-5), (records, classify_reference)


def test_stdout_formats_and_quiet_carry_the_same_records(
    cli, tmp_path, classify_base, classify_reference
):
    """format / out / quiet: what stdout shows equals results.jsonl in every format."""
    bare = cli([*classify_base, "-f", "jsonl"])  # no --out, no -q
    assert [_strip(json.loads(line)) for line in bare.stdout.splitlines()] == classify_reference
    as_json = json.loads(cli([*classify_base, "-f", "json", "-q"]).stdout)
    assert [_strip(r) for r in as_json] == classify_reference
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(cli([*classify_base, "-f", "csv", "-q"]).stdout)))
    flat = [(r["source"], int(r["rank"]), int(r["index"]), float(r["score"])) for r in rows]
    expected = [
        (rec["source"], rank, p["index"], p["score"])
        for rec in classify_reference
        for rank, p in enumerate(rec["predictions"], start=1)
    ]
    assert flat == expected


def test_resume_completes_to_the_same_records(
    cli, tmp_path, classify_base, classify_reference, images
):
    out = tmp_path / "resumed"
    first = cli([*classify_base[:1], images[0], *classify_base[1 + len(images) :], "-o", out, "-q"])
    assert first.exit_code == 0
    second = cli([*classify_base, "-o", out, "-q", "--resume"])
    assert second.exit_code == 0
    assert _read(out / "results.jsonl") == classify_reference


def test_an_earlier_run_is_never_replaced_silently(
    cli, tmp_path, classify_base, classify_reference
):
    out = tmp_path / "again"
    assert cli([*classify_base, "-o", out, "-q"]).exit_code == 0
    refused = cli([*classify_base, "-o", out, "-q"])
    assert refused.exit_code == 2
    assert f"{out} already holds {len(classify_reference)} result(s)" in refused.stderr
    assert "--resume" in refused.stderr and "--overwrite" in refused.stderr
    assert _read(out / "results.jsonl") == classify_reference  # untouched
    replaced = cli([*classify_base, "-o", out, "-q", "--overwrite"])
    assert replaced.exit_code == 0
    assert _read(out / "results.jsonl") == classify_reference


# ------------------------------------------------------------------ task-specific output options


def test_detect_save_txt(cli, tmp_path, photos, small_models):
    base = ["detect", photos["astronaut"], "-m", "fasterrcnn_mobilenet_v3_large_320_fpn"]
    base += ["-w", small_models["fasterrcnn_mobilenet_v3_large_320_fpn"], "--conf", "0.3"]
    plain = run(cli, tmp_path, base, "plain")
    assert plain[0]["predictions"], "the calibrated detector finds something"
    assert run(cli, tmp_path, [*base, "--save-txt", "--save-images"], "txt") == plain


def test_pose_kpt_conf(cli, tmp_path, photos, small_models):
    base = ["pose", photos["astronaut"], "-w", small_models["keypointrcnn_resnet50_fpn"]]
    base += ["--conf", "0.1", "--min-size", "320", "--save-images"]
    assert run(cli, tmp_path, [*base, "--kpt-conf", "3"], "a") == run(cli, tmp_path, base, "b")


def test_segment_alpha(cli, tmp_path, photos, small_models):
    base = ["segment", photos["chelsea"], "-m", "lraspp_mobilenet_v3_large"]
    base += ["-w", small_models["lraspp_mobilenet_v3_large"], "--save-images"]
    assert run(cli, tmp_path, [*base, "--alpha", "0.9"], "a") == run(cli, tmp_path, base, "b")


def test_explain_alpha_and_colormap(cli, tmp_path, photos, r18_file):
    base = ["explain", "gradcam", photos["chelsea"], "-m", "resnet18", "-w", r18_file]
    reference = run(cli, tmp_path, base, "ref")
    assert run(cli, tmp_path, [*base, "--alpha", "0.2", "--colormap", "jet"], "b") == reference


def test_depth_colormap(cli, tmp_path, photos):
    model = tiny_depth_model(tmp_path / "tiny")
    base = ["depth", photos["chelsea"], "-m", model]
    reference = run(cli, tmp_path, base, "ref")
    assert run(cli, tmp_path, [*base, "--colormap", "inferno"], "b") == reference


def test_track_trail_and_reconnect(cli, tmp_path):
    """Trails are drawn only; reconnection attempts matter to live sources only (a file here)."""
    from track_scenes import crossing_scene, write_sequence

    scene = write_sequence(crossing_scene(), tmp_path / "SCENE-01")
    base = ["track", scene / "img1", "--detections", scene / "det" / "det.txt", "--save-images"]
    reference = run(cli, tmp_path, base, "ref")
    assert reference and any(r["predictions"] for r in reference)
    assert run(cli, tmp_path, [*base, "--trail", "3", "--reconnect", "0"], "b") == reference


def test_train_cache(cli, tmp_path):
    """Keeping decoded images in memory changes the speed of later epochs, not the weights."""
    from fake_faces import make_set
    from safetensors.torch import load_file

    data = make_set(tmp_path / "data", per_class=12, size=48)
    base = ["train", data, "-m", "resnet18", "-w", "none", "--img-size", "48", "-b", "8"]
    base += ["--epochs", "2", "-q"]
    assert cli([*base, "-o", tmp_path / "a"]).exit_code == 0
    assert cli([*base, "-o", tmp_path / "b", "--cache-mb", "0"]).exit_code == 0
    a, b = (
        load_file(str(tmp_path / "a" / "last.safetensors")),
        load_file(str(tmp_path / "b" / "last.safetensors")),
    )
    assert all((a[k] == b[k]).all() for k in a)


def test_faces_records_ignore_crops_images_batches_and_workers(cli, tmp_path, photos, mnv2_file):
    from real_weights import mtcnn_dir

    base = ["faces", photos["astronaut"], photos["chelsea"], "-w", mtcnn_dir(), "-b", "2"]
    reference = run(cli, tmp_path, base, "ref")
    assert reference[0]["predictions"], "MTCNN finds the astronaut"
    varied = [*base, "--save-images", "--save-crops", "-b", "1", "--workers", "1"]
    assert run(cli, tmp_path, varied, "b") == reference
    crop = ["classify", photos["astronaut"], photos["chelsea"], "-m", "mobilenet_v2", "-w",
            mnv2_file, "--crop", "faces", "--face-weights", mtcnn_dir(), "-b", "2"]  # fmt: skip
    judged = run(cli, tmp_path, crop, "crop")
    assert judged[0]["faces"] and judged[1]["faces"] == []
    faster = [*crop, "--save-images", "-b", "1", "--workers", "1"]
    assert run(cli, tmp_path, faster, "crop_b") == judged


TESTED_HERE = {
    *OUTPUT_VARIANTS,
    *SPEED_VARIANTS,
    "format",
    "out",
    "quiet",
    "resume",
    "overwrite",
    "save_txt",
    "kpt_conf",
    "alpha",
    "colormap",
    "trail",
    "reconnect",
    "cache_mb",
}


def test_every_option_that_claims_not_to_affect_results_is_checked():
    claimed = {
        f.name
        for spec in TASKS.values()
        for f in config_fields(spec.config_cls)
        if not meta_of(f).affects_results
    }
    unchecked = claimed - TESTED_HERE - set(ELSEWHERE)
    assert not unchecked, f"options marked affects_results=False without a test: {unchecked}"
