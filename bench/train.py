"""Training row of `make bench`: images/s of `cvtasks train` against a plain PyTorch loop on the
same data, model, batch and augmentation (random resized crop + flip), measured on the second
epoch of each (the first warms caches and allocators)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.models import get_model
from torchvision.transforms import v2

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"


def make_dataset(folder: Path, per_class: int = 96, size: int = 320) -> Path:
    """Two classes of JPEG crops (real photos vs the same with a moire grid)."""
    import skimage.data

    if (folder / "real").is_dir() and len(list((folder / "real").iterdir())) == per_class:
        return folder
    rng = np.random.default_rng(0)
    photos = [
        skimage.data.astronaut(),
        skimage.data.chelsea(),
        skimage.data.coffee(),
        skimage.data.rocket(),
    ]
    for name in ("real", "fake"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            photo = photos[i % len(photos)]
            crop = Image.fromarray(photo).resize((size, size), Image.BICUBIC)
            array = np.asarray(crop).astype(np.float32)
            if name == "fake":
                y, x = np.mgrid[0:size, 0:size]
                array *= (0.8 + 0.2 * np.sin((x + y) * rng.uniform(1.5, 2.5)))[..., None]
            Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(
                folder / name / f"{i:03d}.jpg", quality=88
            )
    return folder


class _Folder(Dataset[tuple[torch.Tensor, int]]):
    def __init__(self, root: Path, transform: v2.Compose) -> None:
        self.items = [
            (p, label)
            for label, name in enumerate(("fake", "real"))
            for p in sorted((root / name).iterdir())
        ]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        path, label = self.items[index]
        return self.transform(Image.open(path).convert("RGB")), label


def plain_loop(root: Path, model_name: str, batch: int, size: int, epochs: int = 2) -> float:
    """The loop people write: ImageFolder-like dataset decoding every epoch, fp32, contiguous."""
    torch.manual_seed(0)
    transform = v2.Compose([
        v2.PILToTensor(), v2.RandomResizedCrop(size, scale=(0.35, 1.0), antialias=True),
        v2.RandomHorizontalFlip(), v2.ToDtype(torch.float32, scale=True),
        v2.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])  # fmt: skip
    loader = DataLoader(_Folder(root, transform), batch_size=batch, shuffle=True, drop_last=True)
    model = get_model(model_name, weights=None, num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    criterion = nn.CrossEntropyLoss(label_smoothing=0.1)
    rate = 0.0
    for _ in range(epochs):
        model.train()
        seen, started = 0, time.perf_counter()
        for x, y in loader:
            loss = criterion(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(y)
        rate = seen / (time.perf_counter() - started)
    return rate


def cvtasks_train(
    root: Path, model: str, batch: int, size: int, extra: list[str], out: Path
) -> float:
    """`cvtasks train` as a user runs it; the second epoch's training images/s."""
    cmd = [sys.executable, "-m", "cvtasks", "train", str(root), "-m", model, "-w", "none",
           "--img-size", str(size), "-b", str(batch), "--epochs", "2", "-o", str(out), "-q", *extra]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return float(lines[-1]["images_per_s"])


def bench_training(model: str = "resnet18", batch: int = 32, size: int = 224) -> dict[str, float]:
    root = make_dataset(DATA / "train_set")
    plain = plain_loop(root, model, batch, size)
    out = DATA / "train_runs"
    ours = cvtasks_train(root, model, batch, size, ["--precision", "fp32"], out / "fp32")
    bf16 = cvtasks_train(root, model, batch, size, [], out / "default")  # auto: bf16 here
    no_cache = cvtasks_train(
        root, model, batch, size, ["--cache-mb", "0", "--no-channels-last"], out / "plain_options"
    )
    return {
        "plain_img_s": plain,
        "cvtasks_img_s": ours,
        "cvtasks_bf16_img_s": bf16,
        "cvtasks_no_cache_contiguous_img_s": no_cache,
        "ratio": ours / plain,
        "ratio_bf16": bf16 / plain,
    }


def print_training(row: dict[str, float]) -> None:
    print(
        f"\ntraining resnet18, 192 JPEGs 320 px, 224 px crops, batch 32, second epoch, img/s: "
        f"plain PyTorch loop {row['plain_img_s']:.1f}; cvtasks train --precision fp32 "
        f"{row['cvtasks_img_s']:.1f} ({row['ratio']:.2f}x), default (auto: bf16 on this CPU) "
        f"{row['cvtasks_bf16_img_s']:.1f} ({row['ratio_bf16']:.2f}x), "
        f"without cache and channels-last {row['cvtasks_no_cache_contiguous_img_s']:.1f}"
    )


if __name__ == "__main__":
    print_training(bench_training())
