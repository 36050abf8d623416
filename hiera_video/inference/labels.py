"""Class names for a checkpoint that does not carry them (official Hiera checkpoints): ``--labels FILE``.

Accepted files:

- text: one class name per line, line ``i`` names class ``i`` (blank lines at the end are ignored);
- JSON list: ``["abseiling", "air drumming", ...]``;
- JSON object ``{"name": index}`` (PySlowFast's ``classids.json``, SSv2's labels file with index strings)
  or ``{"index": "name"}``.
"""
from __future__ import annotations

import json
import os

from hiera_video.datasets.list_files import ListFileError, open_text_file


def read_class_names(path: str | os.PathLike) -> list[str]:
    """Class names by index from a text or JSON label file (see the module docstring)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"label file {path} does not exist (--labels: one class name per line, or JSON)")
    with open_text_file(path) as handle:
        text = handle.read()
    if path.endswith(".json") or text.lstrip()[:1] in ("[", "{"):
        return _names_from_json(path, text)
    return _names_from_lines(path, text)


def _names_from_lines(path: str, text: str) -> list[str]:
    lines = text.rstrip().splitlines()
    names = []
    for number, line in enumerate(lines, start=1):
        name = line.strip()
        if not name:
            raise ListFileError(path, number,
                                "empty line: line i must name class i (remove the line or name the class)")
        names.append(name)
    if not names:
        raise ListFileError(path, None, "no class names (write one class name per line)")
    return names


def _names_from_json(path: str, text: str) -> list[str]:
    try:
        content = json.loads(text)
    except json.JSONDecodeError as error:
        raise ListFileError(path, error.lineno, f"invalid JSON ({error.msg})") from None
    if isinstance(content, list) and content and all(isinstance(name, str) for name in content):
        return content
    if not isinstance(content, dict) or not content:
        raise ListFileError(path, None, "expected a list of names, {name: index} or {index: name}")
    if all(_is_index(key) for key in content):
        index_to_name = {int(key): str(name) for key, name in content.items()}
    elif all(_is_index(value) for value in content.values()):
        index_to_name = {int(value): str(name) for name, value in content.items()}
    else:
        raise ListFileError(path, None, "a JSON object must map every name to an index or every index to a name")
    if sorted(index_to_name) != list(range(len(content))):
        raise ListFileError(path, None, f"class indices must be 0..{len(content) - 1}, each once")
    return [index_to_name[i] for i in range(len(content))]


def _is_index(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value.isdecimal())
