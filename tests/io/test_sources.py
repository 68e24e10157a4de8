"""Input expansion: files, folders, globs, list files, stdin; missing paths are usage errors."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from cvtasks.errors import UsageError
from cvtasks.io.sources import expand_inputs


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def tree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for rel in [
        "imgs/b.jpg",
        "imgs/a.png",
        "imgs/sub/c.JPG",
        "imgs/sub/clip.mp4",
        "imgs/notes.txt",
        "imgs/.hidden/d.jpg",
        "imgs/.e.jpg",
        "other/a.png",
    ]:
        touch(tmp_path / rel)
    return tmp_path


def sources(specs, **kw):
    return [i.source for i in expand_inputs(specs, **kw)]


def test_folder_is_recursive_sorted_and_media_only(tree):
    items = expand_inputs(["imgs"])
    assert [i.source for i in items] == [
        "imgs/a.png",
        "imgs/b.jpg",
        "imgs/sub/c.JPG",
        "imgs/sub/clip.mp4",
    ]
    assert [i.is_video for i in items] == [False, False, False, True]
    assert [i.rel for i in items] == [i.source for i in items]


def test_glob_and_file_and_dedupe(tree):
    assert sources(["imgs/*.jpg", "imgs/b.jpg", "other/a.png"]) == ["imgs/b.jpg", "other/a.png"]
    assert sources(["imgs/**/*.JPG"]) == ["imgs/sub/c.JPG"]


def test_same_name_from_two_folders_gets_unique_output_paths(tree):
    items = expand_inputs([str(tree / "imgs/a.png"), str(tree / "other/a.png")])
    assert [i.rel for i in items] == ["a.png", "a~1.png"]


def test_list_file_and_stdin(tree):
    (tree / "list.txt").write_text("# comment\nimgs/b.jpg\n\nother/a.png\n")
    assert sources(["@list.txt"]) == ["imgs/b.jpg", "other/a.png"]
    assert sources(["-"], stdin=io.StringIO("imgs/a.png\nimgs/sub\n")) == [
        "imgs/a.png",
        "imgs/sub/c.JPG",
        "imgs/sub/clip.mp4",
    ]


@pytest.mark.parametrize("spec", ["missing.jpg", "imgs/*.gif", "@nolist.txt"])
def test_missing_inputs_are_usage_errors(tree, spec):
    with pytest.raises(UsageError):
        expand_inputs([spec])


def test_missing_path_inside_list_file(tree):
    (tree / "list.txt").write_text("imgs/b.jpg\nimgs/gone.jpg\n")
    with pytest.raises(UsageError, match=r"imgs/gone\.jpg"):
        expand_inputs(["@list.txt"])


def test_outside_paths_never_escape_out(tree):
    os.chdir(tree / "imgs")
    items = expand_inputs(["../other/a.png", "../imgs/sub"])
    assert [i.rel for i in items] == ["a.png", "sub/c.JPG", "sub/clip.mp4"]
    assert all(not i.rel.startswith(("/", "..")) for i in items)


def test_output_folder_is_not_an_input(tree):
    touch(tree / "imgs/out/old.jpg")
    assert "imgs/out/old.jpg" not in sources(["imgs"], exclude=Path("imgs/out"))
    assert "imgs/out/old.jpg" in sources(["imgs"])


def test_symlink_loop_does_not_hang(tree):
    (tree / "imgs/sub/loop").symlink_to(tree / "imgs", target_is_directory=True)
    assert sources(["imgs"])[-1] == "imgs/sub/clip.mp4"


def test_cli_missing_input_is_exit_2_before_model_load(cli):
    result = cli(["classify", "no/such/file.jpg", "-m", "resnet18"])
    assert result.exit_code == 2
    assert "input not found: no/such/file.jpg" in result.stderr
    assert "weights" not in result.stderr
