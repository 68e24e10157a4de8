"""`python -m bench.explain_eval`: how each attribution method of `cvtasks explain` does against
people and for faithfulness, on torchvision's real MobileNetV2 (IMAGENET1K_V1, from the PyPI
wheel `make install` adds) and photos whose evidence is known: scikit-image's cat, cup, tripod
and rocket photos with boxes drawn by hand, and the cat and cup pasted at five places each onto
gravel (tests/composites.py). Prints one table (docs/explain.md quotes it) and writes
bench/results/explain_eval.json. About 15 minutes on 2 CPU cores with the default 50 steps.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from composites import coco_json, make_composites  # noqa: E402
from real_weights import mobilenet_v2_file  # noqa: E402

METHODS = ("gradcam", "occlusion", "saliency", "smoothgrad", "integrated-gradients",
           "guided-backprop", "deconvnet", "guided-gradcam")  # fmt: skip
# scikit-image photo: (its category, the object's box x1, y1, x2, y2 drawn by looking at it)
PHOTOS = {
    "camera": ("tripod", (228, 200, 408, 512)),
    "chelsea": ("cat", (30, 0, 390, 300)),
    "coffee": ("cup", (175, 15, 425, 305)),
    "rocket": ("rocket", (303, 125, 340, 410)),
}
CLASS_MAP = ("Egyptian cat=cat,tabby=cat,tiger cat=cat,espresso=cup,cup=cup,coffee mug=cup,"
             "tripod=tripod,space shuttle=rocket,missile=rocket,projectile=rocket")  # fmt: skip


def make_set(folder: Path) -> tuple[Path, Path]:
    """The images (composites and photos) and their COCO ground truth."""
    import skimage.data
    from PIL import Image

    images = folder / "images"
    shutil.rmtree(folder, ignore_errors=True)
    images.mkdir(parents=True)
    composites = make_composites(images)
    gt = coco_json(composites, folder / "composites.json")
    data = json.loads(gt.read_text())
    ids = {c["name"]: c["id"] for c in data["categories"]}
    for name, (category, (x1, y1, x2, y2)) in PHOTOS.items():
        photo = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        photo.save(images / f"{name}.jpg", quality=95)
        ids.setdefault(category, len(ids) + 1)
        image_id = len(data["images"]) + 1
        data["images"].append({"id": image_id, "file_name": f"{name}.jpg",
                               "width": photo.width, "height": photo.height})  # fmt: skip
        data["annotations"].append({"id": len(data["annotations"]) + 1, "image_id": image_id,
                                    "category_id": ids[category], "iscrowd": 0,
                                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                                    "area": (x2 - x1) * (y2 - y1)})  # fmt: skip
    data["categories"] = [{"id": i, "name": n} for n, i in ids.items()]
    gt.write_text(json.dumps(data))
    return images, gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--curve-steps", type=int, default=50)
    args = parser.parse_args()
    folder = HERE / "data" / "explain_eval"
    images, gt = make_set(folder)
    weights = folder / "mobilenet_v2.pth"
    shutil.copyfile(mobilenet_v2_file(), weights)
    found: dict[str, dict] = {}
    for method in args.methods.split(","):
        start = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "cvtasks", "eval", "explain", method, str(images), "-m",
             "mobilenet_v2", "-w", str(weights), "--gt", str(gt), "--class-map", CLASS_MAP,
             "--curve-steps", str(args.curve_steps), "-f", "json", "-q"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        found[method] = json.loads(run.stdout)
        found[method]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"{method}: {found[method]['seconds']} s", file=sys.stderr)
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "explain_eval.json").write_text(json.dumps(found, indent=2))
    print_table(found)


def print_table(found: dict[str, dict]) -> None:
    keys = ("pointing_game", "energy_pointing_game", "deletion_auc", "insertion_auc")
    first = next(iter(found.values()))
    print(f"{first['images']} images, {first['targets']} targets; real MobileNetV2")
    print("| map | pointing game | energy pointing game | deletion AUC (lower: better) | "
          "insertion AUC (higher: better) | seconds |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for method, report in found.items():
        cells = " | ".join(f"{report[k]:.3f}" for k in keys)
        print(f"| {method} | {cells} | {report['seconds']} |")
    for name in ("random", "centre"):
        values = [r["baselines"][name] for r in found.values()]
        cells = " | ".join(_span([v[k] for v in values]) for k in keys)
        print(f"| {name} map | {cells} | |")


def _span(values: list[float]) -> str:
    """One value, or the range when the runs differ (the baselines are the same maps)."""
    low, high = min(values), max(values)
    return f"{low:.3f}" if f"{low:.3f}" == f"{high:.3f}" else f"{low:.3f}-{high:.3f}"


if __name__ == "__main__":
    main()
