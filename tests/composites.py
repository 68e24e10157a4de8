"""Photos whose evidence is known: the cat of scikit-image's chelsea and the cup of its coffee
photo pasted at five known places onto its gravel texture (448 x 448). The real MobileNetV2
calls each 'Egyptian cat' or 'espresso'."""

from __future__ import annotations

import json
from pathlib import Path

import skimage.data
from PIL import Image

SPOTS = [(40, 40), (232, 40), (40, 236), (232, 236), (136, 144)]  # inside the model's crop
OBJECTS = {  # name: (photo, region of the object, pasted size, ImageNet class)
    "cat": ("chelsea", (40, 0, 370, 300), (176, 160), 285),
    "cup": ("coffee", (80, 20, 480, 390), (176, 163), 967),
}
Box = tuple[int, int, int, int]


def make_composites(folder: Path) -> dict[str, list[tuple[Path, Box]]]:
    """{name: [(path, box of the pasted object), ...]}, five of each."""
    background = Image.fromarray(skimage.data.gravel()).convert("RGB").resize((448, 448))
    found: dict[str, list[tuple[Path, Box]]] = {}
    for name, (photo, region, size, _) in OBJECTS.items():
        piece = Image.fromarray(getattr(skimage.data, photo)()).crop(region).resize(size)
        for k, (x, y) in enumerate(SPOTS):
            image = background.copy()
            image.paste(piece, (x, y))
            path = folder / f"{name}{k}.jpg"
            image.save(path, quality=95)
            found.setdefault(name, []).append((path, (x, y, x + size[0], y + size[1])))
    return found


def coco_json(composites: dict[str, list[tuple[Path, Box]]], path: Path) -> Path:
    """The pasted boxes as COCO ground truth (categories 'cat' and 'cup')."""
    ids = {"cat": 1, "cup": 2}
    images, annotations = [], []
    for name, items in composites.items():
        for file, (x1, y1, x2, y2) in items:
            images.append({"id": len(images) + 1, "file_name": file.name, "width": 448,
                           "height": 448})  # fmt: skip
            annotations.append({"id": len(annotations) + 1, "image_id": len(images),
                                "category_id": ids[name], "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})  # fmt: skip
    categories = [{"id": i, "name": n} for n, i in ids.items()]
    path.write_text(json.dumps({"images": images, "annotations": annotations,
                                "categories": categories}))  # fmt: skip
    return path
