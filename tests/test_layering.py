"""The layers read from the bottom up: a package imports only the packages below it.

The order is ARCHITECTURE.md's picture; a new import that reaches upwards fails here
with the module and the line that made it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

LAYERS = (
    "hooks",
    "fhir_client",
    "knowledge",
    "evaluation",
    "models",
    "population",
    "storage",
    "point_of_care",
    "learning",
    "cds_service",
    "cli",
)
"""Bottom first: each package may import itself and those before it, never those after."""


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in a module, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_imports(package: str) -> list[str]:
    allowed = set(LAYERS[: LAYERS.index(package) + 1])
    higher = set(LAYERS) - allowed
    return [
        f"{path.relative_to(ROOT)}:{line} imports {imported}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, imported in imported_packages(path)
        if imported in higher
    ]


@pytest.mark.parametrize("package", LAYERS)
def test_a_layer_never_imports_a_higher_one(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
    assert upward_imports(package) == []


def test_every_package_of_the_project_has_a_layer() -> None:
    packages = {
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "bench", "demo"}
    }
    assert packages == set(LAYERS)


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "rule.py"
    module.write_text("def f():\n    from cds_service.config import Settings\n")
    assert imported_packages(module) == [(2, "cds_service")]
