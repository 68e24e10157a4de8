"""Attribution methods on a model and one preprocessed image ``x`` (1 x 3 x H x W).

Gradient methods come from Captum (the PyTorch project's attribution library): saliency
(Simonyan et al. 2014), SmoothGrad, integrated gradients, deconvnet and guided backprop
(Springenberg et al. 2015), Grad-CAM and guided Grad-CAM. Occlusion (Zeiler & Fergus 2013)
is done here because its product is the *probability map* of the target class with the
occluder at each position, which Captum's occlusion (an attribution) does not return; the
per-pixel drop it also yields equals Captum's occlusion attribution.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torchvision.transforms.functional as TF
from torch import nn

from cvtasks.errors import UsageError
from cvtasks.explain.activations import guided_copy
from cvtasks.explain.config import ATTRIBUTION_METHODS
from cvtasks.explain.gradcam import gradcam
from cvtasks.explain.layers import default_layer, get_layer
from cvtasks.speed import is_channels_last

METHODS = ATTRIBUTION_METHODS
NEURON_METHODS = ("deconvnet", "guided-backprop")
LAYER_METHODS = ("gradcam", "guided-gradcam")


@dataclass
class MethodOptions:
    """Knobs of the methods (see ``cvtasks config show explain``)."""

    layer: str | None = None
    channel: int | None = None
    window: int = 32
    stride: int = 16
    baseline: str = "zero"
    samples: int = 25
    noise: float = 0.15
    steps: int = 50
    batch_size: int = 64
    neutral: tuple[float, ...] | None = None  # the input value of a neutral grey (None: 0)


@dataclass
class Attribution:
    """A method's answer for one image and one target (class index or unit)."""

    heat: np.ndarray  # H x W, float32, model-input resolution; larger = more important
    raw: np.ndarray  # what the method computed (C x H x W gradients, h x w Grad-CAM, ...)
    extra: dict[str, Any] = field(default_factory=dict)


def baseline_like(
    x: torch.Tensor, kind: str, neutral: tuple[float, ...] | None = None
) -> torch.Tensor:
    """The reference input: ``zero`` (the normalisation mean, a neutral grey: 0 for normalised
    inputs, else ``neutral`` per channel), ``mean`` (the image's own mean colour) or ``blur``
    (a heavily blurred copy)."""
    if kind == "zero":
        if neutral is None:
            return torch.zeros_like(x)
        grey = torch.tensor(neutral, dtype=x.dtype, device=x.device)[None, :, None, None]
        return grey.expand_as(x).clone()
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if kind == "blur":
        size = max(3, (min(x.shape[-2:]) // 8) | 1)
        return TF.gaussian_blur(x, [size, size], [size / 3.0, size / 3.0])
    raise UsageError(f"unknown baseline '{kind}': use zero, mean or blur")


def window_positions(length: int, window: int, stride: int) -> list[int]:
    """Window starts covering ``length``, the last one flush with the edge."""
    if window >= length:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def occlusion(model: nn.Module, x: torch.Tensor, target: int, opts: MethodOptions) -> Attribution:
    """Slide a baseline patch over ``x``; record P(target) at each position, batched.

    Only forwards run, so ``model`` may be a :func:`~cvtasks.speed.forward_copy`; the batches
    follow its memory layout."""

    def probability(batch: torch.Tensor) -> torch.Tensor:
        return model(batch).float().softmax(dim=1)[:, [target]]

    window = min(opts.window, *x.shape[-2:])
    base = baseline_like(x, opts.baseline, opts.neutral)
    channels_last = is_channels_last(model)
    sweep = occlusion_sweep(
        probability, x, base, window, opts.stride, opts.batch_size, channels_last
    )
    return sweep.attribution(0)


@dataclass
class OcclusionSweep:
    """The scores of every target with a patch at each window position (one forward pass per
    position serves all targets): ``base`` (T,) unoccluded, ``scores`` (positions, T)."""

    base: np.ndarray
    scores: np.ndarray
    ys: list[int]
    xs: list[int]
    window: int
    size: tuple[int, int]  # the input's H, W

    def attribution(self, target: int) -> Attribution:
        """Target ``target``'s score map, its per-pixel mean drop and the worst window."""
        height, width = self.size
        positions = [(y, x0) for y in self.ys for x0 in self.xs]
        p0 = float(self.base[target])
        column = self.scores[:, target]
        prob_map = column.reshape(len(self.ys), len(self.xs)).astype(np.float32)
        window = self.window
        drop = np.zeros((height, width), np.float64)
        count = np.zeros((height, width), np.float64)
        for (y, x0), p in zip(positions, column.tolist(), strict=True):
            drop[y : y + window, x0 : x0 + window] += p0 - p
            count[y : y + window, x0 : x0 + window] += 1
        # The mean drop over the windows covering each pixel: Captum's occlusion attribution,
        # where the windows tile the input (Captum cuts a last partial window; here it is
        # shifted flush).
        mean_drop = (drop / np.maximum(count, 1)).astype(np.float32)
        heat = np.clip(mean_drop, 0, None)
        worst = int(np.argmin(prob_map))
        wy, wx = positions[worst]
        extra = {
            "drop": mean_drop,
            "probability_map": prob_map,
            "window_starts": (self.ys, self.xs),
            "window": window,
            "score": p0,
            "min_score": float(prob_map.flat[worst]),
            "min_box": [wx, wy, wx + window, wy + window],
        }
        return Attribution(heat, prob_map, extra)


def occlusion_sweep(
    score: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    base: torch.Tensor,
    window: int,
    stride: int,
    batch_size: int,
    channels_last: bool = False,
) -> OcclusionSweep:
    """Slide a ``window`` patch of ``base`` over ``x`` (1 x C x H x W) with ``stride``;
    ``score(batch)`` gives each target's score per image (B x T), batches of ``batch_size``."""
    height, width = x.shape[-2:]
    ys, xs = window_positions(height, window, stride), window_positions(width, window, stride)
    positions = [(y, x0) for y in ys for x0 in xs]
    with torch.no_grad():
        p0 = score(x).float()[0].cpu().numpy()
        scores = np.empty((len(positions), p0.shape[0]), np.float32)
        for start in range(0, len(positions), batch_size):
            chunk = positions[start : start + batch_size]
            batch = x.repeat(len(chunk), 1, 1, 1)
            for i, (y, x0) in enumerate(chunk):
                batch[i, :, y : y + window, x0 : x0 + window] = base[
                    0, :, y : y + window, x0 : x0 + window
                ]
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            scores[start : start + len(chunk)] = score(batch).float().cpu().numpy()
    return OcclusionSweep(p0, scores, ys, xs, window, (height, width))


def _channel_max(attr: torch.Tensor, absolute: bool = True) -> np.ndarray:
    values = attr.detach()[0].float()
    values = values.abs() if absolute else values
    return values.max(dim=0).values.cpu().numpy().astype(np.float32)


def _unit_selector(channel: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """A Captum neuron selector: the channel's strongest activation anywhere in the map."""

    def select(output: torch.Tensor) -> torch.Tensor:
        return output[:, channel].flatten(1).amax(dim=1)

    return select


def check_method(method: str, opts: MethodOptions) -> None:
    """Refuse an unknown method and impossible combinations of options (usage errors)."""
    if method not in METHODS:
        raise UsageError(f"unknown method '{method}': choose one of {', '.join(METHODS)}")
    if method == "occlusion" and opts.stride > opts.window:
        raise UsageError(
            f"--stride {opts.stride} is larger than --window {opts.window}: the pixels between "
            "windows would never be occluded; use a stride of at most the window"
        )
    if opts.channel is not None:
        if method not in NEURON_METHODS:
            methods = " or ".join(NEURON_METHODS)
            raise UsageError(f"--channel explains a unit with {methods}, not {method}")
        if opts.layer is None:
            raise UsageError("--channel needs --layer NAME (the layer whose unit to explain)")


def attribute(
    method: str,
    model: nn.Module,
    x: torch.Tensor,
    target: int | None,
    opts: MethodOptions,
    model_name: str = "",
) -> Attribution:
    """Explain ``target`` (a class index) for input ``x``, or unit ``opts.channel`` of
    ``opts.layer`` for the neuron methods."""
    check_method(method, opts)
    x = x.detach().clone().requires_grad_(method != "occlusion")
    if method == "occlusion":
        assert target is not None
        return occlusion(model, x.detach(), target, opts)
    from captum import attr as captum  # the gradient methods only

    if method == "saliency":
        raw = captum.Saliency(model).attribute(x, target=target, abs=True)
        return Attribution(_channel_max(raw), raw.detach()[0].cpu().numpy())
    if method == "smoothgrad":
        sigma = opts.noise * float((x.max() - x.min()).detach())
        tunnel = captum.NoiseTunnel(captum.Saliency(model))
        raw = tunnel.attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=opts.samples,
            nt_samples_batch_size=opts.batch_size,
            stdevs=sigma,
            target=target,
            abs=True,
        )
        return Attribution(_channel_max(raw), raw.detach()[0].cpu().numpy())
    if method == "integrated-gradients":
        raw = captum.IntegratedGradients(model).attribute(
            x,
            baselines=baseline_like(x.detach(), opts.baseline, opts.neutral),
            target=target,
            n_steps=opts.steps,
            internal_batch_size=opts.batch_size,
        )
        heat = raw.detach()[0].float().sum(dim=0).abs().cpu().numpy().astype(np.float32)
        return Attribution(heat, raw.detach()[0].cpu().numpy())
    if method in NEURON_METHODS:
        warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
        relu_model = guided_copy(model)
        if opts.channel is not None:
            assert opts.layer is not None  # check_method
            layer = get_layer(relu_model, opts.layer)
            cls = (
                captum.NeuronDeconvolution if method == "deconvnet" else captum.NeuronGuidedBackprop
            )
            raw = cls(relu_model, layer).attribute(x, neuron_selector=_unit_selector(opts.channel))
        else:
            cls2 = captum.Deconvolution if method == "deconvnet" else captum.GuidedBackprop
            raw = cls2(relu_model).attribute(x, target=target)
        return Attribution(_channel_max(raw), raw.detach()[0].cpu().numpy())
    layer_name = opts.layer or default_layer(model_name, model)
    assert target is not None
    cam = gradcam(model, get_layer(model, layer_name), x, target)
    up = nn.functional.interpolate(cam, size=tuple(x.shape[-2:]), mode="bilinear")
    if method == "gradcam":
        heat = up.detach()[0, 0].float().clamp(min=0).cpu().numpy().astype(np.float32)
        return Attribution(heat, cam.detach()[0, 0].cpu().numpy(), {"layer": layer_name})
    # Guided Grad-CAM: guided backprop times the upsampled map, as Captum's GuidedGradCam.
    warnings.filterwarnings("ignore", message="Setting backward hooks on ReLU")
    guided = captum.GuidedBackprop(guided_copy(model)).attribute(x, target=target)
    raw = guided * up.detach().to(guided.dtype)
    return Attribution(_channel_max(raw), raw.detach()[0].cpu().numpy(), {"layer": layer_name})


def randomized_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """The model with every parameter re-initialised (Adebayo et al. 2018's randomisation)."""
    torch.manual_seed(seed)
    clone = copy.deepcopy(model)
    for module in clone.modules():
        reset = getattr(module, "reset_parameters", None)
        if callable(reset):
            reset()
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
    return clone.eval()


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 0..n-1 with ties sharing their average rank (as Spearman's coefficient needs)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    starts = np.cumsum(counts) - counts
    return (starts + (counts - 1) / 2.0)[inverse.ravel()]


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Spearman's rank correlation of two maps of equal shape (ties get average ranks);
    None when either map is constant (the coefficient is undefined, not 0)."""
    ra = _average_ranks(a.ravel().astype(np.float64))
    rb = _average_ranks(b.ravel().astype(np.float64))
    ra -= ra.mean()
    rb -= rb.mean()
    denominator = float(np.sqrt((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denominator) if denominator else None


def sanity_map(attribution: Attribution) -> np.ndarray:
    """The map the randomisation check compares: what the method computed at its own
    resolution (Grad-CAM's h x w cells, occlusion's grid of windows), not upsampled pixels."""
    raw = attribution.raw
    return raw if raw.ndim == 2 else attribution.heat
