"""Test helpers: seeded weights and torchvision's own reference pipeline."""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import torch
from PIL import Image
from torch import nn
from torchvision.models import get_model, get_model_weights


def seeded_state_dict(
    model: str,
    path: Path,
    *,
    seed: int = 0,
    num_classes: int | None = None,
    head_scale: float = 40.0,
    head_keys: tuple[str, ...] = ("fc.weight", "fc.bias"),
) -> dict[str, torch.Tensor]:
    """Save a seeded random state dict of ``model`` (head weights scaled up so that softmax
    probabilities are well separated and top-k ranks are stable)."""
    torch.manual_seed(seed)
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    net = get_model(model, weights=None, **kwargs)
    state = net.state_dict()
    for key in head_keys:
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


def calibrated_state_dict(
    model: str, path: Path, images: list[Path], *, head_scale: float = 1.0, seed: int = 0, **kwargs
) -> None:
    """A seeded random detector/segmenter whose BatchNorm statistics are measured on
    ``images`` (random init leaves features vanishing in eval mode, so nothing would be
    detected); the classification head is scaled by ``head_scale`` to spread the scores."""
    torch.manual_seed(seed)
    net = get_model(model, weights=None, weights_backbone=None, **kwargs)
    transforms = get_model_weights(model).DEFAULT.transforms()
    batch = [transforms(Image.open(p).convert("RGB")) for p in images]
    net.eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.train()
            module.momentum = None  # cumulative average over the calibration passes
    with torch.no_grad():
        if hasattr(net, "transform"):
            net.backbone(net.transform(batch)[0].tensors)
        else:
            for x in batch:
                net(x.unsqueeze(0))
    state = net.state_dict()
    for key in state:
        if "box_predictor.cls_score" in key:
            state[key] = state[key] * head_scale
    torch.save(state, path)


def reference_detector(model: str, weights_file: Path, min_size: int | None = None, **kwargs):
    """torchvision's detector built directly with the same file (and the same min_size)."""
    net = get_model(model, weights=None, weights_backbone=None, **kwargs)
    net.load_state_dict(torch.load(weights_file, weights_only=True))
    if min_size is not None:
        scale = min_size / net.transform.min_size[0]
        net.transform.min_size = (min_size,)
        net.transform.max_size = round(net.transform.max_size * scale)
    return net.eval(), get_model_weights(model).DEFAULT.transforms()


def match_detections(ours: list[dict], theirs: list[dict], tol: float = 1e-3) -> None:
    """Every detection matches one on the other side: same label, score and box (within tol)."""
    assert len(ours) == len(theirs), (len(ours), len(theirs))
    remaining = list(theirs)
    for det in ours:
        for cand in remaining:
            if (
                cand["index"] == det["index"]
                and abs(cand["score"] - det["score"]) < 1e-4
                and max(abs(a - b) for a, b in zip(cand["box"], det["box"], strict=True))
                < tol * 100
            ):
                remaining.remove(cand)
                break
        else:
            raise AssertionError(f"no match for {det}")


def tiny_depth_model(folder: Path, *, metric: bool = False, size: int = 70) -> Path:
    """A tiny Depth Anything (DINOv2 backbone) with random weights and a matching image
    processor, saved with save_pretrained: a real transformers model folder, no download."""
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        Dinov2Config,
        DPTImageProcessor,
    )

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=size,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
        apply_layernorm=True,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=32,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        patch_size=14,
        depth_estimation_type="metric" if metric else "relative",
        max_depth=20,
    )
    model = DepthAnythingForDepthEstimation(config).eval()
    for module in model.modules():  # PyTorch's default init: outputs of order 1, not 1e-6
        if isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d, torch.nn.Linear)):
            module.reset_parameters()
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)  # keep the final ReLU's input mostly positive
    processor = DPTImageProcessor(
        size={"height": size, "width": size},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,
        do_rescale=True,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_pad=False,
    )
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def with_random_statistics(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            size = module.num_features
            module.running_mean.copy_(torch.rand(size, generator=generator) - 0.5)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(size, generator=generator) - 0.5)
    return model.eval()


def default_sigint() -> None:
    """``preexec_fn`` for children the tests interrupt: a shell's background job ignores SIGINT,
    children inherit that, and Python then installs no KeyboardInterrupt handler."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def cvtasks_argv(*args: object) -> list[str]:
    """The command line of a cvtasks child process."""
    return [sys.executable, "-m", "cvtasks", *map(str, args)]


def rotated_copies(photo: Path, folder: Path, count: int, step: float) -> Path:
    """``folder`` with ``count`` PNGs of ``photo`` turned by ``step`` degrees each (distinct inputs)."""
    folder.mkdir()
    base = Image.open(photo)
    for i in range(count):
        base.rotate(i * step).save(folder / f"{i:03d}.png")
    return folder


def noise_video(path: Path, frames: int, size: tuple[int, int] = (96, 64)) -> Path:
    """An MPEG-4 clip at 10 fps of seeded random-noise frames (``size`` is width, height)."""
    import cv2
    import numpy as np

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def seeded_detector(model: str, path: Path, seed: int = 0, head_scale: float = 1.0) -> Path:
    """A seeded random torchvision R-CNN whose box regressions are zero (random ones push boxes
    off the image), so that its (meaningless) detections are reported, with distinct scores;
    ``head_scale`` sharpens the box classifier. Saved as a state dict."""
    torch.manual_seed(seed)
    net = get_model(model, weights=None, weights_backbone=None)
    state = net.state_dict()
    for key in (
        "roi_heads.box_predictor.cls_score.weight",
        "roi_heads.box_predictor.cls_score.bias",
    ):
        state[key] = state[key] * head_scale
    for key in [k for k in state if "bbox_pred" in k]:
        state[key] = torch.zeros_like(state[key])
    if model.startswith("keypointrcnn_"):  # its random head called every box background
        weight = state["roi_heads.box_predictor.cls_score.weight"]
        weight[1] = -weight[0]  # person where background's logit is negative: about half
    torch.save(state, path)
    return path
