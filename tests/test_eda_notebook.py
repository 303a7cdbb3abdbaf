"""The EDA notebook runs headlessly against the e2e fixture's warehouse, so it cannot rot.

It must read the marts without changing them (read-only connection, no build), and the figures it
prints must be the warehouse's own (checked here with an independent query). It runs on the marts
as built (integer ids) and on a copy whose ids are VARCHAR (the shop's text ids).
"""

from __future__ import annotations

import hashlib
import os

import duckdb
import nbformat
import pytest
from conftest import with_code_under_test
from nbclient import NotebookClient

from recomart_core.env import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "eda_analysis.ipynb"

pytestmark = pytest.mark.e2e


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _text_outputs(nb: nbformat.NotebookNode) -> str:
    return "\n".join(
        out.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "stream"
    )


@pytest.mark.parametrize("run", ["pipeline_run", "varchar_run"])
def test_notebook_runs_read_only_on_the_marts(run: str, request, monkeypatch) -> None:
    home_run = request.getfixturevalue(run)
    cfg = home_run["cfg"]
    warehouse = cfg.paths.warehouse
    before = _digest(warehouse)
    monkeypatch.setenv("RECOMART_HOME", str(home_run["home"]))
    monkeypatch.setenv("RECOMART_CONFIG", str(home_run["home"] / "recomart.toml"))
    # the kernel runs in notebooks/: it must import this checkout's code
    monkeypatch.setenv("PYTHONPATH", with_code_under_test(dict(os.environ))["PYTHONPATH"])
    nb = nbformat.read(NOTEBOOK, as_version=4)

    NotebookClient(nb, timeout=300, kernel_name="python3", resources={
        "metadata": {"path": str(NOTEBOOK.parent)}
    }).execute()  # fmt: skip

    text = _text_outputs(nb)
    # every section ran and showed a figure
    images = sum(
        "image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", [])
    )
    assert images >= 6, text
    # its figures are the warehouse's: an independent count of the same things
    with duckdb.connect(str(warehouse), read_only=True) as con:
        id_type = con.execute(
            "select data_type from information_schema.columns"
            " where table_schema = 'marts' and table_name = 'interactions'"
            " and column_name = 'user_id'"
        ).fetchall()[0][0]
        n, users, items, pairs = con.execute(
            "select count(*), count(distinct user_id), count(distinct item_id),"
            " count(distinct (user_id, item_id)) from marts.interactions"
        ).fetchone()
    assert id_type == "VARCHAR" or run == "pipeline_run"
    assert f"{n:,} clean interactions" in text
    assert f"users {users:,} x items {items:,}" in text
    assert f"density = {pairs / (users * items):.4%}" in text
    # the quality section read the fixture's report
    assert "gate PASSED" in text and "marts.interactions" in text
    # read-only: the warehouse is byte for byte as it was, no candidate was built
    assert _digest(warehouse) == before
    assert not warehouse.with_name("recomart.candidate.duckdb").exists()
