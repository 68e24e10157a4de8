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
