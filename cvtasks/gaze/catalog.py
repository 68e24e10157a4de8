"""What `cvtasks models` shows of the gaze model: L2CS-Net, whose checkpoints are files the user
brings (they are published on the project's page, not on a package registry)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvtasks.catalog import ModelRow
from cvtasks.errors import WeightsUnavailableError
from cvtasks.gaze.config import L2CS_CHECKPOINTS

CHECKPOINTS = "L2CSNet_gaze360.pkl (90 bins, Gaze360) or an MPIIGaze fold (28 bins)"


class GazeCatalog:
    """L2CS-Net (Abdelrahman et al. 2022): a ResNet with two binned heads (yaw, pitch)."""

    def row(self, name: str, task: str) -> ModelRow:
        return ModelRow(name, task, "a checkpoint file (-w)", None, None, "", None, False, "MIT")

    def knows(self, name: str) -> bool:
        return name == "l2cs"

    def info(self, name: str, task: str) -> dict[str, Any]:
        return {
            "name": name,
            "task": task,
            "architecture": "L2CS-Net: ResNet-18/34/50/101/152 (read from the checkpoint) with "
            "yaw and pitch heads over 90 or 28 bins",
            "weights": f"a checkpoint given with -w: {CHECKPOINTS}",
            "published_at": L2CS_CHECKPOINTS,
            "downloaded": False,
            "licence": "MIT",
            "faces": "from --faces FILE, else from keypointrcnn_resnet50_fpn's face keypoints",
        }

    def pull(self, name: str) -> Path:
        raise WeightsUnavailableError(
            f"{name} checkpoints are not downloadable by cvtasks (they are published at "
            f"{L2CS_CHECKPOINTS}, not on a package registry): download {CHECKPOINTS} and pass it "
            "with -w FILE"
        )


GAZE_CATALOG = GazeCatalog()
