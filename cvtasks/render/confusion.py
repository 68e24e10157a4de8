"""What of a confusion matrix to draw: a figure, a results page or a table of ImageNet's
1000 classes would be unreadable (and a 1000 x 1000 matplotlib figure does not fit in memory)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def shown_confusion(
    matrix: np.ndarray, classes: Sequence[str], limit: int = 30
) -> tuple[np.ndarray, list[str], str]:
    """The part of a confusion matrix worth drawing: the classes that occur (as truth or as a
    prediction) and, past ``limit`` of them, the ``limit`` most frequent with the rest summed
    into "other". Returns the matrix, its labels and a note for the title ("" if all shown)."""
    matrix = np.asarray(matrix)
    totals = matrix.sum(axis=0) + matrix.sum(axis=1)
    occurring = [i for i in range(len(classes)) if totals[i] > 0]
    if not occurring:
        return matrix, list(classes), ""
    kept = sorted(sorted(occurring, key=lambda i: -totals[i])[:limit])
    labels = [classes[i] for i in kept]
    if len(kept) == len(occurring):
        note = (
            ""
            if len(kept) == len(classes)
            else f"the {len(kept)} classes that occur, of {len(classes)}"
        )
        return matrix[np.ix_(kept, kept)], labels, note
    chosen = set(kept)  # more occur than fit: the others summed as "other"
    groups = [[i] for i in kept] + [[i for i in range(len(classes)) if i not in chosen]]
    shown = np.array(
        [[matrix[np.ix_(rows, columns)].sum() for columns in groups] for rows in groups],
        dtype=matrix.dtype,
    )
    labels.append(f"other ({len(occurring) - len(kept)})")
    return shown, labels, f"the {len(kept)} most frequent of {len(occurring)} classes that occur"
