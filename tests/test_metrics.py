"""Ranking metrics against examples worked out by hand (the arithmetic is in the comments).

log2 values used below: log2(3) = 1.5849625, log2(4) = 2, log2(5) = 2.3219281, log2(6) = 2.5849625
so 1/log2(2) = 1, 1/log2(3) = 0.6309298, 1/log2(4) = 0.5, 1/log2(5) = 0.4306766,
1/log2(6) = 0.3868528.
"""

import numpy as np
import pytest

from models_ml.metrics import (
    PAD,
    average_precision_at_k,
    catalog_coverage_at_k,
    dcg_at_k,
    hit_rate_at_k,
    item_popularity,
    mae,
    map_at_k,
    mean_metrics_at_k,
    ndcg_at_k,
    novelty_at_k,
    popularity_bias_at_k,
    precision_at_k,
    recall_at_k,
    rmse,
)

# One user, k = 5: the relevant items 2 and 5 sit at ranks 2 and 5; item 9 is never recommended.
RECOMMENDED = [[1, 2, 3, 4, 5]]
RELEVANT = [{2, 5, 9}]


def test_precision_counts_hits_over_k() -> None:
    # 2 hits in the top 5 -> 2 / 5 = 0.4
    assert precision_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx([0.4])
    # top 2 = [1, 2]: 1 hit -> 1 / 2 = 0.5
    assert precision_at_k(RECOMMENDED, RELEVANT, 2) == pytest.approx([0.5])


def test_precision_keeps_k_as_denominator_for_short_lists() -> None:
    # Only 1 item recommended (padded with -1), and it is a hit: 1 / 3, not 1 / 1.
    assert precision_at_k([[3]], [{3}], 3) == pytest.approx([1 / 3])
    assert precision_at_k(np.array([[3, -1, -1]]), [{3}], 3) == pytest.approx([1 / 3])


def test_recall_divides_by_all_relevant_items() -> None:
    # 2 hits of 3 relevant -> 2 / 3
    assert recall_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx([2 / 3])
    # k = 2, 4 relevant items, 1 hit: 1 / |relevant| = 1 / 4 = 0.25.
    # (Dividing by min(|relevant|, k) = 2 would give 0.5.)
    assert recall_at_k([[7, 8]], [{7, 1, 2, 3}], 2) == pytest.approx([0.25])


def test_dcg_uses_a_log2_discount() -> None:
    # hits at ranks 2 and 5: 1/log2(3) + 1/log2(6) = 0.6309298 + 0.3868528 = 1.0177826
    # (natural log: 1/ln 3 + 1/ln 6 = 0.9102392 + 0.5581106 = 1.4683498)
    assert dcg_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx([1.0177826])


def test_ndcg_ideal_dcg_covers_min_of_relevant_and_k() -> None:
    # DCG = 1.0177826 (above).
    # IDCG over min(|relevant| = 3, k = 5) = 3 hits: 1 + 0.6309298 + 0.5 = 2.1309298
    # NDCG = 1.0177826 / 2.1309298 = 0.4776237
    # (IDCG over k = 5 hits would be 2.9484591 and NDCG 0.3451910.)
    assert ndcg_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx([0.4776237])


def test_ndcg_discounts_rank_one_by_log2_of_two() -> None:
    # One relevant item at rank 2: DCG = 1/log2(3) = 0.6309298, IDCG = 1/log2(2) = 1.
    # (A discount of 1/log2(rank) would give 1/log2(2) = 1 and NDCG 1.0.)
    assert ndcg_at_k([[4, 9, 6]], [{9}], 3) == pytest.approx([0.6309298])
    # Same item at rank 1: perfect, 1.0.
    assert ndcg_at_k([[9, 4, 6]], [{9}], 3) == pytest.approx([1.0])


def test_ndcg_with_more_relevant_items_than_k() -> None:
    # k = 2, 4 relevant items, hits at ranks 1 and 2: DCG = 1 + 0.6309298 = 1.6309298
    # IDCG over min(4, 2) = 2 hits: the same, so NDCG = 1.0.
    assert ndcg_at_k([[1, 2]], [{1, 2, 3, 4}], 2) == pytest.approx([1.0])


def test_only_the_top_k_count() -> None:
    # The hit is at rank 3 but k = 2: nothing counts.
    for metric in (precision_at_k, recall_at_k, ndcg_at_k):
        assert metric([[1, 2, 3]], [{3}], 2) == pytest.approx([0.0])


def test_padding_never_matches() -> None:
    # -1 is padding: a relevant set cannot make it a hit.
    assert precision_at_k([[-1, 5]], [{5}], 2) == pytest.approx([0.5])


def test_means_over_users() -> None:
    # user 1: precision 0.4, recall 2/3 = 0.6666667, NDCG 0.4776237 (above)
    # user 2: [9, 8, 7, 6, 5] with relevant {9}: precision 1/5 = 0.2, recall 1/1 = 1, NDCG 1
    # means: precision (0.4 + 0.2) / 2 = 0.3, recall (0.6666667 + 1) / 2 = 0.8333333,
    #        NDCG (0.4776237 + 1) / 2 = 0.7388119
    # AP: user 1 (1/2 + 2/5) / min(3, 5) = 0.9 / 3 = 0.3; user 2 (1/1) / 1 = 1 -> MAP 0.65
    # hit rate: both users have a hit -> 1.0
    means = mean_metrics_at_k([[1, 2, 3, 4, 5], [9, 8, 7, 6, 5]], [{2, 5, 9}, {9}], 5)
    assert means == pytest.approx(
        {
            "precision_at_5": 0.3,
            "recall_at_5": 0.8333333,
            "ndcg_at_5": 0.7388119,
            "map_at_5": 0.65,
            "hit_rate_at_5": 1.0,
        }
    )


def test_array_and_list_inputs_agree() -> None:
    recommended = [[10, 20, 30], [30, 40, 50]]
    relevant = [{20}, {50, 60}]
    as_lists = mean_metrics_at_k(recommended, relevant, 3)
    as_array = mean_metrics_at_k(np.array(recommended), relevant, 3)
    assert as_lists == as_array


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError):
        precision_at_k([[1, 2]], [{1}, {2}], 2)


def test_average_precision_sums_precision_at_each_hit() -> None:
    # hits at ranks 2 and 5 (RECOMMENDED / RELEVANT): precision@2 = 1/2, precision@5 = 2/5
    # AP@5 = (0.5 + 0.4) / min(|relevant| = 3, k = 5) = 0.9 / 3 = 0.3
    # (dividing by the hits, 2, would give 0.45; by k = 5, 0.18)
    assert average_precision_at_k(RECOMMENDED, RELEVANT, 5) == pytest.approx([0.3])
    # k = 2, 4 relevant, hits at ranks 1 and 2: (1/1 + 2/2) / min(4, 2) = 1.0
    assert average_precision_at_k([[1, 2]], [{1, 2, 3, 4}], 2) == pytest.approx([1.0])
    # a hit at rank 3 only: (1/3) / 1 = 0.3333333
    assert map_at_k([[7, 8, 9]], [{9}], 3) == pytest.approx(1 / 3)


def test_hit_rate_is_the_share_of_users_with_a_hit() -> None:
    # user 1 hits at rank 2, user 2 never, user 3 hits at rank 3 (outside k = 2)
    recommended = [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    relevant = [{2}, {10}, {9}]
    assert hit_rate_at_k(recommended, relevant, 2) == pytest.approx(1 / 3)
    assert hit_rate_at_k(recommended, relevant, 3) == pytest.approx(2 / 3)


def test_catalog_coverage_counts_distinct_items_over_the_catalog() -> None:
    # top 2 of each: {1, 2} and {2, 3}, padding -1 ignored: 3 distinct items / 10 = 0.3
    recommended = np.array([[1, 2, 5], [2, 3, -1], [-1, -1, -1]])
    assert catalog_coverage_at_k(recommended, 10, 2) == pytest.approx(0.3)
    # top 3: {1, 2, 5, 3} -> 0.4
    assert catalog_coverage_at_k(recommended, 10, 3) == pytest.approx(0.4)


def test_rmse_and_mae() -> None:
    # errors 1, -2, 0, 1: squared 1 + 4 + 0 + 1 = 6, / 4 = 1.5, sqrt = 1.2247449;
    # absolute 1 + 2 + 0 + 1 = 4, / 4 = 1.0
    predicted, actual = np.array([4.0, 1.0, 3.0, 5.0]), np.array([3.0, 3.0, 3.0, 4.0])
    assert rmse(predicted, actual) == pytest.approx(1.2247449)
    assert mae(predicted, actual) == pytest.approx(1.0)


def test_novelty_and_popularity_bias_by_hand() -> None:
    # training rows: users 10, 11, 12 all have item 1, only user 10 has item 2 (twice: one user)
    items, shares = item_popularity(np.array([10, 11, 12, 10, 10]), np.array([1, 1, 1, 2, 2]))
    assert items.tolist() == [1, 2] and np.allclose(shares, [1.0, 1 / 3])
    recommended = [[1, 2], [1, 3], [PAD, PAD]]  # item 3 is unseen; padding is left out
    # novelty: -log2 of shares [1, 1/3, 1, 1/3 (unseen: one user of three)] = [0, 1.585, 0, 1.585]
    assert novelty_at_k(recommended, items, shares, 3, 2) == pytest.approx(np.log2(3) / 2)
    # popularity bias: mean share [1, 1/3, 1, 0 (unseen)] = 7/12
    assert popularity_bias_at_k(recommended, items, shares, 2) == pytest.approx(7 / 12)
    # at k = 1 only item 1 is recommended: nothing novel, all popular
    assert novelty_at_k(recommended, items, shares, 3, 1) == 0.0
    assert popularity_bias_at_k(recommended, items, shares, 1) == 1.0
