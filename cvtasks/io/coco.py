"""COCO results JSON from detection-like records (detect, pose, instance segmentation)."""

from __future__ import annotations

from typing import Any


class CocoResults:
    """Accumulates records into ``{"images", "annotations", "categories"}``.

    ``annotations`` is the COCO *results* format (``image_id``, ``category_id``, ``bbox`` as
    ``[x, y, width, height]``, ``score``), plus ``segmentation`` (RLE or polygons) and
    ``keypoints`` (``[x, y, v] * 17`` with ``v = 2``) when the records have them. Category ids
    are the model's class indices, which for torchvision's COCO weights are COCO's own ids.
    """

    def __init__(self) -> None:
        self.images: list[dict[str, Any]] = []
        self.annotations: list[dict[str, Any]] = []
        self.categories: dict[int, str] = {}

    def add(self, record: dict[str, Any]) -> None:
        image_id = len(self.images) + 1
        image = {
            "id": image_id,
            "file_name": record["source"],
            "width": record["width"],
            "height": record["height"],
        }
        if record.get("frame") is not None:
            image["frame"] = record["frame"]
        self.images.append(image)
        for pred in record.get("predictions") or []:
            if "box" not in pred:
                continue
            x1, y1, x2, y2 = pred["box"]
            annotation: dict[str, Any] = {
                "id": len(self.annotations) + 1,
                "image_id": image_id,
                "category_id": pred["index"],
                "bbox": [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": pred["score"],
            }
            if "mask" in pred:
                annotation["segmentation"] = pred["mask"]
            if "polygons" in pred:
                annotation["segmentation"] = pred["polygons"]
            if "keypoints" in pred:
                flat = []
                for x, y, _score in pred["keypoints"].values():
                    flat += [x, y, 2]
                annotation["keypoints"] = flat
                annotation["num_keypoints"] = len(pred["keypoints"])
            self.annotations.append(annotation)
            self.categories[pred["index"]] = pred["label"]

    def to_json(self) -> dict[str, Any]:
        return {
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": i, "name": n} for i, n in sorted(self.categories.items())],
        }
