"""Every notebook in notebooks/ runs top to bottom on a fresh kernel; the ones that show a
main job's outputs run on the session's real main job (tests/conftest.py `main_run`), so
they never drift from what the job writes."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))
READS_A_RUN = {"leaderboard_and_battles", "flywheel"}


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, request, monkeypatch):
    if path.stem in READS_A_RUN:
        out, _ = request.getfixturevalue("main_run")
        monkeypatch.setenv("ARENA_RUN", str(out))
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(
        notebook,
        timeout=900,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"
    ]
    assert not errors
