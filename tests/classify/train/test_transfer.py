"""Transfer learning for real: starting from torchvision's MobileNetV2 release file (its head
replaced) beats random initialisation by a wide margin after two epochs on a small two-class set
of real photo pieces (scikit-image's cat and cup) pasted at random places on random backgrounds;
the run's validation scores are the ones `classify -w RUN` gives for the same images."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from PIL import Image

RECIPE = ["-m", "mobilenet_v2", "--img-size", "128", "--epochs", "2", "-b", "16", "--lr", "0.001"]
RECIPE += ["--val-split", "0.25", "--augment", "light", "--seed", "0", "-q"]


@pytest.fixture(scope="module")
def pieces(tmp_path_factory) -> Path:
    """48 images per class: the object (random scale) on a random crop of another photo."""
    rng = np.random.default_rng(0)
    objects = {
        "cat": Image.fromarray(skimage.data.chelsea()).crop((40, 0, 370, 300)),
        "cup": Image.fromarray(skimage.data.coffee()).crop((80, 20, 480, 390)),
    }
    backgrounds = [
        Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for name in ("gravel", "grass", "brick", "rocket", "astronaut", "hubble_deep_field")
    ]
    root = tmp_path_factory.mktemp("transfer") / "data"
    for label, piece in objects.items():
        (root / label).mkdir(parents=True)
        for i in range(48):
            back = backgrounds[int(rng.integers(len(backgrounds)))]
            x, y = (int(rng.integers(0, s - 200)) for s in back.size)
            canvas = back.crop((x, y, x + 200, y + 200)).resize((200, 200))
            side = int(rng.integers(90, 150))
            scaled = piece.resize((side, round(side * piece.height / piece.width)))
            canvas.paste(scaled, (int(rng.integers(0, 200 - side)), int(rng.integers(0, 60))))
            canvas.save(root / label / f"{i:02d}.jpg", quality=92)
    return root


def _train(data: Path, weights: str, out: Path) -> dict:
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    result = CliRunner().invoke(
        app, [str(a) for a in ["train", data, *RECIPE, "-w", weights, "-o", out]]
    )
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def from_release(pieces, mnv2_file, tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("runs") / "release"
    return folder, _train(pieces, str(mnv2_file), folder)


def test_starting_from_the_release_beats_random_init(pieces, from_release, tmp_path):
    real = from_release[1]
    scratch = _train(pieces, "none", tmp_path / "scratch")
    assert real["best"]["val_top1"] >= 0.9, real
    assert real["best"]["val_top1"] >= scratch["best"]["val_top1"] + 0.25, (real, scratch)


def test_validation_scores_are_classify_scores(cli, from_release):
    """The best epoch's validation loss, recomputed from `classify -w RUN` probabilities of the
    validation images (two classes, so the top-2 is the whole distribution)."""
    folder, summary = from_release
    split = json.loads((folder / "split.json").read_text())
    metrics = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    best = max(metrics, key=lambda m: (m["val_top1"], -m["val_loss"]))
    assert best["epoch"] == summary["best"]["epoch"]
    paths = [path for path, _ in split["val"]]
    result = cli(["classify", *paths, "-w", folder, "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    scores = {
        r["source"]: {p["index"]: p["score"] for p in r["predictions"]}
        for r in map(json.loads, result.stdout.splitlines())
    }
    smoothing = 0.1  # train's default label smoothing, in its validation loss too
    losses = []
    for path, label in split["val"]:
        p = scores[path]
        nll = -math.log(max(p[label], 1e-12))
        uniform = -sum(math.log(max(v, 1e-12)) for v in p.values()) / 2
        losses.append((1 - smoothing) * nll + smoothing * uniform)
    assert abs(np.mean(losses) - best["val_loss"]) < 2e-3, (np.mean(losses), best["val_loss"])


def test_resuming_says_what_the_run_started_from_and_is_not_wrapped(pieces, r18_file, tmp_path):
    """`train --resume` names the run's own starting weights (it said 'from none'), and its
    stderr lines are whole when redirected (they were hard-wrapped at 80 columns)."""
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    args = ["train", pieces, "-m", "resnet18", "-w", r18_file, "--img-size", "64", "--epochs", "1",
            "-b", "16", "--val-split", "0.25", "-o", tmp_path / "run"]  # fmt: skip
    first = CliRunner().invoke(app, [str(a) for a in args])
    assert first.exit_code == 0, first.stderr
    resumed = CliRunner().invoke(app, [str(a) for a in [*args, "--resume"]])
    assert resumed.exit_code == 0, resumed.stderr
    header = next(line for line in resumed.stderr.splitlines() if line.startswith("train "))
    assert f"from {r18_file} on " in header and "(resumed from " in header
    assert "none (random init)" not in resumed.stderr
    epoch = next(line for line in first.stderr.splitlines() if line.startswith("epoch"))
    assert "img/s" in epoch and len(header) > 80  # one line each, however long
