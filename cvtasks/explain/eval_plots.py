"""The figure of `eval explain`: mean deletion and insertion curves of the method's maps beside
the random and centre-prior maps', with each curve's area in the legend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COLOURS = {"method": "#d62728", "random": "#7f7f7f", "centre": "#1f77b4"}


def curves_figure(result: dict[str, Any], path: Path) -> None:
    """Two panels: the explained score as pixels are deleted (most important first) and as
    they are inserted into a blurred image, averaged over the targets."""
    from cvtasks.classify.train.plots import _pyplot, _save

    plt = _pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(9.6, 4.4), sharey=False)
    names = {"method": result["method"], "random": "random map", "centre": "centre prior"}
    for axis, kind in zip(axes, ("deletion", "insertion"), strict=True):
        for name, curve in result["curves"].get(kind, {}).items():
            values = np.asarray(curve)
            area = (values.sum() - values[0] / 2 - values[-1] / 2) / (len(values) - 1)
            label = f"{names[name]} (AUC {area:.3f})"
            width = 2.2 if name == "method" else 1.4
            axis.plot(np.linspace(0, 1, len(values)), values, color=COLOURS[name], lw=width,
                      label=label)  # fmt: skip
        better = "lower" if kind == "deletion" else "higher"
        axis.set_title(f"{kind}: {better} area is better", fontsize=10)
        axis.set_xlabel(
            "share of pixels deleted, most important first"
            if kind == "deletion"
            else "share of pixels inserted into the blurred image"
        )
        axis.set_xlim(0, 1)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8, loc="upper right" if kind == "deletion" else "lower right")
    axes[0].set_ylabel("explained score (mean over targets)")
    figure.suptitle(
        f"eval explain: {result['method']} on {result['model']}, {result['targets']} targets "
        f"in {result['images']} images",
        fontsize=11,
    )
    figure.tight_layout()
    _save(figure, path)
