"""Test helpers: seeded weights and torchvision's own reference pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from PIL import Image
from torchvision.models import get_model, get_model_weights


def seeded_state_dict(
    model: str,
    path: Path,
    *,
    seed: int = 0,
    num_classes: int | None = None,
    head_scale: float = 40.0,
) -> dict[str, torch.Tensor]:
    """Save a seeded random state dict of ``model`` (head weights scaled up so that softmax
    probabilities are well separated and top-k ranks are stable)."""
    torch.manual_seed(seed)
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    net = get_model(model, weights=None, **kwargs)
    state = net.state_dict()
    for key in ("fc.weight", "fc.bias"):
        if key in state:
            state[key] = state[key] * head_scale
    torch.save(state, path)
    return state


def reference_topk(
    model: str, weights_file: Path, images: list[Path], k: int, num_classes: int = 1000
) -> list[tuple[list[int], list[float]]]:
    """torchvision called directly: weights.transforms() + model + softmax, one image at a time."""
    transforms = get_model_weights(model).DEFAULT.transforms()
    net = get_model(model, weights=None, num_classes=num_classes)
    net.load_state_dict(torch.load(weights_file, weights_only=True))
    net.eval()
    out = []
    with torch.no_grad():
        for path in images:
            x = transforms(Image.open(path).convert("RGB")).unsqueeze(0)
            probs = net(x).softmax(dim=1)[0]
            scores, idx = probs.topk(k)
            out.append((idx.tolist(), scores.tolist()))
    return out


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
