"""Unit tests build their own small data (tests/unit/synthetic.py); only tests/integration and the benchmarks read
the real data sets in ../shared/data. This checks the unit tests' sources for the ways to reach them."""

from __future__ import annotations

import ast
from pathlib import Path

UNIT = Path(__file__).resolve().parent
# What tests/conftest.py offers to reach the shared data.
SHARED_NAMES = {"SHARED_DATA", "WEBIS", "RTE", "webis_rows", "webis_slice"}


def test_no_unit_test_reads_the_shared_data():
    offenders = []
    for path in sorted(p for p in UNIT.glob("*.py") if p.name != Path(__file__).name):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "tests.conftest":
                offenders += [f"{path.name}: imports {a.name}" for a in node.names if a.name in SHARED_NAMES]
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                offenders += [f"{path.name}: {node.name} uses the fixture {a.arg}" for a in node.args.args
                              if a.arg in SHARED_NAMES]
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings and (
                    node.value == "shared" or "CURATE_SHARED_DATA" in node.value or "shared/data" in node.value):
                offenders.append(f"{path.name}: line {node.lineno} names the shared data folder")
    assert offenders == [], "unit tests must build their own data; move real-data tests to tests/integration"
