"""`--decode-on device`: JPEG bytes decoded and preprocessed as tensors on the model's device.
Without a GPU here, the same code runs on CPU tensors; it must agree with the Pillow path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import jsonl
from PIL import Image

import cvtasks.io.device_decode as device_decode
from cvtasks.io.decode import decode_image, read_jpeg


@pytest.fixture(params=["torchcodec", "torchvision"])
def backend(request, monkeypatch):
    decoder = getattr(device_decode, f"_{request.param}")
    if request.param == "torchcodec":
        pytest.importorskip("torchcodec.decoders")
    monkeypatch.setattr(device_decode, "_decoder", decoder)
    return decoder


def test_every_exif_orientation_matches_pillow(photos, tmp_path, backend):
    stored = Image.open(photos["chelsea"])  # 451 x 300: a turn changes the shape
    files = []
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}.jpg"
        stored.save(path, exif=exif, quality=95)
        files.append(path)
    jpegs = [read_jpeg(p, 10**9) for p in files]
    decoded = device_decode.decode_jpegs(jpegs, torch.device("cpu"))  # one batch
    for path, jpeg, tensor in zip(files, jpegs, decoded, strict=True):
        pillow = np.asarray(decode_image(path, 10**9))
        assert tensor is not None and (jpeg.height, jpeg.width) == pillow.shape[:2]
        assert np.array_equal(tensor.permute(1, 2, 0).numpy(), pillow), path.name


def test_a_bad_file_in_a_batch_fails_alone(photos, tmp_path, backend):
    good = read_jpeg(photos["coffee"], 10**9)
    data = photos["coffee"].read_bytes()
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(data[:600] + bytes(4000))  # a valid header, then nothing decodable
    bad = read_jpeg(broken, 10**9)
    assert good is not None and bad is not None
    out = device_decode.decode_jpegs([good, bad, good], torch.device("cpu"))
    assert out[0] is not None and out[2] is not None and torch.equal(out[0], out[2])
    assert out[1] is None or out[1].shape == out[0].shape  # libjpeg may pad a broken scan


def test_other_formats_are_left_to_pillow(photos, tmp_path):
    Image.open(photos["coffee"]).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.open(photos["coffee"]).save(tmp_path / "coffee.png")
    assert read_jpeg(tmp_path / "cmyk.jpg", 10**9) is None
    assert read_jpeg(tmp_path / "coffee.png", 10**9) is None
    with pytest.raises(Exception, match="image too large"):
        read_jpeg(photos["coffee"], 1000)  # the pixel guard, before any byte is decoded


@pytest.fixture(scope="module")
def photo_set(photos, tmp_path_factory):
    """40 JPEGs: crops, scales (0.3-4 MP), turns stored with EXIF, greyscale."""
    folder = tmp_path_factory.mktemp("photo_set")
    rng = np.random.default_rng(0)
    for i in range(40):
        image = Image.open(list(photos.values())[i % 3]).convert("RGB")
        w, h = image.size
        x0, y0 = int(rng.integers(0, w // 4)), int(rng.integers(0, h // 4))
        image = image.crop((x0, y0, x0 + w * 3 // 4, y0 + h * 3 // 4))
        side = int(rng.integers(640, 2400))
        scale = side / max(image.size)
        image = image.resize((round(image.width * scale), round(image.height * scale)))
        exif = Image.Exif()
        if i % 5 == 1:
            exif[0x0112] = 6
            image = image.transpose(Image.Transpose.ROTATE_90)
        if i % 7 == 3:
            image = image.convert("L")
        image.save(folder / f"p{i:02d}.jpg", quality=int(rng.integers(70, 96)), exif=exif)
    return folder


def test_classify_agrees_with_the_pillow_path(cli, r18_file, photo_set, tmp_path):
    """Top-1 agreement >= 99.5 % and scores within 1e-2 (documented in docs/performance.md)."""
    base = ["classify", photo_set, "-m", "resnet18", "-w", r18_file, "-f", "jsonl", "-q"]
    device = cli([*base, "--decode-on", "device", "-o", tmp_path / "d", "--save-images"])
    exact = cli([*base, "--decode-on", "cpu", "--no-jpeg-draft"])
    default = cli([*base, "--decode-on", "cpu"])
    assert device.exit_code == exact.exit_code == default.exit_code == 0, device.stderr
    ours = jsonl(device.stdout)
    assert len(ours) == 40
    for theirs in (jsonl(exact.stdout), jsonl(default.stdout)):
        top1 = [
            a["predictions"][0]["index"] == b["predictions"][0]["index"]
            for a, b in zip(ours, theirs, strict=True)
        ]
        assert sum(top1) / len(top1) >= 0.995
        for a, b in zip(ours, theirs, strict=True):
            assert (a["width"], a["height"]) == (b["width"], b["height"])
            assert a["predictions"][0]["score"] == pytest.approx(
                b["predictions"][0]["score"], abs=1e-2
            )
    turned = next(r for r in ours if r["source"].endswith("p01.jpg"))
    annotated = tmp_path / "d" / turned["files"]["annotated"]
    assert Image.open(annotated).size == (turned["width"], turned["height"])


def test_corrupt_and_other_files_on_the_device_path(cli, r18_file, photos, tmp_path):
    data = photos["coffee"].read_bytes()
    (tmp_path / "broken.jpg").write_bytes(data[:600] + b"\xff\xd9")
    Image.open(photos["coffee"]).save(tmp_path / "coffee.png")
    Image.open(photos["coffee"]).convert("CMYK").save(tmp_path / "cmyk.jpg")
    (tmp_path / "coffee.jpg").write_bytes(data)
    base = ["classify", tmp_path, "-m", "resnet18", "-w", r18_file, "-f", "jsonl", "-q", "-b", "4"]
    device = cli([*base, "--decode-on", "device", "--workers", "1"])
    pillow = cli([*base, "--decode-on", "cpu", "--no-jpeg-draft"])
    assert device.exit_code == pillow.exit_code
    assert [r["source"] for r in jsonl(device.stdout)] == [
        r["source"] for r in jsonl(pillow.stdout)
    ]
    assert device.stderr.count("error:") == pillow.stderr.count("error:")
    for a, b in zip(jsonl(device.stdout), jsonl(pillow.stdout), strict=True):
        assert a["predictions"][0]["index"] == b["predictions"][0]["index"]


def test_tasks_without_tensor_preprocessing_say_so(cli, photos, tmp_path):
    from helpers import tiny_depth_model

    tiny = tiny_depth_model(tmp_path / "tiny")
    result = cli(
        ["depth", photos["coffee"], "-m", tiny, "--decode-on", "device", "-q", "-f", "jsonl"]
    )
    assert result.exit_code == 0 and "preprocesses with Pillow" in result.stderr
