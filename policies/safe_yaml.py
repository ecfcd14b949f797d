"""YAML for kyso's declarative files: ``yaml.safe_load``, but nesting that would exhaust PyYAML's recursive
composer (``RecursionError``, not a ``YAMLError``) is refused first, as a ``YAMLError`` with its line.

PyYAML's parser is an iterative state machine; only building the nodes recurses. Walking the parser's
events with a depth counter costs one extra pass over a small file and finds the first node too deep.
"""
from __future__ import annotations

from typing import Any

import yaml

MAX_DEPTH = 64  # kyso's files nest four or five levels


class TooDeep(yaml.MarkedYAMLError):  # type: ignore[misc]  # PyYAML ships no types: its classes are Any
    def __init__(self, mark: yaml.Mark) -> None:
        super().__init__(problem=f"nested more than {MAX_DEPTH} levels deep", problem_mark=mark)


def check_depth(text: str) -> None:
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise TooDeep(event.start_mark)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def safe_load(text: str) -> Any:
    check_depth(text)
    return yaml.safe_load(text)
