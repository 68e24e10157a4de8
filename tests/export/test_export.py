"""`cvtasks export` and `--backend`: round trips of each family and format give the torch
backend's records; the real MobileNetV2 keeps its top-1; a run folder travels; every file is
read back by the tool that consumes it; what cannot be exported or run says why."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from crafted_models import crafted_detector, crafted_segmenter, labels_file, two_squares
from helpers import jsonl, seeded_state_dict

pytest.importorskip("onnxruntime")
pytest.importorskip("openvino")

SUFFIX = {"onnx": ".onnx", "openvino": ".xml", "exported-program": ".pt2",
          "torchscript": ".torchscript"}  # fmt: skip
BACKEND = {"onnx": "onnxruntime", "openvino": "openvino", "exported-program": "torch",
           "torchscript": "torch"}  # fmt: skip
DETECTOR = "fasterrcnn_mobilenet_v3_large_320_fpn"


def export(cli, tmp_path: Path, fmt: str, *args) -> Path:
    target = tmp_path / f"model{SUFFIX[fmt]}"
    result = cli(["export", *args, "-f", fmt, "-o", target, "-q"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["file"] == str(target) and target.is_file()
    assert report["max_abs_diff"] <= report["tolerance"]
    return target


def same_records(ours: list[dict], theirs: list[dict], tolerance: float = 2e-5) -> None:
    """Equal records; floats within ``tolerance`` (scores) or 0.011 px (rounded boxes)."""
    assert len(ours) == len(theirs)

    def close(a, b, key=""):
        if key == "mask":  # COCO RLE: a pixel whose probability is 0.5 +- 1e-6 may flip
            import pycocotools.mask as rle

            ours, theirs = rle.decode(a), rle.decode(b)
            assert (ours != theirs).mean() < 1e-3, key
            return
        if isinstance(a, dict):
            assert a.keys() == b.keys(), key
            for k in a:
                close(a[k], b[k], k)
        elif isinstance(a, list):
            assert len(a) == len(b), key
            for x, y in zip(a, b, strict=True):
                close(x, y, key)
        elif isinstance(a, float):
            assert a == pytest.approx(b, abs=0.011 if key == "box" else tolerance), key
        else:
            assert a == b, key

    for a, b in zip(ours, theirs, strict=True):
        close(a, b)


def ties_in_order(records: list[dict]) -> list[dict]:
    """Detections of equal score (the crafted detector's symmetric boxes) in one order: the
    runtimes list ties in either."""
    return [{**r, "predictions": sorted(r["predictions"], key=lambda p: (-round(p["score"], 4),
                                                                        p["box"]))}
            for r in records]  # fmt: skip


def run(cli, task: str, inputs, *args) -> list[dict]:
    result = cli([task, *inputs, *args, "-f", "jsonl", "-q"])
    assert result.exit_code == 0, result.stderr
    return jsonl(result.stdout)


def read_back(path: Path, fmt: str) -> dict:
    """The metadata, read by each format's own tool."""
    if fmt == "onnx":
        import onnx

        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        return json.loads({p.key: p.value for p in model.metadata_props}["cvtasks"])
    if fmt == "openvino":
        import openvino

        model = openvino.Core().read_model(str(path))
        return json.loads(model.get_rt_info(["cvtasks"]).astype(str))
    import torch

    if fmt == "exported-program":
        extra = {"cvtasks.json": ""}
        torch.export.load(str(path), extra_files=extra)
        return json.loads(extra["cvtasks.json"])
    extra = {"cvtasks.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    return json.loads(extra["cvtasks.json"])


@pytest.mark.parametrize("fmt", list(SUFFIX))
def test_a_classifier_in_every_format_gives_torchs_records(cli, tmp_path, photos, fmt):
    weights = tmp_path / "mnv3.pth"
    seeded_state_dict("mobilenet_v3_small", weights, head_keys=("classifier.3.weight",
                                                                "classifier.3.bias"))  # fmt: skip
    file = export(cli, tmp_path, fmt, "-m", "mobilenet_v3_small", "-w", weights, photos["coffee"])
    meta = read_back(file, fmt)
    assert (meta["task"], meta["model"], meta["release"]) == ("classify", "mobilenet_v3_small",
                                                              "IMAGENET1K_V1")  # fmt: skip
    assert len(meta["categories"]) == 1000 and meta["check"]["images"] == 1
    assert meta["preprocessing_values"] == {"resize": [256], "crop": [224], "interpolation":
        "bilinear", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}  # fmt: skip
    images = list(photos.values())
    theirs = run(cli, "classify", images, "-m", "mobilenet_v3_small", "-w", weights)
    for batch in ("1", "3"):  # the graph's batch is dynamic
        ours = run(cli, "classify", images, "-w", file, "--backend", BACKEND[fmt], "-b", batch)
        same_records(ours, theirs)


def test_the_real_mobilenet_v2_keeps_its_top1_and_int8_says_what_it_costs(
    cli, tmp_path, sized_photos, mnv2_file
):
    photos = [p for k, p in sized_photos.items() if k.endswith("_own") or k.endswith("_1000")]
    torch_records = run(cli, "classify", photos, "-m", "mobilenet_v2", "-w", mnv2_file)
    onnx_file = export(cli, tmp_path, "onnx", "-m", "mobilenet_v2", "-w", mnv2_file)
    for backend in ("onnxruntime", "openvino"):  # OpenVINO reads the ONNX file as it is
        same_records(run(cli, "classify", photos, "-w", onnx_file, "--backend", backend),
                     torch_records, tolerance=1e-4)  # fmt: skip
    int8 = tmp_path / "int8.onnx"
    made = cli(["export", "-m", "mobilenet_v2", "-w", mnv2_file, "--int8", "-o", int8, *photos])
    assert made.exit_code == 0, made.stderr
    report = json.loads(made.stdout)
    assert report["int8"]["images"] == len(photos) and report["int8"]["agreement"] >= 0.6
    assert f"int8: top-1 agreement with fp32 {report['int8']['agreement']:.4f}" in made.stderr
    assert int8.stat().st_size < onnx_file.stat().st_size / 3
    ran = cli(["classify", *photos, "-w", int8, "--backend", "onnxruntime", "-f", "jsonl"])
    assert ran.exit_code == 0 and "int8" in ran.stderr  # never silent
    same_top1 = [a["predictions"][0]["index"] == b["predictions"][0]["index"]
                 for a, b in zip(jsonl(ran.stdout), torch_records, strict=True)]  # fmt: skip
    assert sum(same_top1) / len(same_top1) == pytest.approx(report["int8"]["agreement"])


def test_a_run_folder_exports_with_its_classes_and_preprocessing(cli, tmp_path):
    from fake_faces import make_set

    data = make_set(tmp_path / "data", per_class=8)
    folder = tmp_path / "run"
    trained = cli(["train", data, "-m", "resnet18", "-w", "none", "--img-size", "64", "--epochs",
                   "1", "-b", "8", "--augment", "none", "-o", folder, "-q"])  # fmt: skip
    assert trained.exit_code == 0, trained.stderr
    file = export(cli, tmp_path, "onnx", "-w", folder)  # the run names its model
    meta = read_back(file, "onnx")
    assert meta["categories"] == ["fake", "real"] and meta["run_preprocessing"]["crop"] == 64
    images = sorted((data / "real").glob("*.png"))[:4]
    theirs = run(cli, "classify", images, "-w", folder)
    same_records(run(cli, "classify", images, "-w", file, "--backend", "onnxruntime"), theirs)
    out = tmp_path / "out"  # --resume with -w runs/X and no -m: the run's model, not the default
    run(cli, "classify", images[:2], "-w", folder, "-o", out)
    resumed = run(cli, "classify", images, "-w", folder, "-o", out, "--resume")
    assert [r["source"] for r in resumed] == [t["source"] for t in theirs[2:]], resumed


@pytest.fixture(scope="module")
def crafted(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("crafted_export")
    return {"image": two_squares(folder / "two.png"), "labels": labels_file(folder / "l.txt"),
            "detector": crafted_detector(folder / "d.pth"),
            "segmenter": crafted_segmenter(folder / "s.pth")}  # fmt: skip


@pytest.mark.parametrize("fmt", ["onnx", "openvino", "torchscript"])
def test_a_detector_gives_torchs_detections(cli, tmp_path, crafted, fmt):
    model = ["-m", DETECTOR, "-w", crafted["detector"], "--labels", crafted["labels"]]
    file = export(cli, tmp_path, fmt, *model, crafted["image"])
    assert read_back(file, fmt)["outputs"] == ["boxes", "labels", "scores"]
    theirs = run(cli, "detect", [crafted["image"]], *model, "--conf", "0.3")
    assert len(theirs[0]["predictions"]) > 10  # the crafted detector's many boxes
    ours = run(cli, "detect", [crafted["image"]], "-w", file, "--backend", BACKEND[fmt],
               "--conf", "0.3")  # fmt: skip
    same_records(ties_in_order(ours), ties_in_order(theirs))


def test_a_semantic_segmenter_gives_torchs_masks(cli, tmp_path, crafted):
    model = ["-m", "lraspp_mobilenet_v3_large", "-w", crafted["segmenter"], "--labels",
             crafted["labels"]]  # fmt: skip
    file = export(cli, tmp_path, "onnx", *model, crafted["image"])
    out_torch, out_onnx = tmp_path / "torch", tmp_path / "onnx"
    theirs = run(cli, "segment", [crafted["image"]], *model, "-o", out_torch)
    ours = run(cli, "segment", [crafted["image"]], "-w", file, "--backend", "onnxruntime", "-o",
               out_onnx)  # fmt: skip
    same_records([{**r, "files": None} for r in ours], [{**r, "files": None} for r in theirs])
    mask = Path("masks") / "two.png"
    assert (out_onnx / mask).read_bytes() == (out_torch / mask).read_bytes()


def test_pose_and_instance_masks_round_trip(cli, tmp_path, photos):
    """Keypoint R-CNN and Mask R-CNN (seeded random weights, heads scaled so that they detect),
    exported as ONNX, answer as torch does: keypoints and masks included."""
    from helpers import seeded_detector

    image = photos["astronaut"]
    for model in ("keypointrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn"):
        weights = seeded_detector(model, tmp_path / f"{model}.pth")
        task = "pose" if model.startswith("keypoint") else "segment"
        (tmp_path / model).mkdir()
        small = ["--min-size", "320"]  # fixed in the file, as detect --min-size sets it
        file = export(cli, tmp_path / model, "onnx", "-m", model, "-w", weights, *small, image)
        assert read_back(file, "onnx")["min_size"] == 320
        theirs = run(cli, task, [image], "-m", model, "-w", weights, "--conf", "0.2", *small)
        assert theirs[0]["predictions"], model
        ours = run(cli, task, [image], "-w", file, "--backend", "onnxruntime", "--conf", "0.2",
                   *small)  # fmt: skip
        # keypoints: x, y rounded to 0.01 px, scores (heatmap logits, ~20) to 1e-4
        same_records(ties_in_order(ours), ties_in_order(theirs), tolerance=0.011)


def test_depth_round_trip(cli, tmp_path, photos):
    from helpers import tiny_depth_model

    folder = tiny_depth_model(tmp_path / "tiny")
    file = export(cli, tmp_path, "onnx", "-m", folder, "-w", "DEFAULT", photos["coffee"])
    meta = read_back(file, "onnx")
    assert meta["task"] == "depth" and meta["processor_class"] == "DPTImageProcessor"
    images = [photos["coffee"], photos["chelsea"]]
    theirs = run(cli, "depth", images, "-m", folder, "--no-jpeg-draft")
    ours = run(cli, "depth", images, "-w", file, "--backend", "onnxruntime", "--no-jpeg-draft")
    same_records(ours, theirs, tolerance=1e-4)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["-f", "keras"], 2, "one of onnx, openvino, exported-program, torchscript"),
        (["-m", DETECTOR, "-f", "exported-program"], 2, "torch.export cannot capture"),
        (["-m", DETECTOR, "--opset", "9"], 2, "(operator "),
        (["-m", DETECTOR, "-f", "torchscript", "--int8"], 2, "--int8 quantises classifiers"),
        (["-m", "mtcnn"], 2, "export covers classify, detect, segment, pose and depth"),
        (["--tolerance", "0"], 1, "not written"),
    ],
)
def test_what_cannot_be_exported_says_why(cli, tmp_path, crafted, args, code, message):
    weights = crafted["detector"] if DETECTOR in args else None
    base = ["export", "-m", "mobilenet_v3_small", "-w", "none", "-o", tmp_path / "x.onnx"]
    if weights is not None:
        base = ["export", "-w", weights, "--labels", crafted["labels"], "-o",
                tmp_path / ("x.pt2" if "exported-program" in args else "x.onnx")]  # fmt: skip
    if "torchscript" in args:
        base[-1] = tmp_path / "x.torchscript"
    result = cli([*base, *args])
    assert result.exit_code == code, result.stderr
    assert message in result.stderr
    assert not (tmp_path / "x.onnx").exists()  # nothing half-written


def test_what_a_backend_cannot_run_says_why(cli, tmp_path, photos, r18_file, monkeypatch):
    onnx_file = export(cli, tmp_path, "onnx", "-m", "resnet18", "-w", r18_file, photos["coffee"])
    cases = [
        (["-w", onnx_file], "run it with --backend onnxruntime or --backend openvino"),
        (["-m", "resnet18", "-w", r18_file, "--backend", "onnxruntime"], "export them first"),
        (["-m", "resnet50", "-w", onnx_file, "--backend", "onnxruntime"], "an export of resnet18"),
    ]
    for args, message in cases:
        result = cli(["classify", photos["coffee"], *args])
        assert result.exit_code == 2 and message in result.stderr, result.stderr
    info = json.loads(cli(["models", "info", "resnet18", "-w", onnx_file]).stdout)
    assert info["kind"] == "exported" and info["release_from"] == "DEFAULT"  # a random file
    assert info["export"]["format"] == "onnx" and info["export"]["check"]["max_abs_diff"] < 1e-3
    explained = cli(["explain", "gradcam", photos["coffee"], "-w", onnx_file])
    assert explained.exit_code == 2 and "runs PyTorch weights" in explained.stderr
    monkeypatch.setitem(__import__("sys").modules, "openvino", None)  # not installed
    missing = cli(["classify", photos["coffee"], "-w", onnx_file, "--backend", "openvino"])
    assert missing.exit_code == 2 and "pip install 'cvtasks[openvino]'" in missing.stderr
    with zipfile.ZipFile(tmp_path / "foreign.pt2", "w") as archive:
        archive.writestr("model/data.pkl", b"")
    foreign = cli(["classify", photos["coffee"], "-m", "resnet18", "-w", tmp_path / "foreign.pt2"])
    assert foreign.exit_code == 3 and "was not exported by cvtasks" in foreign.stderr


def test_runtimes_are_imported_only_when_chosen(cli, tmp_path, photos, r18_file):
    """The torch backend imports none of onnx, onnxruntime and openvino; an exported file run
    with --backend onnxruntime imports that runtime and not OpenVINO."""
    import subprocess
    import sys

    onnx_file = export(cli, tmp_path, "onnx", "-m", "resnet18", "-w", r18_file, photos["coffee"])
    runtimes = ("onnx", "onnxruntime", "openvino")

    def imported(*args) -> list[str]:
        code = (
            "import sys, cvtasks.cli.app as a\n"
            f"sys.argv = ['cvtasks', 'classify', {str(photos['coffee'])!r}, *{list(args)!r}, '-q']\n"
            "try: a.main()\n"
            "except SystemExit as exc: assert not exc.code, exc.code\n"
            f"print(sorted(m for m in {runtimes!r} if m in sys.modules))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=300, check=True)  # fmt: skip
        return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))

    assert imported("-m", "resnet18", "-w", str(r18_file)) == []
    chosen = imported("-w", str(onnx_file), "--backend", "onnxruntime")
    assert "onnxruntime" in chosen and "openvino" not in chosen


def test_a_backend_keeps_sinks_resume_and_lanes(cli, tmp_path, photos, r18_file):
    """An exported file run with --save-images, --resume and one or two lanes writes the
    records the torch backend writes, and the annotated images."""
    onnx_file = export(cli, tmp_path, "onnx", "-m", "resnet18", "-w", r18_file, photos["coffee"])
    images = sorted(photos.values())
    theirs = run(cli, "classify", images, "-m", "resnet18", "-w", r18_file)
    out = tmp_path / "out"
    common = ["-w", onnx_file, "--backend", "onnxruntime", "-o", out, "--save-images"]

    def scored(records: list[dict]) -> list[dict]:  # without the saved images' paths
        return sorted(({k: v for k, v in r.items() if k != "files"} for r in records),
                      key=lambda r: r["source"])  # fmt: skip

    first = run(cli, "classify", images[:2], *common, "--lanes", "1")
    assert all(r["files"] for r in first)
    same_records(scored(first), scored(theirs[:2]))
    resumed = run(cli, "classify", images, *common, "--lanes", "2", "--resume")
    assert [r["source"] for r in resumed] == [str(p) for p in images[2:]]  # only the rest ran
    same_records(scored(jsonl((out / "results.jsonl").read_text())), scored(theirs))
    assert all((out / p.name).is_file() for p in images)  # annotated images
