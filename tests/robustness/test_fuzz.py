"""Fuzzing: mutated real images (bit flips, truncations, header edits) through decoding and a
task never crash, hang or raise anything but an item error. `make test` runs a bounded number
of examples; `make fuzz` runs thousands (CVTASKS_FUZZ_EXAMPLES)."""

from __future__ import annotations

import io
import os
import random
import signal
import tempfile
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cvtasks.errors import ItemError
from cvtasks.io.decode import decode_image

EXAMPLES = int(os.environ.get("CVTASKS_FUZZ_EXAMPLES", "250"))
LIMIT = 4_000_000


def _seeds() -> list[bytes]:
    photo = Image.fromarray(skimage.data.chelsea()).resize((90, 60))
    variants = [
        (photo, "JPEG", {}),
        (photo, "PNG", {}),
        (photo.convert("P"), "PNG", {"transparency": 3}),
        (photo.convert("LA"), "PNG", {}),
        (Image.fromarray(np.asarray(photo.convert("L")).astype(np.uint16) * 257), "PNG", {}),
        (photo, "GIF", {}),
        (photo, "TIFF", {}),
        (photo, "WEBP", {}),
        (photo, "BMP", {}),
        (photo.convert("CMYK"), "JPEG", {}),
    ]
    seeds = []
    for image, fmt, options in variants:
        buffer = io.BytesIO()
        image.save(buffer, format=fmt, **options)
        seeds.append(buffer.getvalue())
    return seeds


SEEDS = _seeds()
WORKDIR = Path(tempfile.mkdtemp(prefix="cvtasks-fuzz-"))


def mutate(
    seed: bytes, flips: list[tuple[int, int]], cut: int | None, header: list[tuple[int, int]]
) -> bytes:
    data = bytearray(seed)
    for position, value in flips:
        data[position % len(data)] ^= value
    for position, value in header:
        data[position % min(64, len(data))] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    return bytes(data)


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang()


@settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(
    seed=st.sampled_from(range(len(SEEDS))),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(1, 255)), max_size=12),
    cut=st.one_of(st.none(), st.integers(0, 1 << 20)),
    header=st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255)), max_size=6),
)
def test_decode_never_crashes_or_hangs(seed, flips, cut, header):
    path = WORKDIR / "case.img"
    path.write_bytes(mutate(SEEDS[seed], flips, cut, header))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(10)
    try:
        image = decode_image(path, LIMIT)
    except ItemError as exc:
        assert str(exc) and "\n" not in str(exc)  # a one-line reason
        return
    except _Hang:
        pytest.fail("decoding hung for 10 s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert image.mode == "RGB" and image.width > 0 and image.height > 0
    assert image.width * image.height <= LIMIT


def test_a_folder_of_mutants_through_classify(tmp_path, r18_file):
    from cvtasks.api import predict
    from cvtasks.types import Failure

    rng = random.Random(0)
    folder = tmp_path / "mutants"
    folder.mkdir()
    suffixes = [".jpg", ".png", ".png", ".png", ".png", ".gif", ".tif", ".webp", ".bmp", ".jpg"]
    for i in range(60):
        index = rng.randrange(len(SEEDS))
        flips = [
            (rng.randrange(1 << 20), rng.randrange(1, 256)) for _ in range(rng.randrange(0, 6))
        ]
        cut = rng.choice([None, rng.randrange(1 << 20)])
        (folder / f"m{i:03d}{suffixes[index]}").write_bytes(mutate(SEEDS[index], flips, cut, []))
    outcomes = list(
        predict(
            "classify",
            folder,
            model="resnet18",
            weights=str(r18_file),
            batch_size=4,
            max_image_pixels=LIMIT,
        )
    )
    assert len(outcomes) == 60
    failures = [o for _, o in outcomes if isinstance(o, Failure)]
    results = [o for _, o in outcomes if not isinstance(o, Failure)]
    assert failures and results  # both kinds happen; none raised
    assert all(len(r.to_record()["predictions"]) == 5 for r in results)
