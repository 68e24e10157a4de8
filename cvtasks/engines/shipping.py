"""What an ``--engine ray`` run sends to its actors, built without ray: units of work in
input order, and the local files the predictor reads (as bytes, so workers need no shared
filesystem for them)."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from cvtasks.config import InferenceConfig
from cvtasks.errors import UsageError
from cvtasks.export.metadata import exported_files
from cvtasks.io.sources import InputItem

# Config keys naming local files or folders that the predictor reads: shipped to the actors.
# (Ground truth, like the inputs, is read where the inputs are: at the same paths.)
SHIPPED_KEYS = ("weights", "pose_weights", "labels", "faces", "detections")
MAX_SHIPPED_BYTES = 8 << 30
FrameKey = tuple[str, int | None]
Packed = dict[str, tuple[str, dict[str, bytes]]]


@dataclass
class Unit:
    """One unit of work for an actor: consecutive images, or one video with its done frames."""

    items: list[InputItem]
    done: frozenset[FrameKey]


def make_units(
    items: list[InputItem], batch_size: int, done: set[FrameKey] | frozenset[FrameKey]
) -> tuple[list[Unit], int]:
    """Units in input order, and the number of images left out because they are done."""
    units: list[Unit] = []
    images: list[InputItem] = []
    skipped = 0
    for item in items:
        if not item.is_video:
            if (item.source, None) in done:
                skipped += 1
                continue
            images.append(_absolute(item))
            if len(images) == batch_size:
                units.append(Unit(images, frozenset()))
                images = []
            continue
        if images:
            units.append(Unit(images, frozenset()))
            images = []
        frames = frozenset(key for key in done if key[0] == item.source)
        units.append(Unit([_absolute(item)], frames))
    if images:
        units.append(Unit(images, frozenset()))
    return units, skipped


def _absolute(item: InputItem) -> InputItem:
    """Workers do not share this process's working directory: absolute paths only."""
    return replace(
        item,
        path=Path(os.path.abspath(item.path)),
        frames=tuple(Path(os.path.abspath(f)) for f in item.frames),
    )


# --------------------------------------------------------------------------- shipping files


def pack_files(cfg: InferenceConfig, keys: tuple[str, ...] = SHIPPED_KEYS) -> Packed:
    """The local files and folders named by ``cfg``'s ``keys``, as bytes."""
    from cvtasks.run_spec import RUN_BEST, RUN_CONFIG, is_run_folder

    packed: Packed = {}
    total = 0
    for key in keys:
        value = getattr(cfg, key, None)
        if not isinstance(value, str) or not value.strip():
            continue
        path = Path(value.strip()).expanduser()
        if path.is_file():
            files = {f.name: f for f in exported_files(path) if f.is_file()}  # an IR: its .bin
        elif path.is_dir():
            names = [RUN_CONFIG, RUN_BEST, "labels.txt"] if is_run_folder(path) else None
            files = {
                p.relative_to(path).as_posix(): p
                for p in sorted(path.rglob("*"))
                if p.is_file() and (names is None or p.name in names)
            }
        else:
            continue  # a hub name such as DEFAULT or IMAGENET1K_V1: resolved on each worker
        total += sum(p.stat().st_size for p in files.values())
        if total > MAX_SHIPPED_BYTES:
            raise UsageError(
                f"--{key.replace('_', '-')} {value}: more than {MAX_SHIPPED_BYTES >> 30} GiB to "
                "ship to the Ray workers; put it where every worker can read it"
            )
        packed[key] = (
            path.name if path.is_dir() else "",
            {n: p.read_bytes() for n, p in files.items()},
        )
    return packed


def unpack_files(cfg: InferenceConfig, packed: Packed, root: Path) -> None:
    """Write the shipped files under ``root`` and point ``cfg``'s keys at them."""
    for key, (folder, files) in packed.items():
        base = root / key / folder if folder else root / key
        for name, data in files.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        setattr(cfg, key, str(base if folder else base / next(iter(files))))
