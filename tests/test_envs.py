"""Every rule names a conda env, and that env lists every third-party package its entry point
imports (directly or through avhrrsm, followed module by module)."""

from __future__ import annotations

import ast
import re
import sys

import yaml
from conftest import REPO_ROOT

SRC = REPO_ROOT / "src"
# import name -> conda-forge package name
CONDA_NAMES = {
    "torch": "pytorch",
    "yaml": "pyyaml",
    "netCDF4": "netcdf4",
    "matplotlib": "matplotlib-base",
    "sklearn": "scikit-learn",
}
STDLIB = set(sys.stdlib_module_names) | {"_bootstrap", "avhrrsm", "snakemake"}


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def _module_file(name: str):
    parts = name.split(".")
    for candidate in (SRC.joinpath(*parts).with_suffix(".py"), SRC.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


def third_party_imports(script) -> set[str]:
    seen, todo, found = set(), [script], set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "avhrrsm":
                module = _module_file(name)
                if module is not None:
                    todo.append(module)
                parent = _module_file(name.rsplit(".", 1)[0]) if "." in name else None
                if parent is not None:
                    todo.append(parent)
            elif top not in STDLIB:
                found.add(top)
    return found


def rules():
    """(rule, conda env file, script file) of every rule in workflow/rules."""
    out = []
    for smk in sorted((REPO_ROOT / "workflow" / "rules").glob("*.smk")):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule \w+:)", text):
            name = re.match(r"rule (\w+):", block)
            if not name:
                continue
            conda = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
            script = re.search(r'script:\s*\n\s*"([^"]+)"', block)
            out.append((name.group(1), conda and conda.group(1), script and script.group(1), smk))
    return out


def test_every_rule_has_an_env_listing_what_its_entry_point_imports():
    checked = 0
    for name, conda, script, smk in rules():
        assert conda, f"rule {name} names no conda env"
        assert script, f"rule {name} has no script"
        env = yaml.safe_load((smk.parent / conda).resolve().read_text())
        listed = {re.split(r"[=<>!]", d)[0] for d in env["dependencies"] if isinstance(d, str)}
        needed = {
            CONDA_NAMES.get(m, m.lower())
            for m in third_party_imports((smk.parent / script).resolve())
        }
        missing = needed - listed
        assert not missing, f"rule {name}: {conda} lacks {sorted(missing)}"
        checked += 1
    assert checked >= 12  # every rule of workflow/rules (rule all lives in the Snakefile)
