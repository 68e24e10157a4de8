"""Hostile configs and weights files: exit 2 naming the key, exit 3 naming the weights problem."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch
from helpers import seeded_state_dict

FRCNN = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.mark.parametrize(
    ("task", "yaml_text", "needle"),
    [
        ("detect", "conf: 1.5\n", "key 'conf' must be <= 1.0, got 1.5"),
        ("classify", 'batch_size: "eight"\n', "key 'batch_size' must be an integer, got 'eight'"),
        ("segment", "alpha: -0.1\n", "key 'alpha' must be >= 0.0"),
        ("pose", "kpt_conf: [1, 2]\n", "key 'kpt_conf' must be a number"),
        (
            "depth",
            "colormap: rainbow\n",
            "key 'colormap' must be one of turbo, inferno, jet, viridis",
        ),
        ("explain", "top_kk: 2\n", "unknown key 'top_kk' (did you mean 'top_k'?)"),
        ("classify", "top_k: 1\ntop_k: 2\n", "duplicate key 'top_k' at line 2"),
    ],
)
def test_bad_values_are_exit_2_naming_the_key(cli, photos, tmp_path, task, yaml_text, needle):
    config = tmp_path / "c.yaml"
    config.write_text(yaml_text)
    args = [task, "gradcam"] if task == "explain" else [task]
    result = cli([*args, photos["coffee"], "-c", config])
    assert result.exit_code == 2
    assert needle in result.stderr


def test_yaml_code_execution_and_alias_bombs(cli, photos, tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.yaml"
    evil.write_text(f'out: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = cli(["classify", photos["coffee"], "-c", evil])
    assert result.exit_code == 2 and not marker.exists()
    bomb = tmp_path / "bomb.yaml"
    levels = ["a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    for i in range(1, 10):
        previous = chr(ord("a") + i - 1)
        levels.append(
            f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + previous] * 10)}]"
        )
    bomb.write_text("\n".join(levels) + "\n")
    start = time.perf_counter()
    result = cli(["run", bomb])
    assert result.exit_code == 2 and "too large" in result.stderr
    assert time.perf_counter() - start < 10


class Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("force", [False, True], ids=["plain", "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"])
def test_pickle_payload_checkpoint_is_exit_3_and_never_runs(photos, tmp_path, force):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    state = seeded_state_dict("resnet18", tmp_path / "ok.pth")
    state["fc.extra"] = Payload(str(marker))  # type: ignore[assignment]
    torch.save(state, evil)
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1") if force else dict(os.environ)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cvtasks",
            "classify",
            str(photos["coffee"]),
            "-m",
            "resnet18",
            "-w",
            str(evil),
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 3
    assert "refused to load" in result.stderr and "contains Python objects" in result.stderr
    assert not marker.exists()


def test_wrong_architecture_is_exit_3_naming_the_mismatch(cli, photos, tmp_path):
    weights = tmp_path / "resnet34.pth"
    seeded_state_dict("resnet34", weights)
    result = cli(["classify", photos["coffee"], "-m", "resnet18", "-w", weights])
    assert result.exit_code == 3
    assert "unexpected keys, e.g. layer1.2" in result.stderr
    detector = cli(["detect", photos["coffee"], "-m", FRCNN, "-w", weights])
    assert detector.exit_code == 3 and "missing keys" in detector.stderr


def test_tampered_cached_download_is_exit_3_with_the_fix(cli, photos, r18_file):
    from cvtasks.weights import cache_path, resolve_weights

    target = cache_path(resolve_weights("resnet18", "IMAGENET1K_V1").member)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(r18_file.read_bytes())  # loads fine, but is not the file the hash names
    try:
        result = cli(["classify", photos["coffee"], "-m", "resnet18", "-w", "IMAGENET1K_V1"])
        assert result.exit_code == 3
        assert "do not match the hash in their name (f37072fd" in result.stderr
        assert "cvtasks models pull resnet18" in result.stderr
    finally:
        target.unlink()
