"""The package's shape: functions short enough to read at their steps (issue 33)."""

from __future__ import annotations

import ast

from conftest import REPO_ROOT

SRC = REPO_ROOT / "src"
MAX_FUNCTION_LINES = 100


def test_no_function_of_the_package_is_over_100_lines():
    """A longer function holds several steps: cut it at them, each a function named for its
    step (as train_deep_model is: set-up, resume, one epoch, end of epoch, checkpoint, save)."""
    long = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(SRC)}:{node.lineno} {node.name}"] = lines
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines: {long}"
