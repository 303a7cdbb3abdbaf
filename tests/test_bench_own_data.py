"""`make bench-own-data` renders MovieLens ratings in the layouts that have no real file here:
checked on a few invented ratings (the benchmark itself reads the real files); and the real
sets it runs are the ones the shared data folder holds, each with an example configuration."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from layouts import ML100K_START

from recomart.bench.own_data import NOT_RUNNABLE, REAL, RENDERED, render_layouts
from recomart_core.env import PROJECT_ROOT


def _movielens(folder: Path, n: int = 4000) -> pd.DataFrame:
    folder.mkdir()
    ratings = pd.DataFrame(
        {
            "u": [1 + k % 50 for k in range(n)],
            "i": [1 + (k * 7) % 90 for k in range(n)],
            "r": [1 + k % 5 for k in range(n)],
            "t": [ML100K_START + 3_600 * k for k in range(n)],
        }
    )
    ratings.to_csv(folder / "u.data", sep="\t", header=False, index=False)
    items = pd.DataFrame(
        {
            "item_id": range(1, 91),
            "title": [f"Movie, {i}" for i in range(1, 91)],
            "release_year": ["unknown" if i == 5 else "1995" for i in range(1, 91)],
            "genres": ["Animation Children's Comedy"] * 90,
        }
    )
    items.to_csv(folder / "items.tsv", sep="\t", index=False)
    return ratings


def test_each_layout_is_written_as_its_example_expects(tmp_path: Path) -> None:
    ratings = _movielens(tmp_path / "ml")
    written = render_layouts(tmp_path / "ml", tmp_path / "out")
    assert set(written) == set(RENDERED)
    out = tmp_path / "out"
    # MovieLens 1M's layout: the same rows, `::` between the fields
    dat = (out / "movielens-1m" / "ratings.dat").read_text().splitlines()
    assert len(dat) == written["movielens-1m"] == len(ratings)
    assert dat[1] == "::".join(str(v) for v in ratings.iloc[1])

    latest = pd.read_csv(out / "movielens-latest" / "ratings.csv")
    assert list(latest.columns) == ["userId", "movieId", "rating", "timestamp"]
    assert set(latest["rating"]) <= {x / 2 for x in range(1, 11)} and (latest["rating"] % 1).any()
    movies = pd.read_csv(out / "movielens-latest" / "movies.csv")
    assert movies["genres"].iloc[0] == "Animation|Children|Comedy"
    assert movies["title"].iloc[4] == "Movie, 5 (1995)" and set(latest["movieId"]) <= set(
        movies["movieId"]
    )

    retail = pd.read_csv(
        out / "online-retail" / "online_retail.csv", dtype=str, keep_default_na=False
    )
    assert len(retail) == written["online-retail"] == len(ratings)
    guests = (retail["CustomerID"] == "").mean()
    assert (
        0.2 < guests < 0.3
        and retail.loc[retail["CustomerID"] != "", "CustomerID"].str.endswith(".0").all()
    )
    cancelled = retail["InvoiceNo"].str.startswith("C")
    assert cancelled.any() and (retail.loc[cancelled, "Quantity"].astype(int) < 0).all()
    assert retail["InvoiceDate"].iloc[0] == "9/20/1997 4:05"  # month first, UK summer time (UTC+1)

    clicks = pd.read_csv(out / "retailrocket" / "events.csv", dtype={"transactionid": str})
    assert len(clicks) == written["retailrocket"] > len(ratings)
    assert set(clicks["event"]) == {"view", "addtocart", "transaction"}
    assert clicks["timestamp"].is_monotonic_increasing and clicks["timestamp"].min() > 10**11  # ms
    assert clicks["transactionid"].notna().sum() == (ratings["r"] == 5).sum()


def test_every_real_set_and_rendered_layout_has_its_example() -> None:
    examples = {p.parent.name for p in PROJECT_ROOT.glob("examples/*/recomart.toml")}
    assert set(REAL) | set(RENDERED) == examples
    # the Instacart export has an example folder saying why it cannot run yet, no configuration
    assert set(NOT_RUNNABLE) == {"instacart"}
    assert (PROJECT_ROOT / "examples" / "instacart" / "README.md").exists()
    assert not (PROJECT_ROOT / "examples" / "instacart" / "recomart.toml").exists()
