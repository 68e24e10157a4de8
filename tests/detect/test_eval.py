"""`cvtasks eval detect`: every number equals pycocotools' COCOeval called directly on the same
files; saved predictions (a `detect -f coco` export, records, a COCO results list) score the
same as running the model; bad inputs are clear."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

FRCNN = "fasterrcnn_mobilenet_v3_large_320_fpn"


def crafted(tmp_path: Path) -> tuple[Path, Path, list[dict]]:
    """Ground truth and predictions with exact hits, shifted boxes, duplicates, misses, a
    false positive, a crowd region and objects of all three COCO sizes."""
    rng = np.random.default_rng(0)
    images, annotations, results, records = [], [], [], []
    categories = [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}, {"id": 18, "name": "dog"}]
    for image_id in range(1, 9):
        name = f"img{image_id}.jpg"
        images.append({"id": image_id, "file_name": name, "width": 640, "height": 480})
        preds = []
        for k in range(4):
            category = categories[(image_id + k) % 3]["id"]
            side = [20, 60, 150][k % 3]  # small, medium, large
            x, y = float(rng.integers(0, 400)), float(rng.integers(0, 300))
            crowd = int(image_id == 3 and k == 0)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": category, "bbox": [x, y, side, side * 1.2],
                                "area": side * side * 1.2, "iscrowd": crowd})  # fmt: skip
            kind = (image_id * 4 + k) % 5
            if kind == 4:
                continue  # missed
            shift = {0: 0.0, 1: side * 0.15, 2: side * 0.4, 3: 0.0}[kind]
            box = [x + shift, y, x + shift + side, y + side * 1.2]
            preds.append((category, box, float(rng.uniform(0.3, 1.0))))
            if kind == 3:  # a duplicate of an exact hit, lower score
                preds.append((category, [v + 1 for v in box], float(rng.uniform(0.05, 0.3))))
        preds.append((1, [500.0, 400.0, 560.0, 470.0], 0.55))  # a false positive
        names = {c["id"]: c["name"] for c in categories}
        for category, box, score in preds:
            results.append({"image_id": image_id, "category_id": category,
                            "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                            "score": round(score, 6)})  # fmt: skip
        records.append({"source": f"/data/{name}", "predictions": [
            {"label": names[c], "score": round(s, 6), "box": b} for c, b, s in preds]})  # fmt: skip
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations,
                              "categories": categories}))  # fmt: skip
    coco_results = tmp_path / "results.json"
    coco_results.write_text(json.dumps(results))
    return gt, coco_results, records


def reference(gt: Path, results: Path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(gt))
        evaluator = COCOeval(truth, truth.loadRes(str(results)), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def test_every_number_equals_pycocotools(cli, tmp_path):
    gt, coco_results, records = crafted(tmp_path)
    peer = reference(gt, coco_results)
    as_records = tmp_path / "records.jsonl"
    as_records.write_text("".join(json.dumps(r) + "\n" for r in records))
    for predictions in (coco_results, as_records):
        result = cli(["eval", "detect", "--gt", gt, "--predictions", predictions, "-f", "json"])
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["coco_stats"] == pytest.approx(list(peer.stats), abs=1e-6)
        assert report["ap50"] == pytest.approx(peer.stats[1], abs=1e-6)
        precision = peer.eval["precision"]
        for k, row in enumerate(report["per_class"]):
            cells = precision[:, :, k, 0, -1]
            assert row["ap"] == pytest.approx(cells[cells > -1].mean(), abs=1e-6)
    assert 0.2 < report["ap"] < 0.95  # the crafted cases make a non-trivial score


def test_precision_and_recall_at_conf_by_hand(cli, tmp_path):
    """Two images by hand: an exact hit, a shifted box (IoU 0.42), a detection on a crowd
    region (ignored), a class with no detection."""
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "a.jpg", "width": 200, "height": 100},
                   {"id": 2, "file_name": "b.jpg", "width": 200, "height": 100}],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 40, 60], "area": 2400,
             "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 3, "bbox": [100, 20, 80, 50], "area": 4000,
             "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [50, 30, 30, 50], "area": 1500,
             "iscrowd": 0},
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [120, 10, 50, 70], "area": 3500,
             "iscrowd": 1}]}))  # fmt: skip
    records = tmp_path / "r.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in [
        {"source": "x/a.jpg", "predictions": [
            {"label": "person", "score": 0.9, "box": [10, 10, 50, 70]},
            {"label": "person", "score": 0.3, "box": [11, 11, 50, 70]}]},
        {"source": "x/b.jpg", "predictions": [
            {"label": "person", "score": 0.6, "box": [60, 40, 90, 80]},
            {"label": "person", "score": 0.95, "box": [125, 15, 170, 80]},
            {"label": "dog", "score": 0.7, "box": [0, 0, 10, 10]}]}]))  # fmt: skip
    out = tmp_path / "out"
    result = cli(["eval", "detect", "--gt", gt, "--predictions", records, "-o", out, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    # at 0.5: the hit (TP), the shifted box (FP), the crowd one (ignored); 3 objects to find
    assert report["precision"] == pytest.approx(1 / 2) and report["recall"] == pytest.approx(1 / 3)
    rows = {r["label"]: r for r in report["per_class"]}
    assert rows["car"]["recall"] == 0 and rows["person"]["recall"] == pytest.approx(0.5)
    assert report["unmapped_labels"] == ["dog"] and "--class-map" in result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["coco_stats"] == report["coco_stats"]
    assert (out / "pr_curves.png").is_file() and (out / "confusion.png").is_file()
    mapped = cli(["eval", "detect", "--gt", gt, "--predictions", records, "--class-map",
                  "dog=car", "-f", "json"])  # fmt: skip
    assert json.loads(mapped.stdout)["unmapped_labels"] == []


def test_the_model_and_its_coco_export_score_the_same(cli, photos, small_models, tmp_path):
    weights = small_models[FRCNN]
    images = [photos["astronaut"], photos["coffee"]]
    exported = cli(["detect", *images, "-m", FRCNN, "-w", weights, "--conf", "0.05", "-f", "coco"])
    assert exported.exit_code == 0, exported.stderr
    export = json.loads(exported.stdout)
    assert export["annotations"], "the seeded model found nothing to score"
    # ground truth: the export's own boxes above 0.3, as a person would have drawn them
    gt = {"images": [{"id": i["id"], "file_name": Path(i["file_name"]).name, "width": i["width"],
                      "height": i["height"]} for i in export["images"]],
          "categories": export["categories"],
          "annotations": [{"id": a["id"], "image_id": a["image_id"],
                           "category_id": a["category_id"], "bbox": a["bbox"],
                           "area": a["bbox"][2] * a["bbox"][3], "iscrowd": 0}
                          for a in export["annotations"] if a["score"] >= 0.3]}  # fmt: skip
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(gt))
    export_file = tmp_path / "export.json"
    export_file.write_text(exported.stdout)
    ran = cli(["eval", "detect", *images, "-m", FRCNN, "-w", weights, "--gt", gt_file, "-f",
               "json", "-o", tmp_path / "run"])  # fmt: skip
    assert ran.exit_code == 0, ran.stderr
    scored = cli(["eval", "detect", "--gt", gt_file, "--predictions", export_file, "-f", "json"])
    assert scored.exit_code == 0, scored.stderr
    assert json.loads(ran.stdout)["coco_stats"] == json.loads(scored.stdout)["coco_stats"]
    # the results page of the run shows the evaluation
    assert cli(["report", tmp_path / "run"]).exit_code == 0
    page = (tmp_path / "run" / "report" / "data.js").read_text()
    data = json.loads(page[page.index("{") : page.rindex("}") + 1])
    texts = [s.get("text", "") for s in data["summaries"]]
    assert any(t.startswith("bbox on 2 images: AP") for t in texts), texts
    assert any("AP per class" in s.get("svg", "") for s in data["summaries"])
    # and the run's own folder (results.jsonl) scores the same again
    folder = cli(["eval", "detect", "--gt", gt_file, "--predictions", tmp_path / "run", "-f",
                  "json"])  # fmt: skip
    assert json.loads(folder.stdout)["coco_stats"] == json.loads(ran.stdout)["coco_stats"]


def test_bad_inputs_are_clear(cli, tmp_path):
    gt, coco_results, _records = crafted(tmp_path)
    missing = cli(["eval", "detect", "--predictions", coco_results])
    assert missing.exit_code == 2 and "--gt" in missing.stderr
    strangers = tmp_path / "strangers.jsonl"
    strangers.write_text(json.dumps({"source": "other.jpg", "predictions": []}) + "\n")
    result = cli(["eval", "detect", "--gt", gt, "--predictions", strangers])
    assert result.exit_code == 2 and "no input matches an image of --gt" in result.stderr
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    result = cli(["eval", "detect", "--gt", gt, "--predictions", empty, "-f", "json"])
    assert result.exit_code == 0 and "no predictions to score" in result.stderr
    assert json.loads(result.stdout)["ap"] <= 0
    alien = tmp_path / "alien.jsonl"
    alien.write_text(json.dumps({"source": "img1.jpg", "predictions": [
        {"label": "zebra", "score": 0.9, "box": [0, 0, 5, 5]}]}) + "\n")  # fmt: skip
    result = cli(["eval", "detect", "--gt", gt, "--predictions", alien])
    assert result.exit_code == 2 and "--class-map" in result.stderr
    bad_map = cli(["eval", "detect", "--gt", gt, "--predictions", alien, "--class-map",
                   "zebra=horse"])  # fmt: skip
    assert bad_map.exit_code == 2 and "has no 'horse'" in bad_map.stderr
    help_text = cli(["eval", "detect", "--help"])
    assert "Usage: cvtasks eval detect" in help_text.stdout and "--gt" in help_text.stdout


KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
             "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
             "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]  # fmt: skip


def test_masks_and_keypoints_equal_pycocotools(cli, tmp_path):
    """segm (polygon masks rasterised to RLE) and keypoints (OKS, standard sigmas)."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(1)
    images, annotations, records, segm_results, kp_results = [], [], [], [], []
    for image_id in range(1, 7):
        images.append({"id": image_id, "file_name": f"p{image_id}.jpg", "width": 320,
                       "height": 240})  # fmt: skip
        preds = []
        for k in range(3):
            x, y = float(rng.integers(0, 200)), float(rng.integers(0, 120))
            w, h = float(rng.integers(30, 100)), float(rng.integers(40, 110))
            polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            points = np.stack([rng.uniform(x, x + w, 17), rng.uniform(y, y + h, 17)], 1)
            flat = [float(v) for p in points for v in (*p, 2)]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": 1, "bbox": [x, y, w, h], "area": w * h,
                                "iscrowd": 0, "segmentation": polygon, "keypoints": flat,
                                "num_keypoints": 17})  # fmt: skip
            if (image_id + k) % 4 == 0:
                continue  # missed
            shift = float(rng.uniform(0, 0.3)) * w
            moved = [[v + (shift if i % 2 == 0 else 0) for i, v in enumerate(polygon[0])]]
            noisy = points + rng.normal(0, 0.04 * w, points.shape)
            score = float(rng.uniform(0.3, 1))
            box = [x + shift, y, x + shift + w, y + h]
            preds.append({"label": "person", "score": round(score, 6), "box": box,
                          "polygons": moved, "keypoints": {n: [float(px), float(py), 1.0]
                          for n, (px, py) in zip(KEYPOINTS, noisy, strict=True)}})  # fmt: skip
            rle = mask_utils.merge(mask_utils.frPyObjects(moved, 240, 320))
            base = {"image_id": image_id, "category_id": 1, "score": round(score, 6),
                    "bbox": [box[0], box[1], w, h]}  # fmt: skip
            segm_results.append({**base, "segmentation": {"size": rle["size"],
                                 "counts": rle["counts"].decode("ascii")}})  # fmt: skip
            kp_results.append({**base, "keypoints": [float(v) for p in noisy for v in (*p, 1.0)]})
        records.append({"source": f"p{image_id}.jpg", "width": 320, "height": 240,
                        "predictions": preds})  # fmt: skip
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [
        {"id": 1, "name": "person", "keypoints": KEYPOINTS, "skeleton": []}]}))  # fmt: skip
    as_records = tmp_path / "records.jsonl"
    as_records.write_text("".join(json.dumps(r) + "\n" for r in records))
    for kind, iou_type, results in (("segment", "segm", segm_results),
                                    ("pose", "keypoints", kp_results)):  # fmt: skip
        file = tmp_path / f"{iou_type}.json"
        file.write_text(json.dumps(results))
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            truth = COCO(str(gt))
            peer = COCOeval(truth, truth.loadRes(str(file)), iou_type)
            peer.evaluate()
            peer.accumulate()
            peer.summarize()
        result = cli(["eval", kind, "--gt", gt, "--predictions", as_records, "-f", "json"])
        assert result.exit_code == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["iou_type"] == iou_type
        assert report["coco_stats"] == pytest.approx(list(peer.stats), abs=1e-6)
        assert 0.05 < report["ap"] < 0.95, (kind, report["ap"])
    assert len(json.loads(result.stdout)["coco_stats"]) == 10  # keypoints: COCOeval's 10


@pytest.mark.parametrize("kind, model", [("pose", "keypointrcnn_resnet50_fpn"),
                                         ("segment", "maskrcnn_resnet50_fpn")])  # fmt: skip
def test_pose_and_masks_runs_equal_their_exports(cli, photos, small_models, tmp_path, kind, model):
    weights = small_models[model]
    images = [photos["astronaut"], photos["coffee"]]
    exported = cli([kind, *images, "-m", model, "-w", weights, "--conf", "0.05", "-f", "coco"])
    assert exported.exit_code == 0, exported.stderr
    export = json.loads(exported.stdout)
    assert export["annotations"], "the seeded model found nothing to score"
    categories = [{**c, "keypoints": KEYPOINTS} for c in export["categories"]]
    truth = [a for a in export["annotations"] if a["score"] >= 0.2] or export["annotations"][:1]
    gt = {"images": [{"id": i["id"], "file_name": Path(i["file_name"]).name, "width": i["width"],
                      "height": i["height"]} for i in export["images"]],
          "categories": categories,
          "annotations": [{**{k: v for k, v in a.items() if k != "score"},
                           "area": a["bbox"][2] * a["bbox"][3], "iscrowd": 0} for a in truth]}  # fmt: skip
    gt_file = tmp_path / "gt.json"
    gt_file.write_text(json.dumps(gt))
    export_file = tmp_path / "export.json"
    export_file.write_text(exported.stdout)
    ran = cli(["eval", kind, *images, "-m", model, "-w", weights, "--gt", gt_file, "-f", "json"])
    assert ran.exit_code == 0, ran.stderr
    scored = cli(["eval", kind, "--gt", gt_file, "--predictions", export_file, "-f", "json"])
    assert scored.exit_code == 0, scored.stderr
    assert json.loads(ran.stdout)["coco_stats"] == pytest.approx(
        json.loads(scored.stdout)["coco_stats"], abs=1e-6
    )


def test_semantic_miou_equals_a_confusion_computed_here(cli, photos, small_models, tmp_path):
    """The model's own masks, edited (a block relabelled, a band ignored), are the ground
    truth: mean IoU and pixel accuracy equal scikit-learn's confusion over all pixels."""
    from PIL import Image
    from sklearn.metrics import confusion_matrix

    model, weights = "lraspp_mobilenet_v3_large", small_models["lraspp_mobilenet_v3_large"]
    images = [photos["astronaut"], photos["chelsea"]]
    ran = cli(["segment", *images, "-m", model, "-w", weights, "-o", tmp_path / "seg", "-q"])
    assert ran.exit_code == 0, ran.stderr
    gt_dir = tmp_path / "gt"
    gt_dir.mkdir()
    truths, preds = [], []
    for k, image in enumerate(images):
        predicted = np.asarray(Image.open(next((tmp_path / "seg" / "masks").rglob(
            f"{image.stem}.png"))))  # fmt: skip
        truth = predicted.copy()
        truth[: 60 + 40 * k, :120] = 15  # a block of "person"
        truth[-20:, :] = 255  # not scored
        Image.fromarray(truth.astype(np.uint8)).save(gt_dir / f"{image.stem}.png")
        keep = truth != 255
        truths.append(truth[keep])
        preds.append(predicted[keep])
    out = tmp_path / "ev"
    result = cli(["eval", "segment", *images, "-m", model, "-w", weights, "--gt-masks", gt_dir,
                  "-o", out, "-f", "json"])  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    truth, pred = np.concatenate(truths), np.concatenate(preds)
    matrix = confusion_matrix(truth, pred, labels=range(21))
    hits, union = np.diag(matrix), matrix.sum(0) + matrix.sum(1) - np.diag(matrix)
    ious = hits[union > 0] / union[union > 0]
    assert report["miou"] == pytest.approx(ious.mean(), abs=1e-6)
    assert report["pixel_accuracy"] == pytest.approx(hits.sum() / matrix.sum(), abs=1e-6)
    assert (
        report["pixels"] == matrix.sum()
        and np.array(report["confusion"]).tolist() == matrix.tolist()
    )
    assert (out / "confusion.png").is_file() and (out / "metrics.json").is_file()
    missing = cli(["eval", "segment", photos["coffee"], "-m", model, "-w", weights,
                   "--gt-masks", gt_dir, "-f", "json"])  # fmt: skip
    assert missing.exit_code == 1 and "no ground-truth mask" in missing.stderr


def test_yolo_labels_with_their_names_file_score_like_coco(cli, tmp_path):
    gt, _, records = crafted(tmp_path)
    data = json.loads(gt.read_text())
    for a in data["annotations"]:
        a["iscrowd"] = 0  # YOLO labels know no crowd regions
    coco = tmp_path / "nocrowd.json"
    coco.write_text(json.dumps(data))
    labels = tmp_path / "labels"
    labels.mkdir()
    order = [c["name"] for c in data["categories"]]
    ids = {c["id"]: i for i, c in enumerate(data["categories"])}
    (labels / "classes.txt").write_text("\n".join(order) + "\n")
    for image in data["images"]:
        lines = [
            f"{ids[a['category_id']]} {(a['bbox'][0] + a['bbox'][2] / 2) / image['width']:.8f} "
            f"{(a['bbox'][1] + a['bbox'][3] / 2) / image['height']:.8f} "
            f"{a['bbox'][2] / image['width']:.8f} {a['bbox'][3] / image['height']:.8f}"
            for a in data["annotations"]
            if a["image_id"] == image["id"]
        ]
        (labels / f"{Path(image['file_name']).stem}.txt").write_text("\n".join(lines) + "\n")
    sized = tmp_path / "sized.jsonl"
    sized.write_text("".join(json.dumps({**r, "width": 640, "height": 480}) + "\n"
                             for r in records))  # fmt: skip
    by_coco = cli(["eval", "detect", "--gt", coco, "--predictions", sized, "-f", "json"])
    by_yolo = cli(["eval", "detect", "--gt", labels, "--predictions", sized, "-f", "json"])
    assert by_yolo.exit_code == 0, by_yolo.stderr
    assert json.loads(by_yolo.stdout)["coco_stats"] == pytest.approx(
        json.loads(by_coco.stdout)["coco_stats"], abs=1e-5
    )
    (labels / "classes.txt").unlink()
    nameless = cli(["eval", "detect", "--gt", labels, "--predictions", sized])
    assert nameless.exit_code == 2 and "--gt-names" in nameless.stderr
