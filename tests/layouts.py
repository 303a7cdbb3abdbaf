"""Small synthetic datasets in the exact file layouts of four public datasets.

End-to-end tests use these writers to check that the pipeline ingests data shaped like the files
real users bring. Every value here is SYNTHETIC: it is generated with a seeded numpy generator from
the published schemas only; no third-party data (ratings, titles, product names, ids) is copied.

Layouts:

* ``write_movielens_100k`` -> ``u.data``: MovieLens 100K ratings, tab-separated, no header
  (user id, item id, rating 1-5, unix seconds). Schema: the ml-100k README (GroupLens).
* ``write_movielens_latest`` -> ``ratings.csv`` and ``movies.csv``: MovieLens "latest-small"
  (half-star ratings, non-contiguous movieIds, titles with quoted commas, pipe-separated genres).
  Schema: the ml-latest-small README (GroupLens).
* ``write_online_retail`` -> ``online_retail.csv``: the UCI Machine Learning Repository
  "Online Retail" data set as a CSV export (invoice lines, ``C`` cancellations with negative
  quantities, guest lines without CustomerID, POST postage lines, ``12/1/2010 8:26`` dates).
* ``write_retailrocket`` -> ``events.csv``: the RetailRocket e-commerce dataset on Kaggle
  (view / addtocart / transaction clickstream, millisecond timestamps).

Planted structure, so that a collaborative-filtering model beats a most-popular baseline: users
and items belong to ``n_groups`` latent taste groups (the movie genre / product category); a user
draws ~80 % of their interactions from their group's items (Zipf-like popularity inside the group)
and ~20 % from a global Zipf popularity. Every user gets at least 15 interactions (fewer only when
``n_rows < 15 * n_users``) spread over time, so time-based and leave-last-one holdouts leave many
users with test items. Ids are shuffled against the groups. A (user, item) pair occurs at most
once in the rating layouts; repeats happen in the retail and clickstream layouts.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

MIN_PER_USER = 15
TASTE = 0.8  # share of a user's interactions drawn from their own group's items
DAY = 86_400

GENRES = (
    "Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama",
    "Fantasy", "Film-Noir", "Horror", "IMAX", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
# The genre that names each taste group (the first genre of its movies); spread over the
# alphabet so that further genres, listed after it in alphabetical order as MovieLens does, exist.
GROUP_GENRES = (
    "Action", "Comedy", "Drama", "Horror", "Adventure", "Crime", "Animation", "Documentary",
    "Children", "Fantasy", "Musical", "Mystery", "Film-Noir", "Romance", "Sci-Fi", "Thriller",
    "War", "IMAX", "Western",
)  # fmt: skip
NO_GENRES = "(no genres listed)"

TITLE_WORDS_A = (
    "Silent", "Broken", "Golden", "Last", "Hidden", "Midnight", "Crimson", "Lonely", "Wild",
    "Frozen", "Electric", "Lost", "Secret", "Burning", "Distant", "Little", "Endless", "Iron",
)  # fmt: skip
TITLE_WORDS_B = (
    "River", "Garden", "Empire", "Summer", "Harbor", "Kingdom", "Stranger", "Highway", "Island",
    "Letter", "Mirror", "Orchard", "Signal", "Voyage", "Winter", "Machine", "Circus", "Tower",
)  # fmt: skip

CATEGORY_NOUNS = (
    ("T-LIGHT HOLDER", "CANDLE", "LANTERN", "CANDLESTICK", "TEALIGHT SET", "VOTIVE HOLDER"),
    ("SHOPPER BAG", "LUNCH BAG", "TOTE BAG", "PURSE", "WASHBAG", "GIFT BAG"),
    ("CHRISTMAS BAUBLE", "ADVENT CALENDAR", "STAR DECORATION", "WREATH", "STOCKING", "TREE"),
    ("CAKE TIN", "TEA TOWEL", "MUG", "JAM JAR", "SPOON SET", "CAKE STAND"),
    ("NOTEBOOK", "PENCIL SET", "WRAPPING PAPER", "GREETING CARD", "STICKER SHEET", "MEMO PAD"),
    ("PLANT POT", "WATERING CAN", "BIRD FEEDER", "GARDEN SIGN", "HERB MARKER", "DOORMAT"),
    ("SPACEBOY TOY", "SKIPPING ROPE", "JIGSAW", "PLAYING CARDS", "SNAKES LADDERS", "PARASOL"),
    ("PHOTO FRAME", "WALL CLOCK", "CUSHION COVER", "METAL SIGN", "COAT HANGER", "DOORSTOP"),
)
COLOURS = (
    "WHITE", "RED", "PINK", "BLUE", "GREEN", "IVORY", "BLACK", "CREAM", "PURPLE", "SILVER",
    "GOLD", "ORANGE",
)  # fmt: skip
STYLES = (
    "HANGING HEART", "VINTAGE", "REGENCY", "RETROSPOT", "POLKA DOT", "PAISLEY", "SPOTTY",
    "WOODLAND", "FLORAL", "DOILY",
)  # fmt: skip

# MovieLens 100K: 1997-09-20 .. 1998-04-22 (unix seconds).
ML100K_START, ML100K_END = 874_724_710, 893_286_638
# MovieLens latest-small: 1996-03-29 .. 2018-09-24; half stars exist from 2003-02-18 on.
LATEST_START, LATEST_END, HALF_STARS_FROM = 828_124_615, 1_537_799_250, 1_045_526_400
# Online Retail: 12/1/2010 8:26 .. 12/9/2011 12:50.
RETAIL_START, RETAIL_END = pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2011-12-09 12:50")
FIRST_INVOICE = 536_365
POSTAGE = ("POST", "POSTAGE", 18.0)  # the stock code of a postage line: not a product
# RetailRocket: 2015-05-03 .. 2015-09-18 (unix milliseconds).
RR_START, RR_END = 1_430_622_004_384, 1_442_545_187_788


def _user_counts(rng: np.random.Generator, n_users: int, n_rows: int, cap: int) -> np.ndarray:
    """Interactions per user: at least MIN_PER_USER (or what n_rows allows), at most cap."""
    if n_rows > cap * n_users:
        raise ValueError(f"n_rows={n_rows} exceeds {cap} distinct items per user x {n_users} users")
    floor = max(1, min(MIN_PER_USER, n_rows // n_users, cap))
    activity = rng.lognormal(0.0, 0.8, n_users)
    counts = floor + rng.multinomial(n_rows - floor * n_users, activity / activity.sum())
    while (excess := np.clip(counts - cap, 0, None).sum()) > 0:
        counts = np.minimum(counts, cap)
        room = (cap - counts).astype(float)
        counts += rng.multinomial(excess, room / room.sum())
    return counts


def _draw(rng: np.random.Generator, weights: np.ndarray, row_group: np.ndarray) -> np.ndarray:
    """One item per row, drawn with replacement from the weights of the row's group."""
    items = np.empty(len(row_group), dtype=np.int64)
    for g in np.unique(row_group):
        rows = np.flatnonzero(row_group == g)
        items[rows] = rng.choice(weights.shape[1], size=len(rows), p=weights[g] / weights[g].sum())
    return items


def _plant(
    rng: np.random.Generator,
    n_users: int,
    n_items: int,
    n_rows: int,
    n_groups: int,
    *,
    unique: bool,
) -> dict[str, np.ndarray]:
    """Planted (user, item) draws, sorted by user: indices, groups, weights, in-group flag.

    unique=True samples without replacement per user (Gumbel top-k over an n_users x n_items
    matrix, fine up to a few million cells).
    """
    if not 1 <= n_groups <= n_items:
        raise ValueError(f"need 1 <= n_groups <= n_items, got {n_groups} and {n_items}")
    user_group = rng.integers(0, n_groups, n_users)
    item_group = rng.permutation(np.arange(n_items) % n_groups)
    order = np.lexsort((rng.random(n_items), item_group))  # random rank inside each group
    starts = np.searchsorted(item_group[order], np.arange(n_groups))
    rank = np.empty(n_items, dtype=np.int64)
    rank[order] = np.arange(n_items) - starts[item_group[order]]
    in_group_pop = 1.0 / (rank + 1.0)
    global_pop = 1.0 / (rng.permutation(n_items) + 1.0)
    weights = (1.0 - TASTE) * global_pop / global_pop.sum() * np.ones((n_groups, 1))
    for g in range(n_groups):
        members = item_group == g
        weights[g, members] += TASTE * in_group_pop[members] / in_group_pop[members].sum()

    counts = _user_counts(rng, n_users, n_rows, int(0.6 * n_items) if unique else n_rows)
    users = np.repeat(np.arange(n_users), counts)
    if unique:  # Gumbel top-k: weighted sampling without replacement, one row per user
        keys = np.log(weights[user_group]) + rng.gumbel(size=(n_users, n_items))
        ranked = np.argsort(-keys, axis=1)
        items = ranked[np.arange(n_items) < counts[:, None]]
    else:
        items = _draw(rng, weights, user_group[users])
    return {
        "weights": weights,
        "users": users,
        "items": items,
        "user_group": user_group,
        "item_group": item_group,
        "in_group": item_group[items] == user_group[users],
    }


def _sample_levels(
    rng: np.random.Generator,
    levels: np.ndarray,
    p_in: list[float],
    p_out: list[float],
    mask: np.ndarray,
) -> np.ndarray:
    """One level per row, from p_in where mask is True and p_out elsewhere (inverse CDF)."""
    u = rng.random(len(mask))
    cdf_in, cdf_out = np.cumsum(p_in) / np.sum(p_in), np.cumsum(p_out) / np.sum(p_out)
    index = np.where(mask, np.searchsorted(cdf_in, u), np.searchsorted(cdf_out, u))
    return levels[np.minimum(index, len(levels) - 1)]


def _write(frame: pd.DataFrame, path: Path, **kwargs: Any) -> Path:
    frame.to_csv(path, index=False, lineterminator="\n", **kwargs)
    return path


def _unique_names(rng: np.random.Generator, n: int, *parts: tuple[str, ...]) -> list[tuple]:
    """n distinct (word from each of parts..., number) tuples, in random order.

    number is "" until the combinations run out, then " 2", " 3", ... (sequels).
    """
    sizes = [len(p) for p in parts]
    total = int(np.prod(sizes))
    codes = rng.permutation(max(n, total))[:n]
    digits = np.array(np.unravel_index(codes % total, sizes)).T
    number = [f" {k + 1}" if k else "" for k in codes // total]
    return [
        (*(p[d] for p, d in zip(parts, row, strict=True)), k)
        for row, k in zip(digits, number, strict=True)
    ]


def _exactly(rng: np.random.Generator, n: int, share: float) -> np.ndarray:
    """A boolean mask of n with round(share * n) True at random places."""
    mask = np.zeros(n, dtype=bool)
    mask[rng.choice(n, size=round(share * n), replace=False)] = True
    return mask


def write_movielens_100k(
    folder: Path | str,
    seed: int = 7,
    *,
    n_users: int = 300,
    n_items: int = 120,
    n_rows: int = 10_000,
    n_groups: int = 8,
) -> dict[str, Any]:
    """Write ``u.data`` (MovieLens 100K): user, item, rating 1-5, unix seconds; TAB, no header.

    Rows are in random order, as in the real file. Returns files, rows, users, items, span_days.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    p = _plant(rng, n_users, n_items, n_rows, n_groups, unique=True)
    user_ids, item_ids = rng.permutation(n_users) + 1, rng.permutation(n_items) + 1
    rating = _sample_levels(
        rng, np.arange(1, 6), [2, 6, 22, 38, 32], [10, 16, 34, 28, 12], p["in_group"]
    )
    timestamp = rng.integers(ML100K_START, ML100K_END + 1, len(p["users"]))
    frame = pd.DataFrame(
        {
            "user": user_ids[p["users"]],
            "item": item_ids[p["items"]],
            "rating": rating,
            "timestamp": timestamp,
        }
    ).iloc[rng.permutation(len(timestamp))]
    path = _write(frame, folder / "u.data", sep="\t", header=False)
    return {
        "files": {"ratings": path},
        "rows": len(frame),
        "users": int(frame["user"].nunique()),
        "items": int(frame["item"].nunique()),
        "span_days": round(float(timestamp.max() - timestamp.min()) / DAY, 2),
    }


def _movie_titles(rng: np.random.Generator, n: int) -> list[str]:
    """Invented titles with a year; ~10 % end in ", The" / ", A" like MovieLens' sorted titles."""
    words = _unique_names(rng, n, TITLE_WORDS_A, TITLE_WORDS_B)
    years = rng.integers(1930, 2018, n)
    article = _exactly(rng, n, 0.1)
    suffix = rng.choice(np.array([", The", ", A"]), n, p=[0.8, 0.2])
    return [
        f"{a} {b}{k}{s if moved else ''} ({y})"
        for (a, b, k), moved, s, y in zip(words, article, suffix, years, strict=True)
    ]


def _movie_genres(rng: np.random.Generator, group: np.ndarray) -> list[str]:
    """Pipe-separated genres, alphabetical, the first being the group's genre."""
    primary = np.array([GENRES.index(GROUP_GENRES[g % len(GROUP_GENRES)]) for g in group])
    after = np.arange(len(GENRES))[None, :] > primary[:, None]
    chance = np.minimum(0.5, 1.3 / np.maximum(1, after.sum(axis=1)))[:, None]
    extra = after & (rng.random((len(group), len(GENRES))) < chance)
    extra[:, GENRES.index("IMAX")] &= rng.random(len(group)) < 0.3  # IMAX is rare
    names = np.array(GENRES)
    return ["|".join([GENRES[p], *names[row]]) for p, row in zip(primary, extra, strict=True)]


def write_movielens_latest(
    folder: Path | str,
    seed: int = 7,
    *,
    n_users: int = 300,
    n_items: int = 120,
    n_rows: int = 10_000,
    n_groups: int = 8,
) -> dict[str, Any]:
    """Write ``ratings.csv`` and ``movies.csv`` (MovieLens latest-small layout).

    Half-star ratings (whole stars only before 2003-02-18, as in the real data), each user active
    in their own window of 3 months to 2 years inside 1996-03-29 .. 2018-09-24; movieIds sparse
    in 1..200000; ~10 % extra movies never rated; ratings sorted by userId, movieId. Returns
    files, rows, users, items, movies, half_star_min_ratings, span_days.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    p = _plant(rng, n_users, n_items, n_rows, n_groups, unique=True)
    n_extra = max(1, round(0.1 * n_items))
    n_movies = n_items + n_extra
    movie_ids = np.sort(rng.choice(200_000, size=n_movies, replace=False) + 1)
    slot = rng.permutation(n_movies)  # movie slot of each planted item, then the unrated extras
    user_ids = np.arange(1, n_users + 1)

    levels = np.arange(1, 11) / 2.0
    p_in = [0.5, 1.5, 1.0, 4.0, 3.5, 16.0, 14.0, 31.0, 11.0, 17.5]
    p_out = [3.5, 5.0, 3.0, 12.0, 8.0, 25.0, 12.0, 20.0, 5.0, 6.5]
    rating = _sample_levels(rng, levels, p_in, p_out, p["in_group"])

    window = rng.uniform(90, 730, n_users) * DAY
    start = LATEST_START + rng.random(n_users) * (LATEST_END - LATEST_START - window)
    start[np.argmin(start)] = LATEST_START
    latest = np.argmax(start + window)
    start[latest] = LATEST_END - window[latest]
    u = p["users"]
    timestamp = (start[u] + rng.random(len(u)) * window[u]).astype(np.int64)
    rating = np.where(timestamp < HALF_STARS_FROM, np.ceil(rating), rating)

    ratings = pd.DataFrame(
        {
            "userId": user_ids[u],
            "movieId": movie_ids[slot[p["items"]]],
            "rating": rating,
            "timestamp": timestamp,
        }
    ).sort_values(["userId", "movieId"], kind="stable")
    ratings_path = _write(ratings, folder / "ratings.csv", float_format="%.1f")

    group = np.empty(n_movies, dtype=np.int64)
    group[slot[:n_items]] = p["item_group"]
    group[slot[n_items:]] = rng.integers(0, n_groups, n_extra)
    genres = np.array(_movie_genres(rng, group), dtype=object)
    genres[rng.choice(n_movies, size=max(1, round(0.02 * n_movies)), replace=False)] = NO_GENRES
    movies = pd.DataFrame(
        {"movieId": movie_ids, "title": _movie_titles(rng, n_movies), "genres": genres}
    )
    movies_path = _write(movies, folder / "movies.csv", quoting=csv.QUOTE_MINIMAL)
    return {
        "files": {"ratings": ratings_path, "movies": movies_path},
        "rows": len(ratings),
        "users": int(ratings["userId"].nunique()),
        "items": int(ratings["movieId"].nunique()),
        "movies": len(movies),
        "half_star_min_ratings": int((ratings["rating"] == 0.5).sum()),
        "span_days": round(float(timestamp.max() - timestamp.min()) / DAY, 2),
    }


def _quantities(rng: np.random.Generator, n: int) -> np.ndarray:
    """Line quantities: mostly 1..24, some wholesale 48 and 96."""
    values = np.array([1, 2, 3, 4, 6, 8, 10, 12, 24, 48, 96])
    shares = [0.2, 0.12, 0.08, 0.08, 0.16, 0.04, 0.05, 0.16, 0.06, 0.035, 0.015]
    return rng.choice(values, n, p=shares)


def _invoice_times(rng: np.random.Generator, n: int) -> pd.Series:
    """Shop-hours timestamps (minute precision) in the Online Retail span, no Saturdays."""
    days = rng.integers(0, (RETAIL_END - RETAIL_START).days + 1, n)
    minutes = rng.normal(12.5 * 60, 2.3 * 60, n).clip(7 * 60, 20 * 60).astype(np.int64)
    day = pd.Series(RETAIL_START.normalize() + pd.to_timedelta(days, unit="D"))
    day += pd.to_timedelta((day.dt.day_of_week == 5).astype(np.int64), unit="D")
    return (day + pd.to_timedelta(minutes, unit="min")).clip(RETAIL_START, RETAIL_END)


def _retail_dates(times: pd.Series) -> pd.Series:
    """Format like the Online Retail export: ``12/1/2010 8:26`` (no zero padding but minutes)."""
    dt = times.dt
    day = dt.month.astype(str) + "/" + dt.day.astype(str) + "/" + dt.year.astype(str)
    return day + " " + dt.hour.astype(str) + ":" + dt.minute.astype(str).str.zfill(2)


def write_online_retail(
    folder: Path | str,
    seed: int = 7,
    *,
    n_users: int = 300,
    n_items: int = 120,
    n_rows: int = 10_000,
    n_groups: int = 8,
    guest_share: float = 0.25,
) -> dict[str, Any]:
    """Write ``online_retail.csv`` (UCI Online Retail layout), one row per invoice line.

    n_rows = customers' purchase lines. Guest lines without CustomerID come on top, guest_share
    of all purchase lines (a quarter, as in the published file). ~2 % of customer invoices are
    later cancelled by a ``C`` invoice copying some of their lines with negative Quantity, also
    on top, and a POST postage line on each invoice of a customer abroad. Returns files, rows,
    users, items (products), guest_rows, cancellation_rows, postage_rows, invoices.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_guest = round(guest_share / (1.0 - guest_share) * n_rows)
    p = _plant(rng, n_users, n_items, n_rows, n_groups, unique=False)

    # Catalog: 5-digit codes, ~15 % with a letter suffix; fixed description and price per code.
    base = rng.choice(np.arange(10_002, 90_215), size=n_items, replace=False).astype(str)
    letter = rng.choice(np.array(list("ABCDEFGLNPRSW")), n_items)
    codes = np.where(rng.random(n_items) < 0.15, np.char.add(base, letter), base)
    descriptions = np.empty(n_items, dtype=object)
    comma = _exactly(rng, n_items, 0.1)
    for g in range(n_groups):
        members = np.flatnonzero(p["item_group"] == g)
        names = _unique_names(rng, len(members), COLOURS, STYLES, CATEGORY_NOUNS[g % 8])
        for i, (colour, style, noun, k) in zip(members, names, strict=True):
            plain, with_comma = f"{colour} {style} {noun}{k}", f"{style} {noun}{k}, {colour}"
            descriptions[i] = with_comma if comma[i] else plain
    prices = np.round(np.maximum(0.1, np.round(rng.lognormal(0.9, 0.7, n_items) * 20) / 20), 2)
    prices = np.where(rng.random(n_items) < 0.3, prices - 0.06, prices).round(2).clip(0.19)

    customer_ids = rng.choice(np.arange(12_346, 18_288), size=n_users, replace=False).astype(float)
    country = rng.choice(
        np.array(["United Kingdom", "Germany", "France", "EIRE", "Spain", "Netherlands"]),
        n_users,
        p=[0.88, 0.04, 0.04, 0.02, 0.01, 0.01],
    )

    # Customers' invoices: k >= 2 per customer, lines spread at random, at most 15 lines each.
    users = p["users"]
    counts = np.bincount(users, minlength=n_users)
    n_inv = np.maximum(2, np.ceil(counts / 7).astype(np.int64))
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pos = np.arange(len(users)) - first[users]
    inv = np.where(pos < n_inv[users], pos, (rng.random(len(users)) * n_inv[users]).astype(int))
    lines = pd.DataFrame({"u": users, "inv": inv, "item": p["items"]})
    lines["inv"] = lines["inv"] * 100 + lines.groupby(["u", "inv"]).cumcount() // 15
    lines["invoice"] = lines.groupby(["u", "inv"], sort=True).ngroup()
    for _ in range(5):  # an invoice rarely lists a product twice: redraw most repeats
        again = lines.duplicated(["invoice", "item"]).to_numpy()
        users_again = lines["u"].to_numpy()[again]
        lines.loc[again, "item"] = _draw(rng, p["weights"], p["user_group"][users_again])
    n_invoices = int(lines["invoice"].max()) + 1
    inv_time = _invoice_times(rng, n_invoices)
    lines = lines.assign(customer=customer_ids[lines["u"]], country=country[lines["u"]], kind=0)
    lines["quantity"] = _quantities(rng, len(lines))

    # Guest invoices: no CustomerID, items by overall popularity.
    sizes = rng.integers(1, 16, n_guest + 1)
    n_guest_inv = int(np.searchsorted(np.cumsum(sizes), n_guest)) + 1 if n_guest else 0
    guest_inv = np.repeat(np.arange(n_guest_inv), sizes[:n_guest_inv])[:n_guest]
    popularity = np.bincount(p["items"], minlength=n_items) + 1.0
    guests = pd.DataFrame(
        {
            "invoice": n_invoices + guest_inv,
            "item": rng.choice(n_items, n_guest, p=popularity / popularity.sum()),
            "customer": np.nan,
            "country": "United Kingdom",
            "kind": 0,
            "quantity": _quantities(rng, n_guest),
        }
    )
    guest_time = _invoice_times(rng, n_guest_inv)

    # Cancellations: ~2 % of customer invoices, some of their lines, a little later.
    n_cancel = max(1, round(0.02 * n_invoices))
    cancelled = np.sort(rng.choice(n_invoices, n_cancel, replace=False))
    copied = lines[lines["invoice"].isin(cancelled)]
    keep = (rng.random(len(copied)) < 0.5) | ~copied["invoice"].duplicated().to_numpy()
    cancel_number = n_invoices + n_guest_inv + np.searchsorted(cancelled, copied["invoice"])
    cancels = copied[keep].assign(invoice=cancel_number[keep], kind=1)
    cancels["quantity"] = -cancels["quantity"]
    delay = pd.to_timedelta(rng.integers(60, 14 * 24 * 60, n_cancel), unit="min")
    cancel_time = (inv_time.iloc[cancelled].reset_index(drop=True) + delay).clip(
        RETAIL_START, RETAIL_END
    )

    # Postage: a POST line (not a product) on every invoice of a customer abroad, as in the
    # published file; drawn last, so the other lines are those of the same seed without it.
    abroad = lines[lines["country"] != "United Kingdom"].drop_duplicates("invoice")
    postage = abroad.assign(item=n_items, quantity=rng.integers(1, 4, len(abroad)))
    codes = np.append(codes, POSTAGE[0])
    descriptions = np.append(descriptions, POSTAGE[1])
    prices = np.append(prices, POSTAGE[2])

    # Number all invoices (customers', guests', cancellations) in time order from 536365.
    times = pd.concat([inv_time, guest_time, cancel_time], ignore_index=True)
    order = np.lexsort((np.arange(len(times)), times.to_numpy().astype(np.int64)))
    number = np.empty(len(times), dtype=np.int64)
    number[order] = FIRST_INVOICE + np.arange(len(times))
    out = pd.concat([lines, guests, cancels, postage], ignore_index=True)
    out = out.assign(number=number[out["invoice"]]).sort_values("number", kind="stable")
    date = _retail_dates(times).to_numpy()[out["invoice"].to_numpy()]
    prefix = np.where(out["kind"].to_numpy() == 1, "C", "")
    frame = pd.DataFrame(
        {
            "InvoiceNo": np.char.add(prefix, out["number"].to_numpy().astype(str)),
            "StockCode": codes[out["item"]],
            "Description": descriptions[out["item"]],
            "Quantity": out["quantity"].to_numpy(),
            "InvoiceDate": date,
            "UnitPrice": prices[out["item"]],
            "CustomerID": out["customer"].to_numpy(),
            "Country": out["country"].to_numpy(),
        }
    )
    path = _write(frame, folder / "online_retail.csv")
    return {
        "files": {"transactions": path},
        "rows": len(frame),
        "users": int(frame["CustomerID"].nunique()),
        "items": int(frame["StockCode"].nunique()) - 1,  # products, not POST
        "guest_rows": int(frame["CustomerID"].isna().sum()),
        "cancellation_rows": len(cancels),
        "postage_rows": len(postage),
        "invoices": int(frame["InvoiceNo"].nunique()),
    }


def write_retailrocket(
    folder: Path | str,
    seed: int = 7,
    *,
    n_users: int = 300,
    n_items: int = 120,
    n_rows: int = 10_000,
    n_groups: int = 8,
) -> dict[str, Any]:
    """Write ``events.csv`` (RetailRocket layout): timestamp ms, visitorid, event, itemid, txid.

    ~88 % views, ~8 % addtocart (each a few minutes after a view of the same item by the same
    visitor), ~4 % transaction (after an addtocart; one transactionid per visitor basket).
    Sorted by timestamp. Returns files, rows, users, items, events.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_cart, n_buy = round(0.08 * n_rows), round(0.04 * n_rows)
    p = _plant(rng, n_users, n_items, n_rows - n_cart - n_buy, n_groups, unique=False)
    visitor_ids = rng.choice(1_407_580, size=n_users, replace=False)
    item_ids = rng.choice(np.arange(3, 466_868), size=n_items, replace=False)

    margin = 4 * 3_600_000  # room after the last view for its cart and transaction
    view_ts = rng.integers(RR_START, RR_END - margin, len(p["users"]))
    carted = rng.choice(len(view_ts), n_cart, replace=False)
    cart_ts = view_ts[carted] + rng.integers(5_000, 30 * 60_000, n_cart)
    bought = np.sort(rng.choice(n_cart, n_buy, replace=False))
    buy_ts = cart_ts[bought] + rng.integers(30_000, 2 * 3_600_000, n_buy)

    # One transactionid per basket: a visitor's purchases less than 3 hours apart.
    buy_user = p["users"][carted[bought]]
    order = np.lexsort((buy_ts, buy_user))
    new_basket = np.ones(n_buy, dtype=bool)
    new_basket[1:] = (np.diff(buy_user[order]) != 0) | (np.diff(buy_ts[order]) > 3 * 3_600_000)
    basket = np.empty(n_buy, dtype=np.int64)
    basket[order] = np.cumsum(new_basket) - 1
    n_baskets = int(new_basket.sum())
    basket_ids = rng.choice(max(17_672, 2 * n_baskets), n_baskets, replace=False)

    users = np.concatenate([p["users"], p["users"][carted], buy_user])
    items = np.concatenate([p["items"], p["items"][carted], p["items"][carted[bought]]])
    n_view = len(view_ts)
    events = pd.DataFrame(
        {
            "timestamp": np.concatenate([view_ts, cart_ts, buy_ts]),
            "visitorid": visitor_ids[users],
            "event": np.repeat(["view", "addtocart", "transaction"], [n_view, n_cart, n_buy]),
            "itemid": item_ids[items],
            "transactionid": pd.array(
                np.concatenate([np.zeros(n_view + n_cart, dtype=np.int64), basket_ids[basket]]),
                dtype="Int64",
            ),
        }
    )
    events.loc[events["event"] != "transaction", "transactionid"] = pd.NA
    events = events.sort_values("timestamp", kind="stable")
    path = _write(events, folder / "events.csv")
    return {
        "files": {"events": path},
        "rows": len(events),
        "users": int(events["visitorid"].nunique()),
        "items": int(events["itemid"].nunique()),
        "events": {"view": n_view, "addtocart": n_cart, "transaction": n_buy},
    }
