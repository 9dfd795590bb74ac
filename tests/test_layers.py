"""The layers' arrows point down: jobs -> pipeline -> arena_models -> core. Every import
statement (module level or inside a function) of every module is checked.

Two more rules keep the tree as ARCHITECTURE.md draws it:
- The project's own modules are imported at the top of a module, where a reader sees what
  it depends on and an import cycle shows at once, not inside a function. A function may
  import one later only for a reason it states, or where the reason is start-up itself:
  - a `# lazy: <reason>` comment on the import, or on the comment and import lines right
    above it (an import cycle, a heavy library behind the module, a CLI start-up path it
    is kept off: `# lazy: import cycle with pipeline.flywheel.training`);
  - in the CLI modules `arena --help` loads, a module `arena --help` does not load: every
    job imports its work when it runs, so the help starts fast (tests/jobs/test_cli.py);
  - a module that, imported alone in a fresh interpreter, pulls in a heavy library (torch,
    transformers, vllm, dask...): checked in a subprocess, only for the imports no rule
    above allows, so the rule costs nothing while the tree keeps it.
  "Light" is everything else: the project's modules load numpy and pyarrow at most.
- Only the tests under tests/jobs/ import `jobs`: the CLI's tests live beside it, every
  other test calls the library (pipeline.flows and below)."""

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# package -> the packages above it, which it must never import
ABOVE = {
    "core": ("arena_models", "pipeline", "jobs"),
    "arena_models": ("pipeline", "jobs"),
    "pipeline": ("jobs",),
}
PROJECT = ("core", "arena_models", "pipeline", "jobs", "eval_sets")
HEAVY = (
    "torch",
    "transformers",
    "vllm",
    "sentence_transformers",
    "trl",
    "datasets",
    "faiss",
    "sklearn",
    "model2vec",
    "matplotlib",
    "selenium",
    "dask",
    "distributed",
)
LAZY = "# lazy:"


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


# --- the project's modules are imported at the top -------------------------------------------


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def function_imports(path: Path) -> list[tuple[int, str, str, bool]]:
    """The imports of project modules inside functions: (line, module, the statement's
    text, whether a `# lazy:` comment gives its reason)."""
    text = path.read_text()
    lines = text.splitlines()
    tree = ast.parse(text, filename=str(path))
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    import_lines = {i for n in imports for i in range(n.lineno, n.end_lineno + 1)}
    inside = {
        node
        for fn in ast.walk(tree)
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        for node in ast.walk(fn)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }

    def reasoned(node) -> bool:
        if any(LAZY in lines[i - 1] for i in range(node.lineno, node.end_lineno + 1)):
            return True
        above = node.lineno - 1  # then up through comments and other imports
        while above >= 1:
            line = lines[above - 1].strip()
            if line.startswith(LAZY):
                return True
            if not (line.startswith("#") or above in import_lines):
                return False
            above -= 1
        return False

    found = []
    for node in sorted(inside, key=lambda n: n.lineno):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        else:
            modules = [node.module] if node.module and node.level == 0 else []
        statement = ast.get_source_segment(text, node)
        for module in modules:
            if module.split(".")[0] in PROJECT:
                found.append((node.lineno, module, statement, reasoned(node)))
    return found


def loaded_by(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code` in the repository."""
    script = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def unreasoned_function_imports() -> list[str]:
    help_path = loaded_by("from jobs.cli import build_parser\nbuild_parser()")
    heavy: dict[str, bool] = {}
    bad = []
    for package in PROJECT:
        for path in sorted((REPO / package).rglob("*.py")):
            starts_help = module_name(path) in help_path
            for line, module, statement, reasoned in function_imports(path):
                if reasoned or (starts_help and module not in help_path):
                    continue
                if statement not in heavy:
                    loaded = loaded_by(statement)
                    heavy[statement] = any(m.split(".")[0] in HEAVY for m in loaded)
                if not heavy[statement]:
                    bad.append(f"{path.relative_to(REPO)}:{line} imports {module}")
    return bad


def test_the_projects_light_modules_are_imported_at_the_top():
    """A function that imports one of our modules, with no `# lazy:` reason, outside the
    CLI's start-up path, and nothing heavy behind it: the import goes to the module's top
    (see this file's docstring)."""
    assert unreasoned_function_imports() == []


def test_a_lazy_import_counts_only_with_its_reason(tmp_path):
    module = tmp_path / "m.py"
    module.write_text(
        "import os\n\n\n"
        "def f():\n"
        "    from core.errors import UserError\n"
        "    import core.hashing  # lazy: a reason\n"
        "    # lazy: import cycle with core.schemas\n"
        "    from core.schemas import (\n"
        "        prompt_id,\n"
        "    )\n"
        "    from core.submit import run_tasks\n\n"
        "    from core.stage import Stage\n"
        "    import json\n"
    )
    assert [(line, module, reasoned) for line, module, _, reasoned in function_imports(module)] == [
        (5, "core.errors", False),
        (6, "core.hashing", True),
        (8, "core.schemas", True),
        (11, "core.submit", True),  # under the same comment, import after import
        (13, "core.stage", False),  # a blank line ends the comment's reach
    ]


# --- only tests/jobs/ imports the CLI ----------------------------------------------------------


def test_only_the_cli_tests_import_jobs():
    jobs_tests = REPO / "tests" / "jobs"
    bad = [
        f"{path.relative_to(REPO)}:{line} imports {module}"
        for path in sorted((REPO / "tests").rglob("*.py"))
        if jobs_tests not in path.parents
        for line, module in imported_modules(path)
        if module.split(".")[0] == "jobs"
    ]
    assert bad == []
