"""YOLO label folders as ground truth (`eval detect --gt labels/`): one ``STEM.txt`` per image
(``class cx cy w h``, fractions of the image), class names from the names file beside them,
turned into a COCO dataset at the images' sizes so that COCOeval scores it."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath
from typing import Any

from cvtasks.errors import UsageError

NAMES_FILES = ("classes.txt", "names.txt", "obj.names", "classes.names")


def names_of(folder: Path, names_file: str | None) -> list[str]:
    """The class names: ``--gt-names`` (a text file, one per line, or a YOLO data.yaml), else a
    names file in the labels folder or its parent."""
    candidates = [Path(names_file).expanduser()] if names_file else [
        d / n for d in (folder, folder.parent) for n in (*NAMES_FILES, "data.yaml")
    ]  # fmt: skip
    for path in candidates:
        if path.is_file():
            if path.suffix in (".yaml", ".yml"):
                from cvtasks.safe_yaml import load_yaml_file

                names = load_yaml_file(path).get("names")
                if isinstance(names, Mapping):
                    return [str(names[k]) for k in sorted(names, key=int)]
                if isinstance(names, list):
                    return [str(n) for n in names]
                raise UsageError(f"{path}: no 'names' list")
            return [line.strip() for line in path.read_text().splitlines() if line.strip()]
    raise UsageError(
        f"--gt {folder} is a YOLO label folder without its names file ({', '.join(NAMES_FILES)} "
        "or data.yaml beside it): give it with --gt-names FILE"
    )


def yolo_ground_truth(
    folder: Path, names_file: str | None, records: Sequence[Mapping[str, Any]]
) -> Any:
    """A pycocotools COCO object of the labels of the recorded images (their sizes from the
    records); an image without a label file has no objects."""
    from pycocotools.coco import COCO

    names = names_of(folder, names_file)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for record in records:
        stem = PurePath(str(record["source"])).stem
        width, height = record.get("width"), record.get("height")
        if not width or not height:
            raise UsageError(f"{record['source']}: its size is unknown, needed for YOLO labels")
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": PurePath(str(record["source"])).name,
                       "width": width, "height": height})  # fmt: skip
        label_file = folder / f"{stem}.txt"
        if not label_file.is_file():
            continue
        for number, line in enumerate(label_file.read_text().splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            try:
                cls = int(fields[0])
                cx, cy, w, h = (float(v) for v in fields[1:5])
            except (ValueError, IndexError):
                raise UsageError(f"{label_file}:{number}: not 'class cx cy w h'") from None
            if not 0 <= cls < len(names):
                raise UsageError(f"{label_file}:{number}: class {cls} has no name")
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id,
                                "category_id": cls + 1, "bbox": box,
                                "area": box[2] * box[3], "iscrowd": 0})  # fmt: skip
    gt = COCO()
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(names)]
    gt.dataset = {"images": images, "annotations": annotations, "categories": categories}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
    return gt
