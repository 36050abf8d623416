"""The README's promises: its first two commands exist, and CI runs exactly the test command."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    block = lines[lines.index("```bash") + 1:]
    return [line for line in block[: block.index("```")] if line and not line.startswith("#")]


def test_readme_starts_with_the_setup_and_test_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert all(c.startswith("python3.11 -m venv .venv && . .venv/bin/activate && pip install") for c in commands)
    assert commands[1].endswith("python -m pytest -q")


def test_ci_runs_the_readme_test_command_verbatim():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _readme_commands()[1] in ci_lines
