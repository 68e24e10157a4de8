"""Decoding: EXIF orientation, every mode to RGB, size guard, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from broken_media import STORED, png_header_only
from PIL import Image

from cvtasks.errors import ItemError
from cvtasks.io.decode import decode_image

LIMIT = 10_000_000


def upright() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_gives_upright_pixels(tmp_path, orientation):
    original = upright()
    stored = np.ascontiguousarray(STORED[orientation](original))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(stored).save(path, exif=exif)
    decoded = np.asarray(decode_image(path, LIMIT))
    assert decoded.shape == original.shape
    assert np.array_equal(decoded, original)


def test_exif_rotated_jpeg_dimensions(tmp_path):
    original = upright()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewer turns it 90 degrees clockwise
    path = tmp_path / "r.jpg"
    Image.fromarray(np.ascontiguousarray(np.rot90(original, 1))).save(path, exif=exif, quality=100)
    assert decode_image(path, LIMIT).size == (50, 30)


def save(tmp_path: Path, image: Image.Image, name: str, **kw) -> Path:
    path = tmp_path / name
    image.save(path, **kw)
    return path


def test_modes_become_rgb(tmp_path):
    gray = Image.fromarray(np.full((4, 4), 77, np.uint8))
    assert decode_image(save(tmp_path, gray, "l.png"), LIMIT).getpixel((0, 0)) == (77, 77, 77)

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 0  # fully transparent red -> white background
    rgba[0, 0, 3] = 255  # one opaque red pixel
    img = decode_image(save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png"), LIMIT)
    assert img.mode == "RGB"
    assert img.getpixel((0, 0)) == (200, 0, 0) and img.getpixel((1, 1)) == (255, 255, 255)

    la = Image.fromarray(
        np.stack([np.full((4, 4), 10, np.uint8), np.full((4, 4), 128, np.uint8)], -1), "LA"
    )
    value = decode_image(save(tmp_path, la, "la.png"), LIMIT).getpixel((0, 0))
    assert value == (132, 132, 132)  # 10*128/255 + 255*127/255 = 132.0

    pal = Image.new("P", (4, 4), 1)
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    assert decode_image(save(tmp_path, pal, "p.png"), LIMIT).getpixel((0, 0)) == (10, 20, 30)
    assert decode_image(save(tmp_path, pal, "pt.png", transparency=1), LIMIT).getpixel((0, 0)) == (
        255,
        255,
        255,
    )

    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))
    assert decode_image(save(tmp_path, cmyk, "c.jpg", quality=100), LIMIT).getpixel((0, 0))[0] > 240


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_sixteen_bit_is_scaled_not_clipped(tmp_path, suffix):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    path = tmp_path / f"g16{suffix}"
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    out = np.asarray(decode_image(path, LIMIT))[0, :, 0]
    assert out.tolist() == [0, 1, 128, 255]


def test_pixel_bomb_rejected_from_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ItemError, match="too large"):
        decode_image(path, 178_956_970)


def test_limit_is_configurable(tmp_path):
    path = save(tmp_path, Image.new("RGB", (100, 100)), "x.png")
    with pytest.raises(ItemError, match="exceeds max_image_pixels=9999"):
        decode_image(path, 9_999)
    assert decode_image(path, 10_000).size == (100, 100)


def test_broken_files(tmp_path, photos):
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("<html>not an image</html>")
    (tmp_path / "trunc.jpg").write_bytes(photos["chelsea"].read_bytes()[:5000])
    png = bytearray(save(tmp_path, Image.new("RGB", (8, 8), (1, 2, 3)), "ok.png").read_bytes())
    png[-20] ^= 0xFF  # corrupt the IDAT payload/CRC
    (tmp_path / "crc.png").write_bytes(bytes(png))
    (tmp_path / "photo.heic").write_bytes(b"\x00\x00\x00\x18ftypheic" + b"\x00" * 32)
    expected = {
        "zero.jpg": "empty file",
        "text.jpg": "not a recognised image",
        "trunc.jpg": "truncated",
        "crc.png": "corrupt image",
        "photo.heic": "pillow-heif",
    }
    for name, needle in expected.items():
        with pytest.raises(ItemError, match=needle):
            decode_image(tmp_path / name, LIMIT)


def test_jpeg_draft_decodes_large_photos_smaller(tmp_path, photos):
    from cvtasks.io.decode import draft_scale

    big = Image.open(photos["astronaut"]).resize((2048, 1536))
    big.save(tmp_path / "big.jpg", quality=90)
    full = decode_image(tmp_path / "big.jpg", LIMIT)
    assert full.size == (2048, 1536) and full.info["original_size"] == (2048, 1536)
    small = decode_image(tmp_path / "big.jpg", LIMIT, min_side=256)
    assert small.size == (512, 384) and small.info["original_size"] == (2048, 1536)
    assert draft_scale(2048, 1536, 256) == 4 and draft_scale(4000, 3000, 256) == 8
    assert draft_scale(1000, 600, 256) == 2 and draft_scale(600, 400, 256) == 1
    assert draft_scale(511, 1000, 256) == 1 and draft_scale(512, 1000, 256) == 2
    exif = Image.Exif()
    exif[0x0112] = 6
    big.save(tmp_path / "turned.jpg", exif=exif, quality=90)
    turned = decode_image(tmp_path / "turned.jpg", LIMIT, min_side=256)
    assert turned.size == (384, 512) and turned.info["original_size"] == (1536, 2048)
    big.save(tmp_path / "big.png")
    assert decode_image(tmp_path / "big.png", LIMIT, min_side=256).size == (
        2048,
        1536,
    )  # PNG: no draft


def test_draft_keeps_records_in_original_pixels(cli, photos, r18_file, tmp_path):
    Image.open(photos["astronaut"]).resize((2048, 2048)).save(tmp_path / "big.jpg", quality=92)
    base = [
        "classify",
        tmp_path / "big.jpg",
        "-m",
        "resnet18",
        "-w",
        r18_file,
        "-q",
        "-f",
        "jsonl",
        "--top-k",
        "3",
    ]
    drafted = json.loads(cli(base).stdout)
    exact = json.loads(cli([*base, "--no-jpeg-draft"]).stdout)
    assert (
        (drafted["width"], drafted["height"]) == (exact["width"], exact["height"]) == (2048, 2048)
    )
    assert drafted["predictions"][0]["index"] == exact["predictions"][0]["index"]
    assert drafted["predictions"][0]["score"] == pytest.approx(
        exact["predictions"][0]["score"], abs=0.02
    )


@pytest.mark.parametrize(
    ("size", "scale"),
    [((1000, 665), 2), ((2000, 1330), 4), ((4000, 3000), 8), ((665, 1000), 2), ((511, 400), 1)],
)
def test_draft_decoding_uses_the_scale_it_computes(tmp_path, size, scale):
    """The request meets Pillow's rounded-down ratio: 1000x665 decodes at 1/2 (it used not to
    scale at all) and 2000x1330 at 1/4 (it used 1/2); never below the model's side."""
    from cvtasks.io.decode import decode_image, draft_scale

    path = tmp_path / "photo.jpg"
    Image.new("RGB", size, (120, 80, 40)).save(path, quality=90)
    assert draft_scale(*size, 256) == scale
    decoded = decode_image(path, 10**9, 256)
    assert decoded.size == (-(-size[0] // scale), -(-size[1] // scale))
    assert min(decoded.size) >= 256
    assert decoded.info["original_size"] == size


def corrupt_copy(photo: Path, folder: Path, flips: int = 20) -> Path:
    from broken_media import flip_bits

    path = folder / f"flipped_{photo.name}"
    path.write_bytes(flip_bits(photo.read_bytes(), flips))
    return path


def test_a_corrupt_jpeg_is_told_or_failed_by_option(tmp_path, photos):
    """Pillow decodes damaged JPEG data to garbage without a word; libjpeg's own message is
    kept (warn), raised (fail) or not looked for (ignore)."""
    flipped = corrupt_copy(photos["astronaut"], tmp_path)
    warned = decode_image(flipped, LIMIT, on_corrupt="warn")
    assert "Corrupt JPEG data" in warned.info["corrupt"]
    assert "--on-corrupt fail" in warned.info["corrupt"]
    with pytest.raises(ItemError, match="corrupt JPEG: Corrupt JPEG data"):
        decode_image(flipped, LIMIT, on_corrupt="fail")
    ignored = decode_image(flipped, LIMIT, on_corrupt="ignore")
    assert "corrupt" not in ignored.info
    assert np.array_equal(np.asarray(ignored), np.asarray(warned))  # the same pixels either way


def test_clean_jpegs_of_every_kind_are_not_called_corrupt(tmp_path, photos):
    rgb = Image.open(photos["coffee"])
    variants = {
        "progressive.jpg": (rgb, {"progressive": True}),
        "gray.jpg": (rgb.convert("L"), {}),
        "cmyk.jpg": (rgb.convert("CMYK"), {}),
        "subsampled.jpg": (rgb, {"subsampling": 2, "quality": 60}),
        "restart.jpg": (rgb, {"restart_marker_blocks": 4}),
    }
    paths = list(photos.values())
    for name, (image, options) in variants.items():
        image.save(tmp_path / name, **options)
        paths.append(tmp_path / name)
    for path in paths:
        assert "corrupt" not in decode_image(path, LIMIT, on_corrupt="warn").info, path.name


def test_corruption_verdicts_equal_libjpeg_through_torchvision(tmp_path, photos, capfd):
    """The peer: torchvision's decode_jpeg (libjpeg-turbo) prints libjpeg's 'Corrupt JPEG
    data' warning on stderr. Over damaged copies with 1 to 40 flipped bits, a file is called
    corrupt exactly when libjpeg says so."""
    import warnings

    from broken_media import flip_bits
    from torchvision.io import decode_jpeg

    from cvtasks.io.decode import jpeg_corruption

    verdicts = []
    for seed in range(24):
        photo = list(photos.values())[seed % 3]
        data = flip_bits(photo.read_bytes(), 1 + seed * 40 // 24, seed=seed)
        capfd.readouterr()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchvision's deprecation notice
            try:
                decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
            except RuntimeError:
                continue  # libjpeg gave up: Pillow fails these too (not this check's case)
        libjpeg_says = "Corrupt JPEG data" in capfd.readouterr().err
        ours = jpeg_corruption(data)
        assert (ours is not None) == libjpeg_says, (seed, ours)
        verdicts.append(libjpeg_says)
    assert any(verdicts) and not all(verdicts)  # both kinds were met
