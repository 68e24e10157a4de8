"""What `cvtasks models` shows of the face detector (its files are not torchvision's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvtasks.catalog import ModelRow

ARCHITECTURE = (
    "MTCNN (Zhang et al. 2016): P-Net over an image pyramid, R-Net on 24x24 and O-Net on 48x48 "
    "crops; boxes, scores and 5 landmarks"
)


def face_models() -> list[str]:
    return ["mtcnn"]


class FacesCatalog:
    """MTCNN with facenet-pytorch's weight files (cached like torchvision's)."""

    def row(self, name: str, task: str) -> ModelRow:
        from cvtasks.faces.weights import cached_file

        cached = all(cached_file(n).is_file() for n in ("pnet", "rnet", "onet"))
        return ModelRow(name, task, "DEFAULT", 0.5, None, "", None, cached, "MIT")

    def knows(self, name: str) -> bool:
        return name == "mtcnn"

    def info(self, name: str, task: str) -> dict[str, Any]:
        from cvtasks.faces.weights import SHA256, SOURCE, cached_file

        return {
            "name": name,
            "task": task,
            "architecture": ARCHITECTURE,
            "weights": "DEFAULT: facenet-pytorch's pnet.pt, rnet.pt, onet.pt (MIT licence)",
            "files": {
                n: {"url": SOURCE.format(name=n), "sha256": SHA256[n], "cache": str(cached_file(n))}
                for n in SHA256
            },
            "downloaded": all(cached_file(n).is_file() for n in SHA256),
            "licence": "MIT",
            "records": "box [x1, y1, x2, y2], score, landmarks (left eye, right eye, nose, "
            "left and right mouth corner)",
        }

    def pull(self, name: str) -> Path:
        from cvtasks.faces.weights import fetch_mtcnn

        return fetch_mtcnn()["onet"].parent


FACES_CATALOG = FacesCatalog()
