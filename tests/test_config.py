"""Config layering, validation and safe YAML loading."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from helpers import jsonl

from cvtasks.classify.config import ClassifyConfig
from cvtasks.config_build import build_config, dump_config, parse_set_overrides
from cvtasks.errors import ConfigError
from cvtasks.safe_yaml import load_yaml_text
from cvtasks.tasks.registry import TASKS

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_shipped_preset_equals_defaults(cli, task):
    shown = cli(["config", "show", task])
    assert shown.exit_code == 0
    assert (ROOT / "configs" / f"{task}.yaml").read_text() == shown.stdout
    data = yaml.safe_load(shown.stdout)
    assert data.pop("task") == task
    cls = TASKS[task].config_cls
    assert build_config(cls, [("show", data)]) == cls()


def test_every_key_is_documented():
    text = dump_config(ClassifyConfig(), "classify")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#") and not line.startswith("task:"):
            assert lines[i - 1].startswith("# "), f"undocumented key: {line}"


def test_precedence_defaults_file_set_cli(cli, photos, r18_file, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(f"model: resnet18\nweights: {r18_file}\ntop_k: 3\nbatch_size: 2\n")
    base = ["classify", photos["chelsea"], "-c", config, "-f", "jsonl", "-q"]

    def top_k(*extra):
        result = cli([*base, *extra])
        assert result.exit_code == 0, result.stderr
        return len(jsonl(result.stdout)[0]["predictions"])

    assert top_k() == 3  # file beats default (5)
    assert top_k("--set", "top_k=4") == 4  # --set beats file
    assert top_k("--top-k", "2") == 2  # explicit option beats file
    assert top_k("--top-k", "5") == 5  # explicit value equal to the default still wins
    assert top_k("--set", "top_k=4", "--top-k", "1") == 1


def test_set_parses_types():
    overrides = parse_set_overrides(["top_k=7", "save_images=yes", "labels=null", "out=dir"])
    cfg = build_config(ClassifyConfig, [("--set", overrides)])
    assert (cfg.top_k, cfg.save_images, cfg.labels, cfg.out) == (7, True, None, "dir")
    with pytest.raises(ConfigError, match="key=value"):
        parse_set_overrides(["top_k"])


@pytest.mark.parametrize(
    ("yaml_text", "needle"),
    [
        ("top_kk: 3\n", "unknown key 'top_kk' (did you mean 'top_k'?)"),
        ("top_k: 3\ntop_k: 4\n", "duplicate key 'top_k' at line 2"),
        ("batch_size: eight\n", "key 'batch_size' must be an integer"),
        ("top_k: 0\n", "key 'top_k' must be >= 1"),
        ("format: yaml\n", "key 'format' must be one of table, jsonl, json, csv"),
        ("save_images: maybe\n", "key 'save_images' must be true or false"),
        ("- a\n- b\n", "expected a mapping"),
        ("top_k: [1\n", "invalid YAML"),
    ],
)
def test_bad_config_is_exit_2_naming_the_key(cli, photos, tmp_path, yaml_text, needle):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    result = cli(["classify", photos["chelsea"], "-c", config])
    assert result.exit_code == 2
    assert needle in result.stderr


def test_python_object_tags_are_refused_and_never_run(cli, photos, tmp_path):
    marker = tmp_path / "pwned"
    config = tmp_path / "evil.yaml"
    config.write_text(f'top_k: !!python/object/apply:os.system ["touch {marker}"]\n')
    result = cli(["classify", photos["chelsea"], "-c", config])
    assert result.exit_code == 2
    assert "unsupported YAML tag" in result.stderr
    assert not marker.exists()


def test_alias_bomb_is_refused_quickly():
    bomb = "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="too large"):
        load_yaml_text(bomb, "bomb.yaml")
    assert time.perf_counter() - start < 5


def test_config_for_another_task_is_refused(cli, photos, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("task: detect\n")
    result = cli(["classify", photos["chelsea"], "-c", config])
    assert result.exit_code == 2 and "'detect' config" in result.stderr


def test_run_job(cli, photos, r18_file, tmp_path):
    job = tmp_path / "job.yaml"
    out = tmp_path / "out"
    job.write_text(
        yaml.safe_dump(
            {
                "task": "classify",
                "inputs": [str(photos["chelsea"]), str(photos["coffee"])],
                "model": "resnet18",
                "weights": str(r18_file),
                "top_k": 2,
                "out": str(out),
                "quiet": True,
                "format": "jsonl",
            }
        )
    )
    result = cli(["run", job, "--set", "top_k=3"])
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert [len(r["predictions"]) for r in records] == [3, 3]
    assert jsonl((out / "results.jsonl").read_text()) == records
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["task"] == "classify" and saved["top_k"] == 3 and saved["model"] == "resnet18"


def test_run_takes_the_tasks_own_options(cli, photos, r18_file, tmp_path):
    """`cvtasks run job.yaml --weights w.pth` works (the weights error tells users to pass
    --weights); options beat --set, which beats the file; --set parses YAML lists."""
    job = tmp_path / "job.yaml"
    job.write_text("task: classify\ninputs: [nope.jpg]\nmodel: resnet18\ntop_k: 2\n")
    chelsea, coffee = photos["chelsea"], photos["coffee"]
    result = cli(
        ["run", job, "--set", f"inputs=[{chelsea}, {coffee}]", "--set", "top_k=4",
         "--weights", r18_file, "--top-k=3", "-f", "jsonl", "--quiet", "--no-fold-bn"]
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    records = jsonl(result.stdout)
    assert [r["source"] for r in records] == [str(chelsea), str(coffee)]
    assert [len(r["predictions"]) for r in records] == [3, 3]
    wrong = cli(["run", job, "--wieghts", r18_file])
    assert wrong.exit_code == 2 and "did you mean '--weights'" in wrong.stderr
    assert cli(["run", job, "--top-k"]).exit_code == 2


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("inputs: [x.jpg]\n", "needs a 'task:' key"),
        (
            "task: clasify\ninputs: [x]\n",
            "unknown task 'clasify'; tasks: classify, detect, segment, pose, faces, gaze, explain, "
            "track, train, eval, eval-detect, eval-segment, eval-pose, eval-explain, export, depth (did you mean 'classify'?)",
        ),
        ("task: classify\n", "needs 'inputs:'"),
    ],
)
def test_bad_jobs(cli, tmp_path, content, needle):
    job = tmp_path / "job.yaml"
    job.write_text(content)
    result = cli(["run", job])
    assert result.exit_code == 2
    assert needle in result.stderr


def test_missing_config_file(cli, photos, tmp_path):
    result = cli(["classify", photos["chelsea"], "-c", tmp_path / "nope.yaml"])
    assert result.exit_code == 2 and "config file not found" in result.stderr
