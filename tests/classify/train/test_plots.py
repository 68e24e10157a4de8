"""Training curves keep their legend outside the axes (inside, it hid the top-1 = 1.0 lines)."""

from __future__ import annotations

from cvtasks.classify.train import plots


def test_curves_legend_sits_below_the_axes(tmp_path, monkeypatch):
    saved = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: saved.append(figure))
    history = [
        {"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e, "train_top1": 1.0, "val_top1": 1.0}
        for e in range(1, 5)
    ]
    plots.curves_png(history, tmp_path / "curves.png", "resnet18 on 2 classes")
    (figure,) = saved
    assert all(axes.get_legend() is None for axes in figure.axes)
    (legend,) = figure.legends
    figure.canvas.draw()
    box = legend.get_window_extent()
    for axes in figure.axes:  # below every plot area, not over a line at top-1 = 1.0
        assert box.y1 <= axes.get_window_extent().y0
