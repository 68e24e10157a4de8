"""What people marked on the images `eval explain` measures: where the evidence is (COCO boxes
or masks) or where they looked (a saliency or fixation map per image), matched to the inputs by
file name; and the labels they gave (a CSV)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from cvtasks.errors import ItemError, UsageError
from cvtasks.log import warn

MAP_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


@dataclass
class HumanObject:
    """One annotated object: its category, box (x1, y1, x2, y2) and the annotation's id."""

    category: str
    box: list[float]
    annotation: dict[str, Any]


@dataclass
class ImageEvidence:
    """One image's annotations (objects) or its human map (``density`` and/or ``fixations``,
    H x W in the image's pixels)."""

    width: int
    height: int
    objects: list[HumanObject] = field(default_factory=list)
    density: np.ndarray | None = None
    fixations: np.ndarray | None = None


def box_mask(width: int, height: int, box: Sequence[float]) -> np.ndarray:
    """The pixels whose centres lie inside ``box``."""
    x1, y1, x2, y2 = box
    xs, ys = np.arange(width) + 0.5, np.arange(height) + 0.5
    inside_x = (xs >= x1) & (xs <= x2)
    inside_y = (ys >= y1) & (ys <= y2)
    return np.asarray(inside_y[:, None] & inside_x[None, :])


class Evidence:
    """``--gt``: a COCO instances JSON, or a folder of maps (``STEM.png`` per image: two values,
    a fixation map; more, a fixation density map)."""

    def __init__(self, gt: str, class_map: Sequence[str], fixation_sigma: float) -> None:
        from cvtasks.detect.coco_eval import parse_class_map

        self.path = Path(gt).expanduser()
        self.class_map = {k.lower(): v.lower() for k, v in parse_class_map(class_map).items()}
        self.fixation_sigma = fixation_sigma
        self.coco: Any = None
        self.maps: dict[str, Path] = {}
        if self.path.is_dir():
            self.maps = {
                p.stem: p for p in sorted(self.path.iterdir()) if p.suffix.lower() in MAP_SUFFIXES
            }
            if not self.maps:
                raise UsageError(f"--gt {self.path}: no maps (STEM.png per image) in the folder")
        elif self.path.is_file():
            from cvtasks.detect.coco_eval import load_ground_truth

            self.coco = load_ground_truth(self.path)
            self.by_name = {
                PurePath(str(i["file_name"])).name: int(i["id"])
                for i in self.coco.dataset.get("images", [])
            }
            self.names = {int(c["id"]): c["name"] for c in self.coco.dataset.get("categories", [])}
        else:
            raise UsageError(f"--gt {self.path}: no such file or folder")

    @property
    def kind(self) -> str:
        return "maps" if self.coco is None else "objects"

    @property
    def categories(self) -> list[str]:
        return [] if self.coco is None else list(self.names.values())

    def category_of(self, label: str) -> str | None:
        """The GT category a model class maps to (by --class-map, else by name), lowercase."""
        target = self.class_map.get(label.lower(), label.lower())
        return target if target in {c.lower() for c in self.categories} else None

    def for_image(self, source: str, width: int, height: int) -> ImageEvidence | None:
        """The evidence of the input ``source`` (None when --gt has no entry for it)."""
        name = PurePath(source).name
        if self.coco is None:
            path = self.maps.get(PurePath(source).stem)
            return None if path is None else self._map(path, width, height)
        image_id = self.by_name.get(name)
        if image_id is None:
            return None
        info = self.coco.imgs[image_id]
        if (int(info.get("width", width)), int(info.get("height", height))) != (width, height):
            raise ItemError(
                f"--gt says {name} is {info.get('width')}x{info.get('height')} px, the image is "
                f"{width}x{height}"
            )
        objects = []
        for annotation in self.coco.imgToAnns.get(image_id, []):
            x, y, w, h = annotation["bbox"]
            category = self.names.get(int(annotation["category_id"]), "?")
            objects.append(HumanObject(category, [x, y, x + w, y + h], annotation))
        return ImageEvidence(width, height, objects)

    def mask(self, item: HumanObject, width: int, height: int) -> np.ndarray:
        """An object's mask: its segmentation when annotated, else its box."""
        if item.annotation.get("segmentation"):
            return np.asarray(self.coco.annToMask(item.annotation), bool)
        return box_mask(width, height, item.box)

    def _map(self, path: Path, width: int, height: int) -> ImageEvidence:
        from PIL import Image

        with Image.open(path) as image:
            values = np.asarray(image.convert("I" if image.mode.startswith("I") else "L"))
        values = values.astype(np.float64)
        if values.shape != (height, width):
            raise ItemError(
                f"human map {path.name} is {values.shape[1]}x{values.shape[0]} px, the image is "
                f"{width}x{height}"
            )
        if len(np.unique(values)) <= 2:  # a fixation map: fixated pixels are non-zero
            from cvtasks.explain.agreement import fixation_density

            fixations = values > 0
            return ImageEvidence(
                width, height, fixations=fixations,
                density=fixation_density(fixations, self.fixation_sigma * max(width, height)),
            )  # fmt: skip
        return ImageEvidence(width, height, density=values)


def read_human_labels(path: str) -> dict[str, dict[str, str]]:
    """``--human-labels``: a CSV with an image column (``image``, ``file``, ``source`` or
    ``filename``: matched by file name), a ``label`` (or ``human``) column and, optionally, the
    true label (``truth`` or ``true``). Returns file name -> {"human": ..., "truth": ...}."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise UsageError(f"--human-labels {file}: no such file")
    with file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise UsageError(f"--human-labels {file}: no rows")
    columns = {name.lower().strip(): name for name in rows[0]}
    image = next(
        (columns[c] for c in ("image", "file", "source", "filename") if c in columns), None
    )
    human = next((columns[c] for c in ("label", "human") if c in columns), None)
    truth = next((columns[c] for c in ("truth", "true") if c in columns), None)
    if image is None or human is None:
        raise UsageError(
            f"--human-labels {file}: needs an image column (image, file, source or filename) and "
            f"a label column (label or human); it has {', '.join(rows[0])}"
        )
    found: dict[str, dict[str, str]] = {}
    for row in rows:
        name = PurePath(row[image].strip()).name
        if name in found:
            warn(f"--human-labels: {name} is labelled twice; the first row is used")
            continue
        entry = {"human": row[human].strip()}
        if truth is not None and row[truth].strip():
            entry["truth"] = row[truth].strip()
        found[name] = entry
    return found


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"
