"""Every clause of the standard has a client test named after it.

The clauses are the rows of docs/conformance.md's table (`| B.x.y.z | … |`); each needs
a test function `test_b_x_y_z_<what>` in tests/clients/*.py, so that a failure points
at the clause. Needs no cloud."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFORMANCE = HERE.parents[1] / "docs" / "conformance.md"
ROW = re.compile(r"^\|\s*(B(?:\.\d+)+)\s*\|", re.MULTILINE)


def clauses() -> list[str]:
    return ROW.findall(CONFORMANCE.read_text(encoding="utf-8"))


def function_names() -> set[str]:
    names = set()
    for path in HERE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                names.add(node.name)
    return names


def has_test(clause: str, names: set[str]) -> bool:
    """`test_b_2_1_1_<what>`: the clause's numbers, then a word, so that B.2.1.1 is
    not satisfied by test_b_2_1_10_… nor by test_b_2_1_1_0…"""
    prefix = "test_" + clause.lower().replace(".", "_") + "_"
    return any(n.startswith(prefix) and n[len(prefix) :][:1].isalpha() for n in names)


def test_every_clause_has_a_test():
    assert CONFORMANCE.exists(), f"{CONFORMANCE} is missing: it lists the clauses"
    found = clauses()
    assert found, f"no `| B.x.y |` rows in {CONFORMANCE}"
    assert len(found) == len(set(found)), "a clause is listed twice"
    names = function_names()
    missing = [c for c in found if not has_test(c, names)]
    assert not missing, f"clauses without a test_b_… function in {HERE}: {missing}"


def test_clause_prefixes_are_exact():
    names = {"test_b_2_1_10_resize", "test_b_2_1_1_server_create"}
    assert has_test("B.2.1.10", names) and has_test("B.2.1.1", names)
    assert not has_test("B.2.1.1", {"test_b_2_1_10_resize"})
    assert not has_test("B.1.1", {"test_b_1_1_0_x", "test_b_1_10_x"})
    assert ROW.findall("| B.1.1 | 鉴权 |\n|B.2.1.10|x|\n| clause | op |\n") == ["B.1.1", "B.2.1.10"]
