"""Following the interactions file from pipeline.ingest, and the settings from pipeline.train,
visits each file of ours at most twice.

tests/flow.py runs the real ingest of a small CSV, and the real training on small marts, under a
profiler and counts the stays per file (its docstring has the rules: threads followed on their
own, the ground modules not counted; in the training, only the calls handed the settings).
Before the restructure (issue 27), by the same rules: the ingest 51 stays, the drop folder's
files.py and the parse's helpers.py visited 9 times each; the training 17 stays, train.py visited
7 times (each of its steps went out to the families, the recommender, the feature store or the
split with the settings, and came back).
"""

from __future__ import annotations

import pytest
from flow import follow_ingest, follow_train

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


@pytest.mark.e2e  # a real training: MLflow store and registry
def test_the_training_follows_the_settings_through_each_file_at_most_twice() -> None:
    flow = follow_train()
    over = {file: n for file, n in flow.visits.items() if n > MAX_VISITS}
    assert not over, f"files visited more than {MAX_VISITS} times: {over}"
    # resolved once, up front (the family's model, the training set, the holdout), then the run
    assert [stay.file for stay in flow.threads[0]] == [
        "recomart/pipeline.py",
        "models_ml/train.py",
        "models_ml/families/__init__.py",  # check, the family's Settings, the search's values
        "models_ml/recommender.py",  # the shared ModelSettings
        "feature_store/store.py",  # the training set (paths)
        "models_ml/split.py",  # [train.evaluation]: the holdout
        "models_ml/train.py",  # the run: fit, evaluate, gate, package, promote, report
    ]
    assert "_write_report" in flow.threads[0][-1].functions
