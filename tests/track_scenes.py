"""Synthetic tracking scenes with known truth: drawn objects at known velocities, crossing
paths, one hidden behind another for some frames, detector dropouts, jitter and false
positives. Written as a MOTChallenge sequence (img1/, gt/gt.txt, det/det.txt, seqinfo.ini)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 320, 240


@dataclass
class Mover:
    """A box of ``size`` starting at ``start`` (top-left) moving ``velocity`` px per frame,
    present from ``first`` to ``last`` frame (0-based, inclusive)."""

    track_id: int
    start: tuple[float, float]
    velocity: tuple[float, float]
    size: tuple[float, float]
    first: int
    last: int
    colour: tuple[int, int, int]

    def box(self, frame: int) -> tuple[float, float, float, float] | None:
        if not self.first <= frame <= self.last:
            return None
        x = self.start[0] + self.velocity[0] * (frame - self.first)
        y = self.start[1] + self.velocity[1] * (frame - self.first)
        return (x, y, x + self.size[0], y + self.size[1])


@dataclass
class Scene:
    frames: int
    movers: list[Mover]
    occluder: int | None = None  # this mover hides others (drawn on top, their boxes missing)
    dropouts: set[tuple[int, int]] = field(default_factory=set)  # (frame, id) not detected
    false_positives: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    jitter: float = 1.0
    seed: int = 0

    def truth(self) -> dict[int, dict[int, tuple[float, float, float, float]]]:
        """frame -> id -> box of every visible object (an occluded one is not visible)."""
        visible: dict[int, dict[int, tuple[float, float, float, float]]] = {}
        for frame in range(self.frames):
            boxes = {m.track_id: m.box(frame) for m in self.movers}
            shown = {i: b for i, b in boxes.items() if b is not None and _on_screen(b)}
            if self.occluder in shown:
                cover = shown[self.occluder]
                shown = {
                    i: b for i, b in shown.items() if i == self.occluder or _covered(b, cover) < 0.6
                }
            visible[frame] = shown
        return visible


def _on_screen(box: tuple[float, float, float, float]) -> bool:
    x1, y1, x2, y2 = box
    return x2 > 0 and y2 > 0 and x1 < WIDTH and y1 < HEIGHT


def _covered(box: tuple[float, ...], cover: tuple[float, ...]) -> float:
    """Fraction of ``box`` hidden by ``cover``."""
    w = max(0.0, min(box[2], cover[2]) - max(box[0], cover[0]))
    h = max(0.0, min(box[3], cover[3]) - max(box[1], cover[1]))
    return w * h / ((box[2] - box[0]) * (box[3] - box[1]))


def crossing_scene() -> Scene:
    """Two people walking towards each other on one row (their paths cross, one passes
    behind the other), one walking down across the frame, one standing in a corner."""
    return Scene(
        frames=80,
        movers=[
            Mover(1, (5, 100), (3.5, 0.0), (28, 60), 0, 79, (230, 60, 60)),
            Mover(2, (285, 104), (-3.5, 0.0), (28, 60), 0, 79, (60, 90, 230)),
            Mover(3, (100, -50), (0.2, 3.8), (30, 48), 5, 79, (60, 200, 80)),
            Mover(4, (250, 170), (0.0, 0.0), (30, 50), 20, 60, (230, 200, 40)),
        ],
        occluder=1,
        dropouts={(f, 3) for f in (30, 31, 32)} | {(50, 1), (51, 1)},
        false_positives={12: (20, 20, 40, 40), 45: (200, 10, 222, 30), 70: (10, 200, 30, 222)},
    )


def write_sequence(scene: Scene, folder: Path, fps: float = 10.0) -> Path:
    """The MOTChallenge layout: img1/NNNNNN.jpg, gt/gt.txt, det/det.txt, seqinfo.ini."""
    rng = np.random.default_rng(scene.seed)
    (folder / "img1").mkdir(parents=True, exist_ok=True)
    (folder / "gt").mkdir(exist_ok=True)
    (folder / "det").mkdir(exist_ok=True)
    truth = scene.truth()
    gt, det = [], []
    order = sorted(scene.movers, key=lambda m: m.track_id == scene.occluder)  # occluder last
    for frame in range(scene.frames):
        image = Image.new("RGB", (WIDTH, HEIGHT), (70, 70, 70))
        draw = ImageDraw.Draw(image)
        for mover in order:
            box = mover.box(frame)
            if box is not None:
                draw.rectangle(box, fill=mover.colour)
        image.save(folder / "img1" / f"{frame + 1:06d}.jpg", quality=92)
        for track_id, (x1, y1, x2, y2) in sorted(truth[frame].items()):
            gt.append(f"{frame + 1},{track_id},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,1,1")
            if (frame, track_id) in scene.dropouts:
                continue
            noise = rng.normal(0, scene.jitter, 4)
            score = 0.85 + 0.1 * rng.random()
            det.append(
                f"{frame + 1},-1,{x1 + noise[0]:.2f},{y1 + noise[1]:.2f},"
                f"{x2 - x1 + noise[2]:.2f},{y2 - y1 + noise[3]:.2f},{score:.3f}"
            )
        if frame in scene.false_positives:
            x1, y1, x2, y2 = scene.false_positives[frame]
            det.append(f"{frame + 1},-1,{x1},{y1},{x2 - x1},{y2 - y1},0.4")
    (folder / "gt" / "gt.txt").write_text("\n".join(gt) + "\n")
    (folder / "det" / "det.txt").write_text("\n".join(det) + "\n")
    (folder / "seqinfo.ini").write_text(
        f"[Sequence]\nname={folder.name}\nimDir=img1\nframeRate={fps:g}\n"
        f"seqLength={scene.frames}\nimWidth={WIDTH}\nimHeight={HEIGHT}\nimExt=.jpg\n"
    )
    return folder
