"""The README documents every option and the examples it names exist."""

from __future__ import annotations

from pathlib import Path

from cvtasks.config import config_fields, meta_of
from cvtasks.tasks.registry import TASKS

ROOT = Path(__file__).resolve().parents[1]


def test_every_cli_option_is_in_the_reference():
    reference = (ROOT / "docs" / "options.md").read_text()
    for spec in TASKS.values():
        for field in config_fields(spec.config_cls):
            if meta_of(field).cli:
                option = "--" + field.name.replace("_", "-")
                assert f"`{option}" in reference or f"/ {option}" in reference, option


def test_readme_starts_with_the_two_setup_commands():
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make install", "make test"]


def test_examples_exist():
    for name in ("chelsea.jpg", "astronaut.jpg", "coffee.jpg", "README.md"):
        assert (ROOT / "examples" / name).is_file()


def test_options_reference_is_generated_from_the_code():
    from cvtasks.docs_gen import options_markdown

    assert (ROOT / "docs" / "options.md").read_text() == options_markdown(), "run `make docs`"


def _readme_session() -> list[tuple[str, list[str]]]:
    """The commands of README's quickstart block (lines after `$ `) with the output shown."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quickstart", 1)[1].split("```text", 1)[1].split("```", 1)[0]
    session: list[tuple[str, list[str]]] = []
    for line in block.strip().splitlines():
        if line.startswith("$ "):
            session.append((line[2:], []))
        else:
            session[-1][1].append(line)
    return session


def _same(shown: str, got: str) -> bool:
    import json

    if not shown.startswith("{"):
        return shown == got
    a, b = json.loads(shown), json.loads(got)

    def close(x, y) -> bool:
        if isinstance(x, dict):
            return (
                isinstance(y, dict) and x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
            )
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(map(close, x, y))
        if isinstance(x, float) or isinstance(y, float):
            return abs(x - y) <= 2e-6  # printed to 6 decimals; thread counts move the last one
        return x == y

    return close(a, b)


def test_readme_quickstart_output_comes_from_its_commands(tmp_path):
    """The values README shows are what its commands print (regenerate them if this fails)."""
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    python = sys.executable
    session = _readme_session()
    assert len(session) >= 3
    for command, shown in session:
        line = command.replace(".venv/bin/python", python).replace(
            ".venv/bin/cvtasks", f"{python} -m cvtasks"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, (command, done.stderr)
        got = done.stdout.splitlines()
        assert len(got) == len(shown), (command, got)
        for s, g in zip(shown, got, strict=True):
            assert _same(s, g), (command, s, g)


def test_every_link_in_the_docs_leads_somewhere():
    import re

    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)\)", page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            assert (page.parent / target).exists(), f"{page.name}: {target}"
