"""--resume goes by path, size and modification time, so a Makefile recipe settles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cvtasks.io.sinks import INPUTS_FILE


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def replace_photo(path: Path, source: Path) -> None:
    """Overwrite ``path`` with another picture and move its mtime clearly forward."""
    Image.open(source).save(path, quality=90)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_changed_input_is_processed_again(cli, tmp_path, photos, r18_file):
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos["astronaut"], folder / "a.jpg")
    shutil.copy(photos["coffee"], folder / "b.jpg")
    out = tmp_path / "out"
    args = ["classify", folder, "-m", "resnet18", "-w", r18_file, "-o", out]
    assert cli([*args, "-q"]).exit_code == 0
    stamps = [json.loads(line) for line in (out / INPUTS_FILE).read_text().splitlines()]
    assert [s["source"] for s in stamps] == [f"{folder}/a.jpg", f"{folder}/b.jpg"]
    replace_photo(folder / "b.jpg", photos["chelsea"])
    again = cli([*args, "--resume"])
    assert again.exit_code == 0
    assert "1 input(s) changed since their results were written" in again.stderr
    assert "1 done, 0 failed, 1 skipped (resume)" in again.stderr
    by_source = {r["source"]: r for r in records(out)}
    assert len(records(out)) == 2 and (by_source[f"{folder}/b.jpg"]["width"]) == 451
    settled = cli([*args, "--resume"])
    assert "0 done, 0 failed, 2 skipped (resume)" in settled.stderr
    assert len(records(out)) == 2


def test_a_torn_manifest_line_is_dropped(cli, tmp_path, photos, r18_file):
    out = tmp_path / "out"
    args = ["classify", photos["coffee"], "-m", "resnet18", "-w", r18_file, "-o", out, "-q"]
    assert cli(args).exit_code == 0
    with (out / INPUTS_FILE).open("a") as handle:
        handle.write('{"source": "half')
    assert cli([*args, "--resume"]).exit_code == 0
    lines = (out / INPUTS_FILE).read_text().splitlines()
    assert all(json.loads(line)["source"] for line in lines)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_makefile_recipe_settles_after_a_photo_changes(tmp_path, photos, r18_file):
    """The README's recipe: up to date after a run, reprocesses a changed photo, settles."""
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(photos["astronaut"], folder / "a.jpg")
    shutil.copy(photos["coffee"], folder / "b.jpg")
    (tmp_path / "Makefile").write_text(
        "out/labels/results.jsonl: $(wildcard photos/*.jpg)\n"
        f"\t$(CVTASKS) classify photos/ -o out/labels --resume -q -f jsonl"
        f" -m resnet18 -w {r18_file} > /dev/null\n"
    )
    cvtasks = f"CVTASKS={sys.executable} -m cvtasks"

    def make() -> str:
        done = subprocess.run(
            ["make", cvtasks], cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    make()
    assert "is up to date" in make()
    replace_photo(folder / "b.jpg", photos["chelsea"])
    assert "cvtasks classify" in make()  # the changed photo triggers the recipe
    assert "is up to date" in make()  # ... which settles: it was really processed again
    widths = {r["source"]: r["width"] for r in records(tmp_path / "out" / "labels")}
    assert widths == {"photos/a.jpg": 512, "photos/b.jpg": 451}


def test_stages_resume_by_source_and_never_write_twice(cli, tmp_path, photos, r18_file):
    """Commands with a stage after the model: --aggregate skips the images and videos it
    finished and reruns a video cut off before its verdict (its frame records replaced);
    eval classify, whose metrics need every image, runs them all again and keeps one record
    each."""
    from helpers import noise_video

    clips = [noise_video(tmp_path / f"clip{i}.mp4", 5) for i in range(2)]
    still = photos["coffee"]
    out = tmp_path / "agg"
    model = ["classify", "-m", "resnet18", "-w", r18_file, "--aggregate", "mean", "-q", "-f",
             "jsonl"]  # fmt: skip
    base = [*model, "-o", out]
    whole = cli([*model, still, *clips])  # no --out: the reference
    first = cli([*base, still, clips[0]])
    assert first.exit_code == 0, first.stderr
    kept = records(out)
    cut = [r for r in kept if r["source"] == str(clips[0]) and r["frame"] in (0, 1)]
    (out / "results.jsonl").write_text(  # clip1 stopped after two frames, before its verdict
        "".join(json.dumps(r) + "\n" for r in kept + [{**c, "source": str(clips[1])} for c in cut])
    )
    resumed = cli([*base, still, *clips, "--resume"])
    assert resumed.exit_code == 0, resumed.stderr
    assert {r["source"] for r in json_lines(resumed.stdout)} == {str(clips[1])}  # only clip1 ran
    assert "2 input(s) finished, 1 to go (1 of them started" in resumed.stderr
    final = records(out)

    def keys(rs: list[dict]) -> list[tuple]:
        return sorted((r["source"], -1 if r["frame"] is None else r["frame"], "aggregate" in r)
                      for r in rs)  # fmt: skip

    assert keys(final) == keys(json_lines(whole.stdout))  # each frame and verdict once

    data = tmp_path / "data"
    for label, name in (("coffee mug", "coffee"), ("tabby", "chelsea")):
        (data / label).mkdir(parents=True)
        shutil.copy(photos[name], data / label / f"{name}.jpg")
    common = ["eval", "classify", data, "-m", "resnet18", "-w", r18_file, "-o", tmp_path / "ev",
              "-q", "-f", "json"]  # fmt: skip
    once = cli(common)
    assert once.exit_code == 0, once.stderr
    again = cli([*common, "--resume"])
    assert again.exit_code == 0 and json.loads(again.stdout)["n"] == json.loads(once.stdout)["n"]
    assert len(records(tmp_path / "ev")) == 2


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]
