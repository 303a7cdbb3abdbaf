"""recomart.toml is validated when it is read: a wrong key or value fails at start, naming the
section, the key and what is allowed, before any stage runs (never later as a dbt or Soda error)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from models_ml import families
from recomart_core import config
from recomart_core.env import PROJECT_ROOT
from recomart_core.settings import ConfigError, parse

WRONG = {
    "a typo in a key": (
        {"ingest": {"interactions": {"delimeter": ";"}}},
        "[ingest.interactions] has no setting 'delimeter'",
    ),
    "an unknown catalog source": (
        {"catalog": {"source": "csv"}},
        "[catalog] source: must be one of api, files, none, got 'csv'",
    ),
    "files without a glob": (
        {"catalog": {"source": "files"}},
        '[catalog] source = "files" needs files =',
    ),
    "no catalog but rejecting unknown items": (
        {"catalog": {"source": "none", "unknown_items": "reject"}},
        '[catalog] source = "none" has no catalog',
    ),
    "an event name mapped to none of ours": (
        {"ingest": {"interactions": {"event_map": {"addtocart": "cart"}}}},
        "[ingest.interactions] event_map: 'addtocart' maps to 'cart'; our event types are view,"
        " add_to_cart, purchase",
    ),
    "a column mapped to none of ours": (
        {"ingest": {"interactions": {"column_map": {"CustomerID": "customer"}}}},
        "'CustomerID' maps to 'customer'; our columns are user_id, item_id, rating, timestamp",
    ),
    "a timestamp format that is not one": (
        {"ingest": {"interactions": {"timestamp_format": "mm/dd/yyyy"}}},
        "'mm/dd/yyyy' is not auto, epoch_s, epoch_ms or a strptime format",
    ),
    "a time zone that does not exist": (
        {"ingest": {"interactions": {"timezone": "Europe/Londres"}}},
        "[ingest.interactions] timezone: 'Europe/Londres' is not an IANA time zone name",
    ),
    "a header-less file without columns": (
        {"ingest": {"interactions": {"header": False}}},
        "[ingest.interactions] header = false needs columns",
    ),
    "columns that lack a required one": (
        {"ingest": {"interactions": {"header": False, "columns": ["user_id", "rating"]}}},
        "lack item_id, timestamp",
    ),
    "an unknown return action": (
        {"ingest": {"interactions": {"returns": {"action": "refund"}}}},
        "[ingest.interactions.returns] action: must be one of drop, quarantine, negative",
    ),
    "an unknown rule for rows without a user": (
        {"ingest": {"interactions": {"missing_user": "skip"}}},
        "[ingest.interactions] missing_user: must be one of defect, guest, got 'skip'",
    ),
    "an empty id among the items that are not products": (
        {"catalog": {"not_products": ["POST", " "]}},
        "[catalog] not_products: an empty id; list the item ids as the interaction files write",
    ),
    "negative returns without a negative weight": (
        {
            "ingest": {"interactions": {"returns": {"action": "negative"}}},
            "train": {"event_weights": {"view": 1, "add_to_cart": 2, "purchase": 4}},
        },
        'action = "negative" needs a negative weight for return in [train.event_weights]',
    ),
    "a rating scale upside down": ({"ratings": {"min": 5, "max": 1}}, "[ratings] min (5.0)"),
    "a step that does not divide the scale": (
        {"ratings": {"min": 1, "max": 5, "step": 3}},
        "[ratings] step 3.0 does not divide max - min = 4.0",
    ),
    "an unknown weighting": (
        {"train": {"weight_by": "price"}},
        "[train] weight_by: must be one of events, quantity, value, got 'price'",
    ),
    "a nested value of the wrong type": (
        {"train": {"cold_start": {"few_interactions": "many"}}},
        "[train.cold_start] few_interactions: Input should be a valid integer",
    ),
}


@pytest.mark.parametrize(("raw", "message"), WRONG.values(), ids=WRONG.keys())
def test_a_wrong_setting_is_named_with_what_is_allowed(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(raw)
    assert message in str(caught.value)


def test_the_project_config_and_every_example_are_valid() -> None:
    for path in [PROJECT_ROOT / "recomart.toml", *PROJECT_ROOT.glob("examples/*/recomart.toml")]:
        assert config.load(str(path)).settings, path
    config.load.cache_clear()


def test_each_example_keeps_its_data_and_reports_apart() -> None:
    """Running an example never writes into the demo's (or another example's) warehouse,
    landing area, features, models or stores."""
    for path in PROJECT_ROOT.glob("examples/*/recomart.toml"):
        name = path.parent.name
        paths = parse(tomllib.loads(path.read_text())).paths.model_dump()
        kept = {key: value for key, value in paths.items() if key not in ("generated", "logs")}
        outside = {
            key: value
            for key, value in kept.items()
            if value is not None and not value.startswith((f"data/{name}/", f"reports/{name}"))
        }
        assert outside == {}, path


def test_defaults_fill_what_a_short_config_leaves_out() -> None:
    settings = parse({"catalog": {"source": "none"}})
    assert settings.catalog.unknown_item_policy == "keep"  # no catalog: every item is kept
    assert settings.ratings.step == 0 and settings.ingest.interactions.header is True
    assert settings.generator is None  # no demo data without a [generator] section


def test_the_command_fails_at_start_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "recomart.toml"
    bad.write_text('[catalog]\nsource = "ftp"\n')
    env = {**os.environ, "RECOMART_HOME": str(tmp_path), "RECOMART_CONFIG": str(bad)}
    proc = subprocess.run(
        [sys.executable, "-m", "recomart.cli", "ingest"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "[catalog] source: must be one of api, files, none, got 'ftp'" in proc.stderr
    assert not (tmp_path / "data").exists()  # nothing ran


def test_a_search_point_is_applied_as_the_family_tables_it_names() -> None:
    """The search names a family's own keys `<family>.<key>` (reports/tuning.json best_params);
    `recomart demo` trains that point through with_train, which puts each into its table."""
    cfg = config.load(str(PROJECT_ROOT / "recomart.toml"))
    point = {"family": "hybrid", "alpha": 40.0, "als.factors": 128, "ease.l2": 20.0,
             "ease.zero_diagonal": False, "hybrid.weight": 0.5}  # fmt: skip
    train = config.with_train(cfg, **point).settings.train
    assert (train.family, train.alpha) == ("hybrid", 40.0)
    assert train.families["als"]["factors"] == 128
    assert train.families["ease"] == {**cfg.settings.train.families.get("ease", {}), "l2": 20.0,
                                      "zero_diagonal": False}  # fmt: skip
    assert train.families["hybrid"]["weight"] == 0.5
    with pytest.raises(ConfigError, match=r"\[train.ease\] l2"):  # as pipeline.train checks it
        families.check(config.with_train(cfg, **{"ease.l2": -1.0}).settings.train)
