"""The layers' arrows point down: jobs -> pipeline -> arena_models -> core. Every import
statement (module level or inside a function) of every module is checked."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# package -> the packages above it, which it must never import
ABOVE = {
    "core": ("arena_models", "pipeline", "jobs"),
    "arena_models": ("pipeline", "jobs"),
    "pipeline": ("jobs",),
}


def imported_modules(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def upward_imports() -> list[str]:
    bad = []
    for package, forbidden in ABOVE.items():
        for path in sorted((REPO / package).rglob("*.py")):
            for line, module in imported_modules(path):
                if module.split(".")[0] in forbidden:
                    bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return bad


def test_no_module_imports_a_layer_above_it():
    assert upward_imports() == []


def test_the_walk_sees_imports_inside_functions(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from jobs.cli import main\n")
    assert imported_modules(module) == [(2, "jobs.cli")]
