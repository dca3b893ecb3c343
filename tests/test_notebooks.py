"""Every notebook in notebooks/ is committed without outputs and runs without error, headless,
against a generated demo database."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from crm_core.db import Database, forget_databases
from crm_core.demo import load_demo

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("notebooks") / "demo.sqlite3"
    db = Database(f"sqlite:///{path}")
    db.init()
    load_demo(db, n_customers=400, seed=7)
    db.dispose()
    return f"sqlite:///{path}"


def test_there_are_notebooks():
    names = {p.name for p in NOTEBOOKS}
    assert {
        "01_explore_customers.ipynb",
        "03_sales_dashboard.ipynb",
        "04_segments_and_churn.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_committed_without_outputs(path: Path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.get("outputs"), f"{path.name}: strip outputs before committing"
            assert cell.get("execution_count") is None, f"{path.name}: strip execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, demo_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CRM_DATABASE_URL", demo_url)
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()  # raises CellExecutionError with the failing cell's traceback
    errors = [
        out
        for cell in notebook.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    assert not errors
    forget_databases()
