"""Following the interactions file from pipeline.ingest visits each file of ours at most twice.

tests/flow.py runs the real ingest of a small CSV under a profiler and counts the stays per file
(its docstring has the rules: threads followed on their own, the ground modules not counted).
Before the restructure (issue 27), by the same rules: 51 stays, the drop folder's files.py and the
parse's helpers.py visited 9 times each.
"""

from __future__ import annotations

from flow import follow_ingest

MAX_VISITS = 2


def test_the_ingest_visits_each_file_at_most_twice() -> None:
    flow = follow_ingest()
    over = {file: n for file, n in flow.visits.items() if n > MAX_VISITS}
    assert not over, f"files visited more than {MAX_VISITS} times: {over}"
    # the run went through every floor of the ingest, in the order the data flows
    main = [stay.file for stay in flow.threads[0]]
    floors = [
        "recomart/pipeline.py",
        "dlt_pipelines/interactions_pipeline.py",  # the runner, which starts the parse ahead
        "dlt_pipelines/interactions/ahead.py",
        "dlt_pipelines/interactions/files.py",  # (the parse ahead's guess lists the folder)
        "dlt_pipelines/interactions/__init__.py",  # the source
        "dlt_pipelines/interactions/models.py",  # what dlt loads, staged
    ]
    firsts = [main.index(file) for file in floors]
    assert firsts == sorted(firsts), main
    assert main[-2:] == ["dlt_pipelines/interactions_pipeline.py", "recomart/pipeline.py"]
    parse = [stay.file for stays in flow.threads[1:] for stay in stays]
    assert "dlt_pipelines/interactions/csv_reader.py" in parse  # the parse was followed too
