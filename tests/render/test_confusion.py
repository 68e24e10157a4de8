"""Which part of a confusion matrix is drawn."""

from __future__ import annotations

import numpy as np

from cvtasks.render.confusion import shown_confusion


def test_at_most_thirty_classes_the_rest_summed_as_other():
    matrix = np.zeros((50, 50), int)
    for i in range(40):  # 40 classes occur; c7 most often, c3 often mistaken for c4
        matrix[i, i] = 5
    matrix[7, 7] = 30
    matrix[3, 4] = 9
    labels = [f"c{i}" for i in range(50)]
    shown, names, note = shown_confusion(matrix, labels)
    assert shown.shape == (31, 31) and names[-1] == "other (10)" and "c7" in names
    assert shown.sum() == matrix.sum() and "the 30 most frequent of 40 classes" in note
    assert shown[names.index("c3"), names.index("c4")] == 9  # the kept cells as they were
    few, few_names, few_note = shown_confusion(matrix[:5, :5], labels[:5])
    assert few.tolist() == matrix[:5, :5].tolist() and few_names == labels[:5] and few_note == ""
    some = np.diag([1, 0, 2])
    part, part_names, part_note = shown_confusion(some, ["a", "b", "c"])
    assert part_names == ["a", "c"] and part.tolist() == [[1, 0], [0, 2]]
    assert part_note == "the 2 classes that occur, of 3"
