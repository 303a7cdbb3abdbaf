"""Holdout strategies, the paired bootstrap and the champion gate's rule: hand-built cases whose
answers can be counted (no MLflow here; tests/test_train.py runs the gate in real runs)."""

import numpy as np
import pandas as pd
import pytest

from models_ml.evaluate import evaluate_many
from models_ml.registry import bootstrap_means, decide, paired_bootstrap
from models_ml.split import (
    EvaluationSettings,
    count_eval_users,
    holdout,
    last_days,
    last_share,
    leave_last_n,
)
from recomart_core.schema import EVENT, ITEM, RATING, TIME, USER
from recomart_core.settings import parse


def frame(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    """(user, item, timestamp) rows, rating 4, event view."""
    users, items, times = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            USER: np.array(users, dtype=np.int64),
            ITEM: np.array(items, dtype=np.int64),
            EVENT: "view",
            RATING: 4.0,
            TIME: pd.to_datetime(list(times)),
        }
    )


def pairs(part: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(part[USER].tolist(), part[ITEM].tolist(), strict=True))


# ---------------------------------------------------------------- strategies
def test_last_days_holds_out_the_last_days_and_says_so() -> None:
    data = frame(
        [
            (1, 1, "2026-05-01"),
            (1, 2, "2026-06-01"),
            (2, 3, "2026-06-20"),
            (2, 4, "2026-06-21"),
            (3, 5, "2026-07-01"),
        ]
    )
    split = last_days(data, 10)
    # max = 2026-07-01, cutoff = 2026-06-21: the cutoff instant belongs to test.
    assert split.cutoff == pd.Timestamp("2026-06-21")
    assert split.train[ITEM].tolist() == [1, 2, 3]
    assert split.test[ITEM].tolist() == [4, 5]
    assert split.reference_time == pd.Timestamp("2026-06-20")  # the newest train event
    assert (split.strategy, split.params, split.label) == (
        "last_days", {"holdout_days": 10}, "last 10 days"
    )  # fmt: skip


def test_last_share_holds_out_the_last_share_of_the_time_span() -> None:
    # span 2026-01-01 .. 2026-01-11 (10 days); share 0.3: cutoff 2026-01-08
    days = ["2026-01-01", "2026-01-03", "2026-01-07", "2026-01-08", "2026-01-09", "2026-01-11"]
    data = frame([(u, u, day) for u, day in enumerate(days, start=1)])
    split = last_share(data, 0.3)
    assert split.cutoff == pd.Timestamp("2026-01-08")
    assert split.test[ITEM].tolist() == [4, 5, 6]
    assert split.train[ITEM].tolist() == [1, 2, 3]
    assert split.reference_time == pd.Timestamp("2026-01-07")
    assert split.label == "last 30% of the time span"
    with pytest.raises(ValueError, match="holdout_share"):
        last_share(data, 1.0)


LEAVE = [
    (1, 10, "2026-01-01"),  # user 1: three interactions, the last one (item 12) is test
    (1, 11, "2026-01-05"),
    (1, 12, "2026-01-09"),
    (2, 20, "2026-01-02"),  # user 2: a single interaction, never test
    (3, 35, "2026-01-03"),  # user 3: two at the same instant: item 37 (higher id) is "last"
    (3, 37, "2026-01-03"),
    (4, 40, "2026-01-10"),  # user 4: two, the later one (item 41, dated earlier) is test
    (4, 41, "2026-01-20"),
]


def test_leave_last_n_takes_each_users_last_interactions() -> None:
    data = frame(LEAVE)
    split = leave_last_n(data, 1)
    assert pairs(split.test) == {(1, 12), (3, 37), (4, 41)}
    assert len(split.train) == 5 and pairs(split.train) == pairs(data) - pairs(split.test)
    assert split.cutoff is None and split.label == "leave-last-1"
    # the newest train event: user 4's 2026-01-10, although user 1's test event is 2026-01-09
    assert split.reference_time == pd.Timestamp("2026-01-10")
    # n = 2: only user 1 has more than 2 interactions
    two = leave_last_n(data, 2)
    assert pairs(two.test) == {(1, 11), (1, 12)}
    # the same rows in another order split the same way (ties broken by content)
    shuffled = data.sample(frac=1.0, random_state=7).reset_index(drop=True)
    assert pairs(leave_last_n(shuffled, 1).test) == pairs(split.test)


def test_leave_last_n_never_takes_a_users_only_interaction() -> None:
    rng = np.random.default_rng(0)
    n_rows = 3000
    data = pd.DataFrame(
        {
            USER: rng.integers(0, 1500, n_rows),  # many users with one or two rows
            ITEM: rng.integers(0, 200, n_rows),
            EVENT: "view",
            RATING: 3.0,
            TIME: pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 10**6, n_rows), "s"),
        }
    )
    for n in (1, 2):
        split = leave_last_n(data, n)
        counts = data[USER].value_counts()
        test_counts = split.test[USER].value_counts()
        # users with more than n interactions give exactly n, the others none
        assert test_counts.to_dict() == dict.fromkeys(counts[counts > n].index, n)
        assert set(split.test[USER]) <= set(split.train[USER])  # every test user keeps train rows
        # each test row is at least as late as every train row of its user
        last_train = split.train.groupby(USER)[TIME].max()
        assert (split.test[TIME].to_numpy() >= last_train[split.test[USER]].to_numpy()).all()
        assert len(split.train) + len(split.test) == n_rows


def years_of_users(n_old: int, n_recent: int) -> pd.DataFrame:
    """n_old users each active for a month somewhere in 2015-2017; n_recent users with history in
    2017 who come back with new items in the last days of the data (2018-06-30)."""
    rows = []
    for user in range(n_old):
        start = pd.Timestamp("2015-01-01") + pd.Timedelta(days=20 * user)
        rows += [(user, item, start + pd.Timedelta(days=3 * item)) for item in range(8)]
    for user in range(1000, 1000 + n_recent):
        rows += [
            (user, item, pd.Timestamp("2017-03-01") + pd.Timedelta(days=item)) for item in range(5)
        ]
        rows += [
            (user, 100 + user, pd.Timestamp("2018-06-20")),
            (user, 50, pd.Timestamp("2018-06-30")),
        ]
    return frame([(u, i, str(t)) for u, i, t in rows])


def test_auto_falls_back_to_leave_last_n_when_the_last_days_score_too_few_users() -> None:
    data = years_of_users(n_old=60, n_recent=3)
    settings = EvaluationSettings()  # auto, 30 days, min_eval_users 50, leave-last-1
    by_days = last_days(data, 30)
    assert count_eval_users(by_days.train, by_days.test) == 3
    split = holdout(data, settings)
    assert split.strategy == "leave_last_n" and split.requested == "auto"
    assert split.reason == (
        "last 30 days score 3 users < 50 (min_eval_users 50, min_eval_share 0.5 of the 63"
        " leave-last-1 scores): leave-last-1"
    )
    assert split.cutoff is None
    # every user has more than one interaction: 63 users, one test row each, all scored
    assert len(split.test) == 63 and count_eval_users(split.train, split.test) == 63
    info = split.info()
    assert info["strategy"] == "leave_last_n" and info["params"] == {"leave_last_n": 1}
    assert info["cutoff"] is None and info["reference_time"] == "2018-06-20T00:00:00"


def test_auto_counts_the_users_the_repeat_policy_scores() -> None:
    """Sixty users come back in the last month to items they viewed before: no new item, so with
    every known item excluded the last 30 days score nobody and auto falls back; with views
    repeatable those re-views are what the evaluation scores, and the last 30 days are kept."""
    rows = []
    for user in range(60):
        rows += [
            (user, item, pd.Timestamp("2018-01-01") + pd.Timedelta(days=item)) for item in range(5)
        ]
        rows.append((user, 2, pd.Timestamp("2018-06-25")))  # a re-view, in the last 30 days
    data = frame([(u, i, str(t)) for u, i, t in rows])  # every row a view
    assert holdout(data, EvaluationSettings()).strategy == "leave_last_n"
    split = holdout(data, EvaluationSettings(), repeatable=["view"])
    assert split.strategy == "last_days"
    assert split.reason.startswith("last 30 days score 60 users >= 50")
    assert count_eval_users(split.train, split.test, repeatable=["view"]) == 60
    assert count_eval_users(split.train, split.test) == 0


def test_auto_keeps_the_last_days_when_they_score_enough_users() -> None:
    data = years_of_users(n_old=10, n_recent=5)  # leave-last-1 would score all 15 users
    split = holdout(data, EvaluationSettings(min_eval_users=5, min_eval_share=0.3))
    assert split.strategy == "last_days" and split.cutoff == pd.Timestamp("2018-05-31")
    assert split.reason == (
        "last 30 days score 5 users >= 5 (min_eval_users 5, min_eval_share 0.3 of the 15"
        " leave-last-1 scores): last 30 days"
    )
    # enough users by count, but a third of those leave-last-1 scores: less than half
    by_share = holdout(data, EvaluationSettings(min_eval_users=5))
    assert by_share.strategy == "leave_last_n"
    assert by_share.reason.startswith("last 30 days score 5 users < 7.5 (min_eval_users 5")
    # explicit strategies run as asked, whatever they score
    assert holdout(data, EvaluationSettings(holdout="last_days")).reason == "holdout = last_days"
    assert holdout(data, EvaluationSettings(holdout="leave_last_n")).strategy == "leave_last_n"


def test_settings_defaults_and_errors() -> None:
    assert EvaluationSettings.from_config({}) == EvaluationSettings(
        holdout="auto", holdout_days=30.0, holdout_share=0.1, leave_last_n=1, min_eval_users=50,
        bootstrap_samples=1000, confidence=0.95,
    )  # fmt: skip
    custom = EvaluationSettings.from_config({"evaluation": {"holdout": "last_share"}})
    assert custom.holdout == "last_share" and custom.holdout_share == 0.1
    with pytest.raises(ValueError) as bad:
        EvaluationSettings.from_config({"evaluation": {"holdout": "last_week"}})
    assert str(bad.value) == (
        "[train.evaluation] holdout: must be one of auto, last_days, last_share, leave_last_n,"
        " got 'last_week'"
    )
    cases = {
        "holdout_share": 1.5,
        "confidence": 1,
        "leave_last_n": 0,
        "min_eval_users": 2.5,
        "holdout_days": -1,
    }
    for key, value in cases.items():
        with pytest.raises(ValueError, match=rf"^\[train.evaluation\] {key}: "):
            EvaluationSettings.from_config({"evaluation": {key: value}})
    with pytest.raises(ValueError, match="has no setting 'holdot'"):
        EvaluationSettings.from_config({"evaluation": {"holdot": "auto"}})
    # the old place of holdout_days is refused where the file is read (recomart_core.settings)
    with pytest.raises(ValueError, match=r"\[train\] holdout_days has moved"):
        parse({"train": {"holdout_days": 30}})


# ---------------------------------------------------------------- bootstrap
def test_constant_differences_give_a_point_interval() -> None:
    candidate = np.linspace(0.2, 0.6, 40)
    gain, low, high = paired_bootstrap(candidate, candidate - 0.1, samples=500, seed=1)
    assert gain == pytest.approx(0.1, abs=1e-12)
    assert low == pytest.approx(0.1, abs=1e-12) and high == pytest.approx(0.1, abs=1e-12)


def test_zero_mean_with_spread_straddles_zero() -> None:
    candidate = np.tile([1.0, 0.0], 100)  # the users one model gets, the other misses
    other = np.tile([0.0, 1.0], 100)
    gain, low, high = paired_bootstrap(candidate, other, samples=1000, seed=3)
    assert gain == 0.0 and low < 0 < high
    # a difference of +-1 per user: the mean's standard error is 1 / sqrt(200) = 0.0707;
    # the 95 % interval is about +-1.96 of it (a wrong resampling would not give this width)
    assert high - low == pytest.approx(2 * 1.96 / np.sqrt(200), rel=0.1)


def test_bootstrap_is_seeded_and_chunking_changes_nothing() -> None:
    rng = np.random.default_rng(0)
    diffs = rng.normal(0.01, 0.2, (3000, 2))
    one = bootstrap_means(diffs, 300, seed=42)
    assert np.array_equal(one, bootstrap_means(diffs, 300, seed=42))
    assert np.array_equal(one, bootstrap_means(diffs, 300, seed=42, max_cells=5000))
    assert not np.array_equal(one, bootstrap_means(diffs, 300, seed=43))
    assert one.shape == (300, 2)


# ---------------------------------------------------------------- the gate's rule
BASELINE_GAP = 0.2


def users(n: int, seed: int = 0) -> np.ndarray:
    """Per-user NDCG-like values in [0, 1]."""
    return np.random.default_rng(seed).random(n)


def baselines_for(candidate: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "popularity": np.clip(candidate - BASELINE_GAP, 0, 1),
        "recent_popularity": np.clip(candidate - BASELINE_GAP, 0, 1),
    }


def test_too_few_users_keep_whatever_the_gain() -> None:
    candidate = users(8)
    decision = decide("ndcg_at_10", candidate, baselines_for(candidate), candidate - 0.3)
    assert not decision.promote
    assert decision.reason.startswith("ndcg_at_10 scored on 8 users < min_eval_users 50")
    assert decision.n_users == 8 and len(decision.comparisons) == 3  # numbers kept for the record
    first = decide("ndcg_at_10", candidate, baselines_for(candidate), None)
    assert not first.promote and "no champion is set" in first.reason


def test_a_gain_within_noise_keeps_the_champion() -> None:
    rng = np.random.default_rng(5)
    candidate = users(800, seed=1)
    champion = np.clip(candidate + rng.normal(0, 0.3, 800), 0, 1)  # same mean, much spread
    champion += candidate.mean() - champion.mean()
    decision = decide("ndcg_at_10", candidate, baselines_for(candidate), champion, seed=7)
    assert not decision.promote
    champ = decision.comparisons[-1]
    assert champ["other"] == "champion" and champ["low"] < 0 < champ["high"]
    assert decision.reason == (
        f"ndcg_at_10 gain over champion {round(champ['gain'], 4) + 0.0:+.4f}, 95% CI"
        f" [{champ['low']:+.4f}, {champ['high']:+.4f}] over 800 users: within noise"
    )
    # the baselines were beaten clearly: their intervals sit above 0
    assert all(c["low"] > 0.15 and c["passed"] for c in decision.comparisons[:2])


def test_a_clear_gain_promotes_and_a_tie_does_not() -> None:
    candidate = users(500, seed=2)
    champion = np.clip(candidate - 0.05, 0, 1)
    decision = decide("ndcg_at_10", candidate, baselines_for(candidate), champion)
    assert decision.promote
    assert decision.reason.startswith("ndcg_at_10 gain over champion +0.04")
    assert decision.reason.endswith("over 500 users: above 0")
    assert decision.champion_value == pytest.approx(champion.mean())
    assert decision.candidate == pytest.approx(candidate.mean())
    tie = decide("ndcg_at_10", candidate, baselines_for(candidate), candidate.copy())
    assert not tie.promote and "CI [+0.0000, +0.0000] over 500 users: within noise" in tie.reason
    # a gain whose lower bound does not clear min_improvement
    margin = decide(
        "ndcg_at_10", candidate, baselines_for(candidate), champion, min_improvement=0.1
    )
    assert not margin.promote and margin.reason.endswith("not above min_improvement 0.1")


def test_a_baseline_not_beaten_clearly_blocks_a_first_champion() -> None:
    candidate = users(300, seed=3)
    baselines = {"popularity": candidate - 0.1, "recent_popularity": candidate[::-1].copy()}
    decision = decide("ndcg_at_10", candidate, baselines, None)
    assert not decision.promote
    assert decision.reason.startswith("ndcg_at_10 gain over recent_popularity +0.0000")
    first = decide("ndcg_at_10", candidate, {"popularity": candidate - 0.1}, None)
    assert first.promote and first.reason.startswith("first champion: ndcg_at_10 gain over")
    with pytest.raises(ValueError, match="users"):
        decide("ndcg_at_10", candidate, {"popularity": candidate[:10]}, None)


def test_more_warm_users_than_max_users_are_sampled_the_same_way_every_time():
    from models_ml.baselines import PopularityRecommender

    rng = np.random.default_rng(2)
    n = 4000
    rows = pd.DataFrame(
        {
            USER: rng.integers(0, 300, n),
            ITEM: rng.integers(0, 50, n),
            RATING: rng.integers(1, 6, n).astype(float),
        }
    )
    train, test = rows.iloc[:3000], rows.iloc[3000:]
    rec = {"pop": PopularityRecommender().fit(train)}
    everyone = evaluate_many(rec, train, test, 10)["pop"]
    once = evaluate_many(rec, train, test, 10, max_users=40, seed=7)["pop"]
    again = evaluate_many(rec, train, test, 10, max_users=40, seed=7)["pop"]
    assert len(everyone.user_ids) > 40 and len(once.user_ids) == 40
    np.testing.assert_array_equal(once.user_ids, again.user_ids)
    assert set(once.user_ids) < set(everyone.user_ids)
    picked = np.searchsorted(everyone.user_ids, once.user_ids)
    ndcg = "ndcg_at_10"
    np.testing.assert_array_equal(once.per_user[ndcg], everyone.per_user[ndcg][picked])
