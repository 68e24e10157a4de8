"""`cvtasks eval explain` end to end: the real MobileNetV2 on photos whose evidence is known
(composites with COCO boxes, human fixation maps, people's labels), a crafted detector, files
read back, --resume and the results page."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from composites import coco_json
from crafted_models import GREEN_BOX, RED_BOX, crafted_detector, labels_file, two_squares
from helpers import jsonl
from PIL import Image
from sklearn.metrics import cohen_kappa_score

CLASS_MAP = "Egyptian cat=cat,tabby=cat,tiger cat=cat,espresso=cup,cup=cup,coffee mug=cup"


@pytest.fixture(scope="module")
def labelled(composites, tmp_path_factory) -> dict[str, Path]:
    """Two cats and two cups in a folder, their boxes as COCO, people's labels (one wrong)."""
    folder = tmp_path_factory.mktemp("eval_explain")
    images = folder / "images"
    images.mkdir()
    chosen = {name: items[:2] for name, items in composites.items()}
    for items in chosen.values():
        for path, _ in items:
            shutil.copyfile(path, images / path.name)
    people = folder / "people.csv"
    people.write_text("image,label,truth\ncat0.jpg,cat,cat\ncat1.jpg,cup,cat\n"
                      "cup0.jpg,cup,cup\ncup1.jpg,cup,cup\n")  # fmt: skip
    fixations = folder / "fixations"
    fixations.mkdir()
    rng = np.random.default_rng(0)
    for items in chosen.values():  # 40 fixations on the object, 5 elsewhere
        for path, (x1, y1, x2, y2) in items:
            points = np.zeros((448, 448), np.uint8)
            points[rng.integers(y1, y2, 40), rng.integers(x1, x2, 40)] = 255
            points[rng.integers(0, 448, 5), rng.integers(0, 448, 5)] = 255
            Image.fromarray(points).save(fixations / f"{path.stem}.png")
    return {"images": images, "gt": coco_json(chosen, folder / "human.json"), "people": people,
            "fixations": fixations}  # fmt: skip


def _run(cli, method: str, labelled, weights, *extra) -> dict:
    result = cli(["eval", "explain", method, labelled["images"], "-m", "mobilenet_v2", "-w",
                  weights, "--class-map", CLASS_MAP, "-f", "json", *extra])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_gradcam_on_the_real_model_beats_its_baselines(cli, labelled, mnv2_file, tmp_path):
    out = tmp_path / "out"
    report = _run(cli, "gradcam", labelled, mnv2_file, "--gt", labelled["gt"], "--human-labels",
                  labelled["people"], "--curve-steps", "12", "-o", out)  # fmt: skip
    assert (report["images"], report["targets"]) == (4, 4)
    random, centre = report["baselines"]["random"], report["baselines"]["centre"]
    assert report["pointing_game"] == 1.0
    for key in ("energy_pointing_game", "top_iou", "insertion_auc"):
        assert report[key] > max(random[key], centre[key]), key
    assert report["deletion_auc"] < min(random["deletion_auc"], centre["deletion_auc"])
    assert report["counts"]["cc"] == 0  # boxes, no human maps

    assert json.loads((out / "metrics.json").read_text()) == report
    with (out / "rows.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["evidence"] for r in rows] == ["cat", "cat", "cup", "cup"]
    assert {r["pointing_game"] for r in rows} == {"1"}
    mean = np.mean([float(r["deletion_auc"]) for r in rows])
    assert mean == pytest.approx(report["deletion_auc"], abs=1e-6)
    for record in jsonl((out / "results.jsonl").read_text()):
        (target,) = record["predictions"]
        assert target["label"] in ("Egyptian cat", "espresso")
        curves = target["evaluation"]["curves"]
        assert {len(c) for kind in curves.values() for c in kind.values()} == {13}
    figure = Image.open(out / "curves.png")
    assert figure.width >= 900 and figure.height >= 400

    human = report["human_labels"]  # the model: cat, cat, cup, cup; people: cat, cup, cup, cup
    assert human["agreement"] == 0.75
    people, model = ["cat", "cup", "cup", "cup"], ["cat", "cat", "cup", "cup"]
    assert human["kappa"] == pytest.approx(cohen_kappa_score(people, model), abs=1e-6)
    assert human["truth"]["human_wrong_model_right"] == ["cat1.jpg"]
    assert human["truth"]["model_accuracy"] == 1.0

    from cvtasks.report.page import build_report

    page = build_report(out)
    data = (page.parent / "data.js").read_text()
    assert "pointing game (share of hits)" in data and "mean deletion curve" in data
    assert "Cohen" in data


def test_human_fixation_maps(cli, labelled, mnv2_file):
    report = _run(cli, "gradcam", labelled, mnv2_file, "--gt", labelled["fixations"],
                  "--curve-steps", "2")  # fmt: skip
    assert report["counts"]["nss"] == report["counts"]["cc"] == 4
    assert report["counts"]["pointing_game"] == 0  # maps, not objects
    random = report["baselines"]["random"]
    for key in ("cc", "nss", "auc_judd"):
        assert report[key] > random[key], key
    assert report["auc_judd"] > 0.75


def test_resume_adds_what_is_missing_and_reports_the_whole_set(cli, labelled, mnv2_file, tmp_path):
    common = ["-m", "mobilenet_v2", "-w", mnv2_file, "--class-map", CLASS_MAP, "--gt",
              labelled["gt"], "--curve-steps", "2", "-f", "json"]  # fmt: skip
    whole = cli(["eval", "explain", "saliency", labelled["images"], *common])
    out = tmp_path / "out"
    two = [labelled["images"] / "cat0.jpg", labelled["images"] / "cup1.jpg"]
    first = cli(["eval", "explain", "saliency", *two, *common, "-o", out])
    assert first.exit_code == 0 and json.loads(first.stdout)["images"] == 2
    resumed = cli(["eval", "explain", "saliency", labelled["images"], *common, "-o", out,
                   "--resume"])  # fmt: skip
    assert resumed.exit_code == 0, resumed.stderr
    assert "eval explain: 2 done" in resumed.stderr  # only the two missing images ran
    ours, theirs = json.loads(resumed.stdout), json.loads(whole.stdout)
    for key in ("images", "targets", "pointing_game", "deletion_auc", "insertion_auc"):
        assert ours[key] == pytest.approx(theirs[key], abs=1e-5), key  # summed in another order
    assert len(jsonl((out / "results.jsonl").read_text())) == 4


def test_a_crafted_detector_against_its_boxes(cli, tmp_path):
    """People's boxes where the detector finds the squares: each detection is matched to the
    annotated object of its class at IoU >= 0.5, and explained by its own square."""
    image = two_squares(tmp_path / "two.png")
    model = ["-m", "fasterrcnn_mobilenet_v3_large_320_fpn", "-w",
             crafted_detector(tmp_path / "d.pth"), "--labels", labels_file(tmp_path / "l.txt"),
             "--conf", "0.95"]  # fmt: skip
    detected = cli(["detect", image, *model, "-f", "jsonl", "-q"])
    (found,) = jsonl(detected.stdout)
    names = {"red": 1, "green": 2}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "two.png", "width": 320, "height": 320}],
        "categories": [{"id": i, "name": n} for n, i in names.items()],
        "annotations": [{"id": k, "image_id": 1, "category_id": names[p["label"]], "iscrowd": 0,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1)}
                        for k, p in enumerate(found["predictions"], start=1)
                        for x1, y1, x2, y2 in [p["box"]]]}))  # fmt: skip
    result = cli(["eval", "explain", "saliency", image, *model, "--gt", gt, "--curve-steps", "4",
                  "-o", tmp_path / "out", "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["targets"] == len(found["predictions"]) == 2
    assert report["counts"]["pointing_game"] == 2
    (record,) = jsonl((tmp_path / "out" / "results.jsonl").read_text())
    for target in record["predictions"]:
        assert target["evaluation"]["evidence"] == f"{target['label']} (IoU 1.00)"
        square = RED_BOX if target["label"] == "red" else GREEN_BOX
        assert target["box"][0] >= square[0] and target["box"][2] <= square[2]
    assert report["deletion_auc"] < report["baselines"]["centre"]["deletion_auc"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--gt", "missing.json"], "no such file or folder"),
        (["--human-labels", "missing.csv"], "no such file or folder"),
        (["--channel", "3", "--layer", "features.3"], "not --channel"),
    ],
)
def test_bad_ground_truth_is_a_usage_error(cli, labelled, mnv2_file, extra, message):
    result = cli(["eval", "explain", "saliency", labelled["images"], "-m", "mobilenet_v2", "-w",
                  mnv2_file, *extra])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.stderr


def test_panels_draw_peoples_evidence():
    """A mask's outline, fixations as dots and a density's half-peak contour, white on a dark
    rim, on a pane at another scale than the evidence."""
    from cvtasks.explain.result import draw_human

    pane = np.full((100, 200, 3), 128, np.uint8)
    mask = np.zeros((50, 100), bool)
    mask[10:30, 20:60] = True  # pane pixels x 40..120, y 20..60
    drawn = draw_human(pane, mask, "objects")
    white = np.all(drawn == 255, axis=2)
    assert white[20:60, 40].any() and white[20, 40:120].any()  # on the outline
    assert not white[30:50, 60:100].any() and not white[80:].any()  # not inside, not elsewhere
    assert (drawn == 0).all(axis=2).any()  # the dark rim
    points = np.zeros((50, 100), bool)
    points[25, 50] = True
    dots = np.all(draw_human(pane, points, "fixations") == 255, axis=2)
    ys, xs = np.nonzero(dots)
    assert abs(ys.mean() - 51) <= 1 and abs(xs.mean() - 101) <= 1 and len(xs) < 60
    density = np.zeros((50, 100))
    density[20:30, 40:60] = 1.0
    density[0:5, 0:5] = 0.4  # under half the peak: not outlined
    contour = np.all(draw_human(pane, density, "density") == 255, axis=2)
    assert contour[40:60, 80].any() and not contour[:12, :12].any()
