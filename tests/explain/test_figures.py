"""What the real MobileNetV2 showed in the figures: depthwise filters in a grid with a readable
title, panels capped in size with text that scales, one colour bar per occlusion map, where each
top patch lies in its image, and t-SNE's perplexity said out loud."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

W_CAP = 1700  # three panes of at most 440 px, gaps and the colour bars


def _red_pixels(image: Image.Image) -> int:
    pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    return int(((pixels[:, 0] > 200) & (pixels[:, 1] < 30) & (pixels[:, 2] < 30)).sum())


def test_depthwise_filters_are_all_shown_in_a_grid(cli, mnv2_file, tmp_path):
    result = cli(["explain", "filters", "mobilenet_v2", "-w", mnv2_file,
                  "--layer", "features.1.conv.0.0", "-o", tmp_path])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["shape"] == [32, 1, 3, 3] and record["mode"] == "kernels"
    assert record["rows"] * record["columns"] >= 32 and record["rows"] > 1
    figure = Image.open(tmp_path / record["files"]["grid"])
    assert figure.width >= 440 and 0.5 < figure.width / figure.height < 2.0  # not a column


@pytest.mark.parametrize("method", ["gradcam", "occlusion"])
def test_panels_of_big_photos_are_capped(cli, mnv2_file, sized_photos, tmp_path, method):
    args = ["explain", method, sized_photos["chelsea_2000"], "-m", "mobilenet_v2", "-w",
            mnv2_file, "-o", tmp_path, "-f", "jsonl", "--stride", "56", "--window", "56"]  # fmt: skip
    result = cli(args)
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    figure = Image.open(tmp_path / record["files"]["panel_1"])
    assert 1100 < figure.width <= W_CAP and figure.height < 500, figure.size
    raw = np.load(tmp_path / record["files"]["raw_1"])
    assert raw.shape in ((7, 7), (4, 4))  # the layer's map / the windows, not the panel's


def test_occlusion_panel_has_a_colour_bar_per_map(cli, mnv2_file, photos, tmp_path):
    args = ["explain", "occlusion", photos["chelsea"], "-m", "mobilenet_v2", "-w", mnv2_file,
            "-o", tmp_path, "-f", "jsonl", "--stride", "56", "--window", "56"]  # fmt: skip
    record = json.loads(cli(args).stdout)
    occluded = Image.open(tmp_path / record["files"]["panel_1"])
    width = 3 * 451 + 4 * max(4, 451 // 100)  # the three panes and their gaps
    bars = occluded.width - width
    strip = np.asarray(occluded.convert("L"))[:, width:]
    columns_with_ink = (strip < 128).any(axis=0)
    runs = np.diff(columns_with_ink.astype(int))
    assert bars > 150 and (runs == 1).sum() >= 2  # two bars, side by side, each with its text


def test_top_patches_show_where_each_patch_lies(cli, mnv2_file, photos, tmp_path):
    result = cli(["explain", "top-patches", *photos.values(), "-m", "mobilenet_v2", "-w", mnv2_file,
                  "--layer", "features.14", "--top-units", "2", "--k", "3", "-o", tmp_path])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    grid = Image.open(tmp_path / "explain" / "top-patches.features.14.png")
    assert _red_pixels(grid) > 6 * 20  # a red box (and dot) under each of the 6 patches
    assert grid.width >= 3 * 96


def test_embed_says_when_it_lowers_the_perplexity(cli, r18_file, photos, tmp_path):
    result = cli(["explain", "embed", *photos.values(), "-m", "resnet18", "-w", r18_file,
                  "-o", tmp_path, "-q"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "t-SNE perplexity 30 lowered to 0.667 for 3 images" in result.stderr
    assert "a t-SNE map of 3 images says little" in result.stderr
    with (tmp_path / "explain" / "embed.tsne.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert {row["perplexity"] for row in rows} == {"0.6667"}
