"""`cvtasks train` learns a synthetic real-vs-fake set from random init; the run folder is a
weights spec whose validation accuracy classify's records and `eval` reproduce; resuming after
an interruption ends with the weights of an uninterrupted run."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from fake_faces import make_set
from helpers import default_sigint, jsonl
from PIL import Image
from safetensors.torch import load_file

RECIPE = ["-m", "resnet18", "-w", "none", "--img-size", "64", "-b", "16", "--lr", "0.003"]
RECIPE += ["--augment", "none", "--seed", "0", "-q"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_set(tmp_path_factory.mktemp("pad") / "data", per_class=80)


@pytest.fixture(scope="module")
def run(dataset, tmp_path_factory):
    """One training run of 8 epochs (about 15 s on two cores)."""
    from typer.testing import CliRunner

    from cvtasks.cli.app import app

    folder = tmp_path_factory.mktemp("runs") / "pad"
    args = ["train", dataset, *RECIPE, "--epochs", "8", "-o", folder]
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.stderr
    return folder, json.loads(result.stdout)


def val_folder(run_folder: Path, target: Path) -> Path:
    """The run's validation images in class folders (from split.json)."""
    split = json.loads((run_folder / "split.json").read_text())
    for path, label in split["val"]:
        name = split["classes"][label]
        (target / name).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name / Path(path).name)
    return target


def test_a_small_model_learns_real_from_fake(run):
    folder, summary = run
    assert summary["classes"] == ["fake", "real"] and summary["epochs"] == 8
    # well above chance (0.5); the exact figure moves with thread counts and float rounding
    assert summary["best"]["val_top1"] >= 0.75, summary
    for name in ("best.safetensors", "last.safetensors", "last_state.pt", "labels.txt",
                 "config.yaml", "metrics.jsonl", "confusion.png", "curves.png", "split.json"):  # fmt: skip
        assert (folder / name).is_file(), name
    assert (folder / "labels.txt").read_text() == "fake\nreal\n"
    config = yaml.safe_load((folder / "config.yaml").read_text())
    assert config["task"] == "train" and config["run"]["model"] == "resnet18"
    assert (
        config["run"]["preprocessing"]["crop"] == 64
        and config["run"]["preprocessing"]["resize"] == 73
    )
    assert config["run"]["best"]["epoch"] == summary["best"]["epoch"]
    lines = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert [line["epoch"] for line in lines] == list(range(1, 9))
    assert {c["label"] for c in lines[-1]["classes"]} == {"fake", "real"}
    assert max(line["val_top1"] for line in lines) == summary["best"]["val_top1"]
    assert lines[-1]["train_top1"] >= 0.8 and lines[-1]["train_loss"] < lines[0]["train_loss"]
    for figure in ("confusion.png", "curves.png"):
        assert min(Image.open(folder / figure).size) > 300


def test_classify_and_eval_reproduce_the_validation_accuracy(cli, run, tmp_path):
    folder, summary = run
    val = val_folder(folder, tmp_path / "val")
    images = sorted(val.rglob("*.png"))
    result = cli(["classify", *images, "-w", folder, "-f", "jsonl", "-q"])  # -m from the run
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    correct = sum(r["predictions"][0]["label"] == Path(r["source"]).parent.name for r in records)
    assert correct / len(records) == pytest.approx(summary["best"]["val_top1"], abs=1e-6)
    assert records[0]["model"] == "resnet18" and records[0]["predictions"][0]["label"] in (
        "fake",
        "real",
    )
    evaluated = cli(["eval", "classify", val, "-w", folder, "-f", "json", "-o", tmp_path / "eval"])
    assert evaluated.exit_code == 0, evaluated.stderr
    report = json.loads(evaluated.stdout)
    assert report["top1"] == pytest.approx(summary["best"]["val_top1"], abs=1e-6)
    assert report["n"] == len(records) and report["positive"] == "real"
    assert {"roc_auc", "eer", "apcer", "bpcer", "acer"} <= set(report)
    for name in ("confusion.png", "roc.png", "predictions.csv", "results.jsonl"):
        assert (tmp_path / "eval" / name).is_file(), name
    # eval's records are classify's records
    by_source = {r["source"]: r["predictions"] for r in records}
    theirs = {
        r["source"]: r["predictions"]
        for r in jsonl((tmp_path / "eval" / "results.jsonl").read_text())
    }
    assert theirs == by_source
    table = cli(["eval", "classify", val, "-w", folder, "-f", "table"])
    assert "APCER" in table.stdout and "confusion" in table.stdout


def test_a_run_folder_names_its_model(cli, run, photos):
    folder, _ = run
    clash = cli(["classify", photos["chelsea"], "-w", folder, "-m", "resnet50"])
    assert clash.exit_code == 2 and "contradicts --weights" in clash.stderr
    same = cli(["classify", photos["chelsea"], "-w", folder, "-m", "resnet18", "-f", "jsonl", "-q"])
    assert same.exit_code == 0
    explained = cli(["explain", "gradcam", photos["chelsea"], "-w", folder, "-f", "jsonl", "-q"])
    assert explained.exit_code == 0 and jsonl(explained.stdout)[0]["predictions"][0]["label"] in (
        "fake",
        "real",
    )
    inspected = cli(["inspect", "resnet18", "-w", folder, "-f", "jsonl"])
    assert json.loads(inspected.stdout.splitlines()[-2])["output"] == [2]


def test_resume_after_interrupt_equals_an_uninterrupted_run(tmp_path):
    dataset = make_set(tmp_path / "data", per_class=40)
    straight = tmp_path / "straight"
    args = [sys.executable, "-m", "cvtasks", "train", str(dataset), *RECIPE, "--epochs", "2"]
    subprocess.run([*args, "-o", str(straight)], check=True, capture_output=True)
    broken = tmp_path / "broken"
    proc = subprocess.Popen(
        [*args, "-o", str(broken)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,
    )  # fmt: skip
    metrics = broken / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        assert proc.poll() is None and time.monotonic() < deadline, (
            proc.stderr.read() if proc.stderr else ""
        )
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "run the same command with --resume" in stderr and "Traceback" not in stderr
    assert metrics.read_text().count("\n") < 2
    resumed = subprocess.run([*args, "-o", str(broken), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    for name in ("last.safetensors", "best.safetensors"):
        ours, theirs = load_file(str(broken / name)), load_file(str(straight / name))
        assert ours.keys() == theirs.keys()
        assert all((ours[k] == theirs[k]).all() for k in ours), name
    assert [json.loads(x)["val_loss"] for x in metrics.read_text().splitlines()] == [
        json.loads(x)["val_loss"] for x in (straight / "metrics.jsonl").read_text().splitlines()
    ]


def test_fine_tuning_from_a_weights_file_replaces_the_head(cli, dataset, r18_file, tmp_path):
    folder = tmp_path / "ft"
    result = cli(
        ["train", dataset, "-m", "resnet18", "-w", r18_file, "--img-size", "64", "--epochs", "1",
         "--freeze", "backbone", "-o", folder, "-q"]
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    best = load_file(str(folder / "best.safetensors"))
    assert tuple(best["fc.weight"].shape) == (2, 512)
    import torch

    start = torch.load(r18_file, weights_only=True)
    assert torch.equal(best["layer1.0.conv1.weight"], start["layer1.0.conv1.weight"])  # frozen
    assert torch.equal(best["bn1.running_mean"], start["bn1.running_mean"])  # frozen BN stats


# ------------------------------------------------------------------ bad input


def test_bad_datasets_are_one_line_errors(cli, tmp_path, dataset):
    def train(data: Path, *extra: str):
        return cli(["train", data, *RECIPE, "--epochs", "1", "-o", tmp_path / "out", *extra])

    empty = tmp_path / "empty"
    shutil.copytree(dataset, empty)
    (empty / "unknown").mkdir()
    result = train(empty)
    assert (
        result.exit_code == 2
        and "class folder" in result.stderr
        and "holds no images" in result.stderr
    )
    single = tmp_path / "single"
    shutil.copytree(dataset / "real", single / "real")
    result = train(single)
    assert result.exit_code == 2 and "needs at least two class folders" in result.stderr
    split = tmp_path / "split"
    shutil.copytree(dataset, split / "train")
    shutil.copytree(dataset / "real", split / "val" / "real")
    shutil.copytree(dataset / "real", split / "val" / "other")
    result = train(split)
    assert result.exit_code == 2 and "has classes the training set lacks: other" in result.stderr
    result = cli(
        ["train", dataset, "-m", "alexnet", "-w", "none", "--img-size", "32", "-o", tmp_path / "o2"]
    )
    assert result.exit_code == 2 and "--img-size 32 is too small for alexnet" in result.stderr
    assert cli(["train", dataset, "--epochs", "1"]).exit_code == 2  # no run folder
    assert "Traceback" not in result.stderr


def test_unreadable_images_are_skipped_and_listed(cli, dataset, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(dataset, data)
    (data / "real" / "broken.png").write_bytes(b"not a png")
    (data / "fake" / "empty.png").write_bytes(b"")
    out = tmp_path / "run"
    result = cli(["train", data, *RECIPE, "--epochs", "1", "--val-split", "0.3", "-o", out])
    assert result.exit_code == 1, result.stderr  # finished, but some inputs failed
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert {Path(e["source"]).name for e in errors} == {"broken.png", "empty.png"}
    assert json.loads(result.stdout)["unreadable"] == 2 and (out / "best.safetensors").is_file()


def test_non_ascii_class_names(cli, dataset, tmp_path):
    data = tmp_path / "données"
    shutil.copytree(dataset / "real", data / "réel")
    shutil.copytree(dataset / "fake", data / "fälschung")
    out = tmp_path / "run"
    result = cli(["train", data, *RECIPE, "--epochs", "1", "-o", out])
    assert result.exit_code == 0, result.stderr
    assert (out / "labels.txt").read_text(encoding="utf-8") == "fälschung\nréel\n"
    image = next((data / "réel").iterdir())
    records = jsonl(cli(["classify", image, "-w", out, "-f", "jsonl", "-q"]).stdout)
    assert records[0]["predictions"][0]["label"] in ("fälschung", "réel")
