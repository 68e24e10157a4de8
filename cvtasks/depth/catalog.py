"""What `cvtasks models` shows of the depth models (transformers checkpoints on the hub)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cvtasks.catalog import ModelRow
from cvtasks.depth.models import hub_cache_dir, is_cached, known_model, pull_depth_model
from cvtasks.errors import UsageError


class DepthCatalog:
    """Depth Anything V2, DPT and ZoeDepth by alias or hub id."""

    def row(self, name: str, task: str) -> ModelRow:
        model = self._known(name)
        return ModelRow(
            name,
            task,
            model.repo_id,
            None,
            None,
            f"{model.kind} depth",
            None,
            is_cached(model.repo_id),
            model.licence,
        )

    def knows(self, name: str) -> bool:
        return known_model(name) is not None

    def info(self, name: str, task: str) -> dict[str, Any]:
        known = self._known(name)
        return {
            "name": known.alias,
            "task": task,
            "hub_id": known.repo_id,
            "licence": known.licence,
            "output": "metric depth in metres"
            if known.kind == "metric"
            else "relative inverse depth",
            "cached": is_cached(known.repo_id),
            "cache_dir": hub_cache_dir(),
            "url": f"https://huggingface.co/{known.repo_id}",
        }

    def pull(self, name: str) -> Path:
        return pull_depth_model(name)

    @staticmethod
    def _known(name: str) -> Any:
        model = known_model(name)
        if model is None:
            raise UsageError(
                f"unknown depth model '{name}'; see `cvtasks models list --task depth`"
            )
        return model


DEPTH_CATALOG = DepthCatalog()
