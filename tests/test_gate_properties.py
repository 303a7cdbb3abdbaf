"""Checks that valid data cannot fail, for every example configuration.

For each ready configuration in examples/ (unchanged), hypothesis draws a shop's data that is
valid under it, written in its own layout (tests/shop_data.py: the extremes of its rating scale,
guests, returns, repeated invoice lines, re-visits, one-event users, times decades apart, ids
with leading zeros or letters). That data goes through the real stages (dlt ingest, dbt build,
the Soda gate) and must pass every check. Then, for each defect class the layout can carry, the
same data with that one defect past its threshold is ingested into a copy of the home and
verified by the raw contracts (where the contracts measure defects; dbt keeps defective rows out
of the marts): exactly the check that guards it fails.

`GATE_EXAMPLES=5 pytest -m e2e tests/test_gate_properties.py` draws more shops per example (one
by default, derandomized: the same data on every run).
"""

from __future__ import annotations

import os
import shutil
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from conftest import config_for, not_passed
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from shop_data import DEFECTS, inject, write_files, write_shop

from recomart import pipeline
from recomart_core.config import SODA_DIR
from recomart_core.env import PROJECT_ROOT
from recomart_core.settings import parse
from recomart_core.warehouse import pending_candidate
from soda_checks import gate

pytestmark = pytest.mark.e2e

EXAMPLES = sorted(p.parent.name for p in PROJECT_ROOT.glob("examples/*/recomart.toml"))
RAW_CONTRACTS = [SODA_DIR / "raw_interactions.yml", SODA_DIR / "raw_products.yml"]
PAST = 0.08  # share of defective rows: past the 5 % at which a raw defect fails the gate
EXAMPLES_PER_CONFIG = int(os.environ.get("GATE_EXAMPLES", "1"))


def _home(root: Path, example: str, name: str | None = None) -> tuple[Path, Path]:
    """A fresh home (root/name) holding the example's configuration, unchanged."""
    home = root / (name or example)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    config_file = home / "recomart.toml"
    shutil.copyfile(PROJECT_ROOT / "examples" / example / "recomart.toml", config_file)
    return home, config_file


@pytest.mark.parametrize("example", EXAMPLES)
@settings(
    max_examples=EXAMPLES_PER_CONFIG,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: each example is a whole pipeline
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_valid_data_passes_and_each_defect_fails_exactly_its_check(
    example: str, data: st.DataObject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    raw = tomllib.loads((PROJECT_ROOT / "examples" / example / "recomart.toml").read_text())
    root = tmp_path_factory.getbasetemp() / "gate_properties"
    home, config_file = _home(root, example)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1), label="seed"))
    shop = write_shop(parse(raw), raw, home, rng)
    cfg = config_for(home, config_file)

    pipeline.ingest(cfg)
    with ThreadPoolExecutor(1) as background:  # dbt builds while the defects are ingested here
        built = background.submit(pipeline.transform_stage, cfg)
        verdicts = {}
        for defect in shop.layout.applicable():
            defect_home, defect_config = _home(root / "defects", example, f"{example}-{defect}")
            write_files(shop, defect_home, inject(shop, defect, PAST, rng))
            defect_cfg = config_for(defect_home, defect_config)
            pipeline.ingest(defect_cfg)
            contracts = [c for c in gate.contract_files(cfg=defect_cfg) if c in RAW_CONTRACTS]
            verdicts[defect] = gate.run_quality(defect_cfg, contracts=contracts)
        built.result()
    result = gate.run_quality(cfg, warehouse=pending_candidate(cfg))

    assert result["gate_passed"], not_passed(result)
    assert not_passed(result) == [], shop.counts
    for defect, verdict in verdicts.items():
        dataset, name, column = DEFECTS[defect]
        assert not_passed(verdict) == [(dataset, name, column, "failed")], (example, defect)
