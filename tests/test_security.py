"""Security: a scan of the source for unsafe deserialisation and shell use, quoting of config
values that reach a shell, and paths from config that could escape the results folder."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from avhrrsm.config import ConfigError, validate_config

PYTHON_SOURCES = sorted(
    [
        *REPO_ROOT.joinpath("src").rglob("*.py"),
        *REPO_ROOT.joinpath("workflow").rglob("*.py"),
        *REPO_ROOT.joinpath("tests").rglob("*.py"),
    ]
)
RULE_FILES = [REPO_ROOT / "Snakefile", *sorted(REPO_ROOT.joinpath("workflow").rglob("*.smk"))]

FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve"}
FORBIDDEN_CALLS = {
    "pickle.load": "pickle runs code from the file",
    "pickle.loads": "pickle runs code from the file",
    "yaml.load": "use yaml.safe_load",
    "yaml.unsafe_load": "use yaml.safe_load",
    "yaml.full_load": "use yaml.safe_load",
    "yaml.load_all": "use yaml.safe_load_all",
    "pd.read_pickle": "pickle runs code from the file",
    "pandas.read_pickle": "pickle runs code from the file",
    "os.system": "use subprocess with a list of arguments",
    "os.popen": "use subprocess with a list of arguments",
    "eval": "never evaluate strings",
    "exec": "never execute strings",
}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_true(node: ast.AST | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def scan(source: str, name: str) -> list[str]:
    """Every unsafe construct in one Python source, as 'file:line: what and why'."""
    problems = []
    for node in ast.walk(ast.parse(source, filename=name)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
            )
            for module in modules:
                if module.split(".")[0] in FORBIDDEN_MODULES:
                    problems.append(f"{name}:{node.lineno}: imports {module} (no pickling)")
        if not isinstance(node, ast.Call):
            continue
        called = _dotted(node.func)
        if called in FORBIDDEN_CALLS:
            problems.append(f"{name}:{node.lineno}: {called}() ({FORBIDDEN_CALLS[called]})")
        if called.endswith("torch.load") and not _is_true(_keyword(node, "weights_only")):
            problems.append(f"{name}:{node.lineno}: torch.load without weights_only=True")
        if called in ("np.load", "numpy.load") and _is_true(_keyword(node, "allow_pickle")):
            problems.append(f"{name}:{node.lineno}: np.load(allow_pickle=True)")
        if called.startswith("subprocess.") and _is_true(_keyword(node, "shell")):
            problems.append(f"{name}:{node.lineno}: subprocess with shell=True")
        if called.endswith("Loader") or _dotted(_keyword(node, "Loader") or ast.Name("")) in (
            "yaml.Loader",
            "yaml.UnsafeLoader",
            "yaml.FullLoader",
        ):
            problems.append(f"{name}:{node.lineno}: YAML with an unsafe loader")
    return problems


@pytest.mark.parametrize("path", PYTHON_SOURCES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_unsafe_calls_in_the_source(path):
    problems = scan(path.read_text(encoding="utf-8"), str(path.relative_to(REPO_ROOT)))
    assert problems == []


@pytest.mark.parametrize(
    "snippet, found",
    [
        ("import pickle\n", "imports pickle"),
        ("import torch\ntorch.load('m.pt')\n", "torch.load without weights_only=True"),
        ("import torch\ntorch.load('m.pt', weights_only=False)\n", "torch.load without"),
        ("import yaml\nyaml.load(open('c.yaml'))\n", "yaml.load()"),
        ("import yaml\nyaml.safe_load('a', Loader=yaml.Loader)\n", "unsafe loader"),
        ("import subprocess\nsubprocess.run('ls', shell=True)\n", "shell=True"),
        ("import numpy as np\nnp.load('a.npy', allow_pickle=True)\n", "allow_pickle"),
        ("eval('1 + 1')\n", "eval()"),
    ],
)
def test_the_scan_finds_what_it_looks_for(snippet, found):
    (problem,) = scan(snippet, "example.py")
    assert found in problem


def test_safe_calls_pass_the_scan():
    source = (
        "import torch, yaml, subprocess\n"
        "torch.load('m.pt', map_location='cpu', weights_only=True)\n"
        "yaml.safe_load('a: 1')\n"
        "subprocess.run(['ls', '-l'], check=True)\n"
    )
    assert scan(source, "example.py") == []


SHELL_FIELD = re.compile(r"\{(params|config|wildcards|input|output)[^}]*\}")


def test_config_values_reaching_a_shell_are_quoted():
    """Rules run scripts, not shell commands; a `shell:` added later must quote with :q."""
    for path in RULE_FILES:
        text = path.read_text(encoding="utf-8")
        for match in re.finditer(r"^\s*shell:\s*\n?((?:.*\n){1,8})", text, flags=re.MULTILINE):
            for field in SHELL_FIELD.finditer(match.group(1)):
                assert field.group(0).endswith(":q}"), f"{path}: {field.group(0)} is not quoted"


@pytest.mark.parametrize(
    "override, message",
    [
        ({"run": "../elsewhere"}, "run"),
        ({"run": "a/b"}, "run"),
        ({"inputs": {"era5land": "{synthetic}/../../x_{year}_{month:02d}.nc"}}, "inputs.era5land"),
        ({"inputs": {"ismn": "/tmp/{synthetic}/ismn"}}, "inputs.ismn"),
    ],
)
def test_config_paths_cannot_make_the_workflow_write_outside_the_run_folder(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(override)


def test_every_output_of_a_run_lies_in_its_run_folder(tmp_path):
    """The whole DAG's outputs, as Snakemake plans them, are under {results_dir}/{run}/."""
    from test_workflow import _snakemake

    (tmp_path / "config.yaml").write_text(
        (REPO_ROOT / "workflow" / "configs" / "test.yaml").read_text()
    )
    result = _snakemake(["-n", "--summary", "--configfile", "config.yaml"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [
        line.split("\t")[0]
        for line in result.stdout.splitlines()
        if "\t" in line and not line.startswith("output_file")
    ]
    assert len(rows) > 50
    outside = [row for row in rows if not Path(row).is_relative_to("results/test")]
    assert outside == []
