"""Labelled image sets: folders of classes, train/val splits, list files; checks that say what
is wrong in one line."""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cvtasks.errors import UsageError, listed
from cvtasks.io.sources import IMAGE_EXTENSIONS

Sample = tuple[Path, int]  # image file, class index


@dataclass
class LabelledSet:
    """Classes (in index order) and the train and validation samples."""

    classes: list[str]
    train: list[Sample]
    val: list[Sample]
    layout: str  # "folders" (train/ and val/), "split" (one folder, held out) or "list"

    def counts(self, part: str) -> dict[str, int]:
        samples = self.train if part == "train" else self.val
        found = Counter(label for _, label in samples)
        return {name: found.get(i, 0) for i, name in enumerate(self.classes)}


def _images(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def class_folders(root: Path) -> dict[str, list[Path]]:
    """Class name -> images, for every visible sub-folder of ``root``; empty ones are errors."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    found = {}
    for folder in folders:
        images = _images(folder)
        if not images:
            raise UsageError(f"class folder {folder} holds no images")
        found[folder.name] = images
    return found


def _ordered(names: set[str], labels_file: str | None) -> list[str]:
    if labels_file is None:
        return sorted(names)
    from cvtasks.tasks.base import read_labels

    order = read_labels(labels_file)
    if set(order) != names:
        extra, missing = sorted(set(order) - names), sorted(names - set(order))
        raise UsageError(
            f"--labels {labels_file} does not list the data's classes "
            f"(not in the data: {extra or '-'}; not in the file: {missing or '-'})"
        )
    return order


def stratified_split(
    by_class: dict[str, list[Path]], fraction: float, seed: int
) -> tuple[dict[str, list[Path]], dict[str, list[Path]]]:
    """Hold out ``fraction`` of every class (at least one image when the class has two)."""
    rng = np.random.default_rng(seed)
    train, val = {}, {}
    for name, images in by_class.items():
        order = rng.permutation(len(images))
        count = round(len(images) * fraction)
        if fraction > 0 and len(images) > 1:
            count = min(max(count, 1), len(images) - 1)
        held = set(order[:count].tolist())
        val[name] = [p for i, p in enumerate(images) if i in held]
        train[name] = [p for i, p in enumerate(images) if i not in held]
    return train, val


def _samples(by_class: dict[str, list[Path]], classes: list[str]) -> list[Sample]:
    index = {name: i for i, name in enumerate(classes)}
    return [(path, index[name]) for name in classes for path in by_class.get(name, [])]


def _read_list(path: Path) -> dict[str, list[Path]]:
    """``path,label`` rows (CSV with or without a header) or JSONL ``{"path", "label"}``;
    relative paths are relative to the list file."""
    by_class: dict[str, list[Path]] = {}
    base = path.parent
    text = path.read_text(encoding="utf-8")
    rows: list[tuple[str, str, int]] = []
    if path.suffix.lower() == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    item = json.loads(line)
                    rows.append((str(item["path"]), str(item["label"]), number))
                except (ValueError, KeyError, TypeError):
                    raise UsageError(
                        f'{path}:{number}: expected {{"path": ..., "label": ...}}'
                    ) from None
    else:
        for number, row in enumerate(csv.reader(text.splitlines()), start=1):
            if not row or (
                number == 1 and [c.strip().lower() for c in row[:2]] == ["path", "label"]
            ):
                continue
            if len(row) < 2:
                raise UsageError(f"{path}:{number}: expected path,label")
            rows.append((row[0].strip(), row[1].strip(), number))
    for file, label, number in rows:
        image = Path(file) if Path(file).is_absolute() else base / file
        if not label:
            raise UsageError(f"{path}:{number}: empty label")
        by_class.setdefault(label, []).append(image)
    return by_class


def load_labelled_set(
    data: str, val_split: float, seed: int, labels_file: str | None = None
) -> LabelledSet:
    """The classes and samples of DATA (see :class:`TrainConfig`)."""
    root = Path(data)
    if not root.exists():
        raise UsageError(f"training data not found: {root}")
    if root.is_file():
        if root.suffix.lower() not in (".csv", ".jsonl", ".txt"):
            raise UsageError(f"{root}: DATA is a folder of class folders or a .csv/.jsonl list")
        by_class = _read_list(root)
        train, val = stratified_split(by_class, val_split, seed)
        layout = "list"
    elif (root / "train").is_dir() and (root / "val").is_dir():
        train, val = class_folders(root / "train"), class_folders(root / "val")
        unknown = sorted(set(val) - set(train))
        if unknown:
            raise UsageError(
                f"{root / 'val'} has classes the training set lacks: {', '.join(unknown)}"
            )
        layout = "folders"
    else:
        train, val = stratified_split(class_folders(root), val_split, seed)
        layout = "split"
    names = {n for n, images in train.items() if images}
    if len(names) < 2:
        raise UsageError(
            f"{root}: found {len(names)} class(es) ({', '.join(sorted(names)) or 'none'}); "
            "training a classifier needs at least two class folders"
        )
    classes = _ordered(names, labels_file)
    labelled = LabelledSet(classes, _samples(train, classes), _samples(val, classes), layout)
    if not labelled.val:
        raise UsageError(f"{root}: no validation images (use --val-split > 0 or a val/ folder)")
    return labelled


def eval_samples(data: str, classes: list[str] | None = None) -> tuple[list[str], list[Sample]]:
    """A labelled folder (or its val/ part, or a list file) for ``cvtasks eval``."""
    root = Path(data)
    if root.is_file():
        by_class = _read_list(root)
    elif (root / "val").is_dir() and (root / "train").is_dir():
        by_class = class_folders(root / "val")
    elif root.is_dir():
        by_class = class_folders(root)
    else:
        raise UsageError(f"evaluation data not found: {root}")
    names = sorted(by_class) if classes is None else classes
    unknown = sorted(set(by_class) - set(names))
    if unknown:
        raise UsageError(
            f"{root} has classes the model does not know: {listed(unknown)} "
            f"(model classes: {listed(names)})"
        )
    return names, _samples(by_class, names)
