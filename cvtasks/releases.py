"""Which torchvision release a weights file is: torch hub names release files
``name-<sha256 prefix>.pth``, so a file whose SHA-256 starts with the prefix in a release's URL
*is* that release, whatever it is called now; and how a release's preprocessing reads."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from torchvision.models._api import WeightsEnum

from cvtasks.config import suggest
from cvtasks.errors import UsageError

HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def transforms_text(transforms: Any) -> str:
    """``resize 256 (bilinear), centre crop 224, mean/std (0.485, ...)`` for the presets."""
    parts = []
    resize = getattr(transforms, "resize_size", None)
    interpolation = getattr(transforms, "interpolation", None)
    if resize:
        mode = getattr(interpolation, "value", interpolation)
        parts.append(f"resize {resize[0] if len(resize) == 1 else tuple(resize)} ({mode})")
    crop = getattr(transforms, "crop_size", None)
    if crop:
        parts.append(f"centre crop {crop[0]}")
    mean, std = getattr(transforms, "mean", None), getattr(transforms, "std", None)
    if mean is not None and std is not None:
        parts.append(
            f"mean {tuple(round(v, 3) for v in mean)} std {tuple(round(v, 3) for v in std)}"
        )
    return ", ".join(parts) or " ".join(repr(transforms).split())


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 4 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    return digest.hexdigest()


def release_of_file(enum_cls: type[WeightsEnum], path: Path) -> WeightsEnum | None:
    """The torchvision release whose URL carries the hash prefix of this file's SHA-256
    (torch hub names its files ``name-<sha256 prefix>.pth``), whatever the file is called."""
    prefixes = {}
    for member in enum_cls:
        match = HASH_IN_NAME.search(os.path.basename(urlparse(member.url).path))
        if match:
            prefixes[match.group(1)] = member
    if not prefixes:
        return None
    digest = file_sha256(path)
    return next((m for prefix, m in prefixes.items() if digest.startswith(prefix)), None)


def release_member(enum_cls: type[WeightsEnum], model: str, release: str) -> WeightsEnum:
    name = release.split(".", 1)[1] if release.startswith(enum_cls.__name__ + ".") else release
    members = [m for m in enum_cls.__members__ if m != "DEFAULT"]
    if name.upper() == "DEFAULT":
        return enum_cls["DEFAULT"]
    if name not in enum_cls.__members__:
        raise UsageError(
            f"--release {release}: {model} has no such release"
            + suggest(name, members)
            + f"; choose one of {', '.join(members)}"
        )
    return enum_cls[name]
