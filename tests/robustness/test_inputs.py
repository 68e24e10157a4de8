"""Hostile and odd inputs: each fails alone with a one-line reason, the rest are written."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from broken_media import STORED, patch_avi, png_header_only, write_avi
from helpers import jsonl
from PIL import Image

FRCNN = "fasterrcnn_mobilenet_v3_large_320_fpn"
LRASPP = "lraspp_mobilenet_v3_large"
EXPECTED = {
    "zero.jpg": "empty file (0 bytes)",
    "page.jpg": "not a recognised image",
    "truncated.jpg": "image file is truncated",
    "crc.png": "corrupt image",
}


def task_args(task: str, r18_file: Path, small_models: dict[str, Path]) -> list[str]:
    if task == "classify":
        return ["classify", "-m", "resnet18", "-w", str(r18_file)]
    if task == "detect":
        return ["detect", "-m", FRCNN, "-w", str(small_models[FRCNN])]
    return ["segment", "-m", LRASPP, "-w", str(small_models[LRASPP])]


@pytest.mark.parametrize("task", ["classify", "detect", "segment"])
def test_broken_files_fail_alone(cli, broken_folder, r18_file, small_models, tmp_path, task):
    out = tmp_path / "out"
    result = cli(
        [
            *task_args(task, r18_file, small_models),
            str(broken_folder),
            "-o",
            out,
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 1
    assert [Path(r["source"]).name for r in jsonl(result.stdout)] == ["good.jpg"]
    errors = {Path(e["source"]).name: e["error"] for e in jsonl((out / "errors.jsonl").read_text())}
    assert set(errors) == set(EXPECTED)
    for name, reason in EXPECTED.items():
        assert reason in errors[name]
        lines = [line for line in result.stderr.splitlines() if name in line]
        assert len(lines) == 1 and lines[0].startswith("error: ")  # one line per failed input


def test_pixel_bomb_is_rejected_from_its_header(cli, r18_file, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header_only(100_000, 100_000))
    start = time.perf_counter()
    result = cli(["classify", bomb, "-m", "resnet18", "-w", r18_file, "-q"])
    assert result.exit_code == 1
    assert "100000x100000 = 10000000000 pixels exceeds max_image_pixels=178956970" in result.stderr
    assert time.perf_counter() - start < 20


def test_pixel_limit_is_a_config_key(cli, photos, r18_file, tmp_path):
    base = ["classify", photos["coffee"], "-m", "resnet18", "-w", r18_file, "-q", "-f", "jsonl"]
    assert cli([*base, "--max-image-pixels", "200000"]).exit_code == 1  # 600x400 = 240000
    config = tmp_path / "c.yaml"
    config.write_text("max_image_pixels: 240000\n")
    assert cli([*base, "-c", config]).exit_code == 0


def test_exif_orientations_give_the_upright_results(cli, photos, r18_file, tmp_path):
    upright = np.asarray(Image.open(photos["coffee"]).convert("RGB"))
    Image.fromarray(upright).save(tmp_path / "o1.png")
    for orientation, store in STORED.items():
        if orientation == 1:
            continue
        exif = Image.Exif()
        exif[0x0112] = orientation
        Image.fromarray(np.ascontiguousarray(store(upright))).save(
            tmp_path / f"o{orientation}.png", exif=exif
        )
    records = jsonl(
        cli(["classify", tmp_path, "-m", "resnet18", "-w", r18_file, "-f", "jsonl", "-q"]).stdout
    )
    assert len(records) == 8
    reference = records[0]
    for record in records[1:]:
        assert (record["width"], record["height"]) == (600, 400)
        assert record["predictions"] == reference["predictions"]


def test_modes_are_deterministic_rgb(cli, r18_file, tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("L").save(tmp_path / "gray.png")
    Image.fromarray(rgb).convert("LA").save(tmp_path / "la.png")
    Image.fromarray(rgb).convert("P").save(tmp_path / "p.png", transparency=0)
    Image.fromarray(rgb).convert("RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(tmp_path / "g16.tif")
    args = ["classify", tmp_path, "-m", "resnet18", "-w", r18_file, "-f", "jsonl", "-q"]
    first, second = jsonl(cli(args).stdout), jsonl(cli(args).stdout)
    assert len(first) == 7 and first == second
    by_name = {Path(r["source"]).name: r["predictions"] for r in first}
    assert by_name["g16.png"] == by_name["g16.tif"]  # 16-bit scaled the same way in both formats


def test_unsupported_format_is_named(cli, r18_file, tmp_path):
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64)
    result = cli(["classify", heic, "-m", "resnet18", "-w", r18_file, "-q"])
    assert result.exit_code == 1
    assert "unsupported format: HEIC needs the pillow-heif plugin" in result.stderr


def test_video_with_wrong_header_count_and_zero_fps(cli, r18_file, tmp_path):
    inflated = tmp_path / "inflated.avi"
    write_avi(inflated, 12)
    patch_avi(inflated, length=1000)
    no_rate = tmp_path / "norate.avi"
    write_avi(no_rate, 12)
    patch_avi(no_rate, rate=0)
    out = tmp_path / "out"
    result = cli(
        [
            "classify",
            inflated,
            no_rate,
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            out,
            "--save-images",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    frames = [(Path(r["source"]).name, r["frame"]) for r in jsonl(result.stdout)]
    assert frames == [("inflated.avi", i) for i in range(12)] + [
        ("norate.avi", i) for i in range(12)
    ]
    assert "inflated.avi: decoding stopped at frame 12 but the header says 1000" in result.stderr
    import cv2

    capture = cv2.VideoCapture(str(out / "norate.mp4"))
    assert 0 < capture.get(cv2.CAP_PROP_FPS) <= 1000


def test_truncated_video_is_reported_not_silent(cli, r18_file, tmp_path):
    clip = tmp_path / "cut.avi"
    write_avi(clip, 40)
    data = clip.read_bytes()
    clip.write_bytes(data[: len(data) // 2])
    result = cli(["classify", clip, "-m", "resnet18", "-w", r18_file, "-f", "jsonl", "-q"])
    frames = len(jsonl(result.stdout))
    assert 0 < frames < 40
    assert f"decoding stopped at frame {frames} but the header says 40" in result.stderr


def test_non_utf8_names_are_processed_and_mirrored(cli, r18_file, photos, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    name = os.fsdecode(b"caf\xe9.png")
    Image.open(photos["coffee"]).save(folder / name)
    out = tmp_path / "out"
    result = cli(
        [
            "classify",
            folder,
            "-m",
            "resnet18",
            "-w",
            r18_file,
            "-o",
            out,
            "--save-images",
            "-f",
            "jsonl",
            "-q",
        ]
    )
    assert result.exit_code == 0, result.stderr
    (record,) = jsonl(result.stdout)
    assert record["source"] == str(
        folder / name
    )  # JSON escapes the undecodable byte, it round-trips
    assert (out / "in" / name).is_file() or any(p.name == name for p in out.rglob("*"))


def test_fifo_named_like_an_image_does_not_hang(cli, r18_file, photos, tmp_path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    done = threading.Event()
    result_box = {}

    def run():
        result_box["r"] = cli(
            [
                "classify",
                fifo,
                photos["coffee"],
                "-m",
                "resnet18",
                "-w",
                r18_file,
                "-q",
                "-f",
                "jsonl",
            ]
        )
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert done.wait(60), "the run hung on a FIFO"
    result = result_box["r"]
    assert result.exit_code == 1 and "not a regular file" in result.stderr
    assert len(jsonl(result.stdout)) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_an_item_error(cli, r18_file, photos, tmp_path):
    locked = tmp_path / "locked.jpg"
    locked.write_bytes(photos["coffee"].read_bytes())
    locked.chmod(0)
    result = cli(["classify", locked, photos["coffee"], "-m", "resnet18", "-w", r18_file, "-q"])
    assert result.exit_code == 1 and "Permission denied" in result.stderr


@pytest.mark.parametrize("workers", [0, 1])
def test_a_corrupt_jpeg_is_said_once_or_failed_with_on_corrupt(
    cli, r18_file, photos, tmp_path, workers
):
    from broken_media import flip_bits

    folder = tmp_path / "in"
    folder.mkdir()
    Image.open(photos["coffee"]).save(folder / "good.jpg", quality=92)
    (folder / "flipped.jpg").write_bytes(flip_bits(photos["astronaut"].read_bytes(), 20))
    args = ["classify", "-m", "resnet18", "-w", r18_file, folder, "-f", "jsonl", "-q"]
    args += ["--workers", workers]
    warned = cli(args)
    assert warned.exit_code == 0, warned.stderr
    assert sorted(Path(r["source"]).name for r in jsonl(warned.stdout)) == [
        "flipped.jpg",
        "good.jpg",
    ]
    lines = [line for line in warned.stderr.splitlines() if "flipped.jpg" in line]
    assert len(lines) == 1, warned.stderr
    assert lines[0].startswith("warning: ") and "Corrupt JPEG data" in lines[0]
    assert "--on-corrupt fail" in lines[0]

    failed = cli([*args, "--on-corrupt", "fail", "-o", tmp_path / "out"])
    assert failed.exit_code == 1
    assert [Path(r["source"]).name for r in jsonl(failed.stdout)] == ["good.jpg"]
    errors = jsonl((tmp_path / "out" / "errors.jsonl").read_text())
    assert [Path(e["source"]).name for e in errors] == ["flipped.jpg"]
    assert errors[0]["error"].startswith("corrupt JPEG: Corrupt JPEG data")

    quiet = cli([*args, "--on-corrupt", "ignore"])
    assert quiet.exit_code == 0 and "flipped.jpg" not in quiet.stderr
