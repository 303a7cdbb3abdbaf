"""Deterministic synthetic shop data: an interactions CSV with planted defects, a product catalog
in the Fake Store API's shape, and a manifest recording sizes and every injected defect.

The data carry structure a recommender can learn: users prefer a few categories and, inside them,
items close to their latent taste; item popularity is long-tailed; user activity is heavy-tailed;
activity follows a daily and weekly rhythm over the whole period; tastes do not drift, so the
future is predictable from the past. Everything is built as whole numpy columns (no per-row
Python loops) from one seed: the same arguments give byte-identical files.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.csv as pacsv

from recomart_core import schema
from recomart_core.memory import bulk_allocation

INTERACTIONS_FILE = Path("interactions") / "interactions.csv"
CATALOG_FILE = Path("catalog") / "products.json"
MANIFEST_FILE = Path("manifest.json")
IMAGE_URL = "https://images.recomart.example/{id}.jpg"

# Defect classes, in the manifest's order, and their share of all defective rows.
DUPLICATE = "duplicate"
MISSING_RATING = "missing_rating"
RATING_OUT_OF_RANGE = "rating_out_of_range"
UNKNOWN_ITEM = "unknown_item"
BAD_TIMESTAMP = "bad_timestamp"
FUTURE_TIMESTAMP = "future_timestamp"
DEFECT_SHARES = {
    DUPLICATE: 0.25,
    MISSING_RATING: 0.20,
    RATING_OUT_OF_RANGE: 0.20,
    UNKNOWN_ITEM: 0.15,
    BAD_TIMESTAMP: 0.20,
}
# Every class the generator can inject: future timestamps only when `defect_shares` asks for them.
DEFECT_CLASSES = (*DEFECT_SHARES, FUTURE_TIMESTAMP)
# A future timestamp is the row's own time moved this far ahead: after any real "now", and the
# same bytes on every run (the generator never reads the clock).
FUTURE_SHIFT_DAYS = 50 * 365
OUT_OF_RANGE_RATINGS = (0, 6, 7, 10, -1)
# Unparseable timestamps: fixed words, or the row's own timestamp with one part made impossible
# (character slice of "YYYY-MM-DD HH:MM:SS" -> replacement).
BAD_TIMESTAMP_WORDS = ("not-a-date", "yesterday")
BAD_TIMESTAMP_EDITS = ((slice(5, 10), "02-30"), (slice(11, 16), "25:61"), (slice(5, 7), "13"))


@dataclass(frozen=True)
class CategorySpec:
    """A product category: its share of the catalog, price distribution and product nouns."""

    name: str
    share: float
    median_price: float
    price_sigma: float
    nouns: tuple[str, ...]


CATEGORIES = (
    CategorySpec(
        "men's clothing", 0.16, 35.0, 0.5,
        ("Shirt", "Jacket", "Hoodie", "Chinos", "Sweater", "Polo", "Jeans", "T-Shirt"),
    ),
    CategorySpec(
        "women's clothing", 0.20, 30.0, 0.55,
        ("Dress", "Blouse", "Cardigan", "Skirt", "Rain Jacket", "Top", "Jumpsuit", "Coat"),
    ),
    CategorySpec(
        "jewelery", 0.08, 120.0, 0.9,
        ("Ring", "Necklace", "Bracelet", "Earrings", "Pendant", "Anklet"),
    ),
    CategorySpec(
        "electronics", 0.18, 150.0, 0.9,
        ("Headphones", "SSD", "Monitor", "Speaker", "Keyboard", "Charger", "Webcam", "Router"),
    ),
    CategorySpec(
        "home & kitchen", 0.17, 40.0, 0.7,
        ("Kettle", "Pan", "Knife Set", "Lamp", "Blender", "Cushion", "Mug Set", "Toaster"),
    ),
    CategorySpec(
        "sports & outdoors", 0.12, 45.0, 0.7,
        ("Yoga Mat", "Water Bottle", "Tent", "Backpack", "Dumbbells", "Running Shoes"),
    ),
    CategorySpec(
        "books", 0.09, 15.0, 0.4,
        ("Novel", "Cookbook", "Travel Guide", "Biography", "Poetry Collection", "Field Guide"),
    ),
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Slim", "Premium", "Lightweight", "Vintage", "Everyday", "Modern", "Compact",
    "Deluxe", "Essential", "Eco", "Pro",
)  # fmt: skip
BRANDS = ("Northwind", "Lumen", "Oakridge", "Brightline", "Tidewater", "Kestrel", "Maple & Co")
FEATURES = (
    "Built to last and easy to care for.",
    "A customer favourite for everyday use.",
    "Thoughtfully designed with a clean look.",
    "Great value for the quality.",
    "Made from responsibly sourced materials.",
    "A reliable choice that fits any routine.",
)

# Knobs of the planted structure.
N_FACTORS = 8  # dimension of the latent tastes
CATEGORY_CONCENTRATION = 0.2  # Dirichlet alpha of a user's category preferences (small = focused)
POPULARITY_SIGMA = 1.7  # lognormal sigma of item popularity (the long tail)
ACTIVITY_SIGMA = 1.1  # lognormal sigma of user activity
TASTE_WEIGHT = 2.0  # weight of the latent affinity in item choice
WEEKDAY_WEIGHTS = np.array([0.95, 0.92, 0.94, 0.98, 1.05, 1.14, 1.06])  # Monday .. Sunday
HOUR_WEIGHTS = np.array([
    3, 2, 1.5, 1, 1, 1.5, 2.5, 4, 5, 5.5, 6, 6,  # 00:00 .. 11:00 UTC
    6.5, 6, 5.5, 5.5, 6, 6.5, 7.5, 9, 9.5, 8.5, 6.5, 4.5,  # 12:00 .. 23:00 UTC
])  # fmt: skip
CELLS_PER_BLOCK = 2_000_000  # users x items probabilities held in memory at once


@dataclass(frozen=True)
class World:
    """Latent truth: item categories, popularity, quality and factors; user tastes and activity."""

    item_category: np.ndarray  # (n_items,) index into CATEGORIES
    item_log_popularity: np.ndarray  # (n_items,)
    item_quality: np.ndarray  # (n_items,) standard normal
    item_factors: np.ndarray  # (n_items, N_FACTORS)
    user_category_pref: np.ndarray  # (n_users, n_categories), rows sum to 1
    user_factors: np.ndarray  # (n_users, N_FACTORS)
    user_activity: np.ndarray  # (n_users,) relative activity, sums to 1


def generate(
    out_dir: Path,
    *,
    seed: int = 42,
    n_users: int = 5000,
    n_items: int = 1000,
    n_interactions: int = 100_000,
    start: str = "2026-05-01",
    days: int = 184,
    defect_rate: float = 0.01,
    defect_shares: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Write interactions CSV, catalog JSON and manifest under out_dir; return the manifest.

    out_dir/interactions/interactions.csv holds n_interactions data rows (defective ones
    included), timestamps in UTC within [start, start + days). out_dir/catalog/products.json
    holds n_items products. About defect_rate of the rows carry exactly one defect each, listed
    in out_dir/manifest.json by class with their 1-based line numbers (header = line 1).
    defect_shares (default DEFECT_SHARES) splits the defective rows between the classes: a class
    left out gets none, e.g. {"duplicate": 1} makes every defective row a duplicate. Shares are
    normalised to sum to 1.

    Manifest: the arguments (seed, n_users, n_items, n_interactions, start, days, defect_rate,
    and defect_shares when given);
    files (paths relative to out_dir); total_rows, clean_rows, defect_rows; defects:
    {class: {"count", "lines"}} for the classes of DEFECT_SHARES, in that order, then any other
    class of DEFECT_CLASSES that has rows (future_timestamp); catalog:
    {"products", "categories": {name: size}}; cold_items (catalog items absent from the CSV).
    """
    _check_arguments(n_users, n_items, n_interactions, days, defect_rate)
    shares = _defect_shares(defect_shares)
    item_rng, user_rng, event_rng, defect_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(4)
    )
    world = _make_world(item_rng, user_rng, n_users, n_items)
    products = _make_products(item_rng, world)

    defect_counts = _split_defects(round(defect_rate * n_interactions), shares)
    n_base = n_interactions - defect_counts[DUPLICATE]
    base = _make_interactions(event_rng, world, n_base, start, days)
    rows, defect_lines = _inject_defects(defect_rng, base, n_items, defect_counts)

    out_dir = Path(out_dir)
    _write_csv(rows, out_dir / INTERACTIONS_FILE)
    _write_json(products, out_dir / CATALOG_FILE)
    manifest = _manifest(
        params={
            "seed": seed,
            "n_users": n_users,
            "n_items": n_items,
            "n_interactions": n_interactions,
            "start": start,
            "days": days,
            "defect_rate": defect_rate,
            **({"defect_shares": shares} if defect_shares is not None else {}),
        },
        rows=rows,
        defect_lines=defect_lines,
        products=products,
    )
    _write_json(manifest, out_dir / MANIFEST_FILE)
    return manifest


def _check_arguments(
    n_users: int, n_items: int, n_interactions: int, days: int, defect_rate: float
) -> None:
    if min(n_users, n_items, n_interactions, days) < 1:
        raise ValueError("n_users, n_items, n_interactions and days must all be at least 1")
    if not 0 <= defect_rate <= 0.5:
        raise ValueError(f"defect_rate must be within [0, 0.5], got {defect_rate}")


def _defect_shares(given: Mapping[str, float] | None) -> dict[str, float]:
    """Every class of DEFECT_CLASSES with its share: the given ones (normalised), others 0."""
    if given is None:
        return {name: DEFECT_SHARES.get(name, 0.0) for name in DEFECT_CLASSES}
    unknown = set(given) - set(DEFECT_CLASSES)
    if unknown:
        raise ValueError(f"unknown defect classes {sorted(unknown)}; known: {DEFECT_CLASSES}")
    total = sum(given.values())
    if min(given.values(), default=0) < 0 or total <= 0:
        raise ValueError(f"defect_shares must be non-negative with a positive sum, got {given}")
    return {name: given.get(name, 0) / total for name in DEFECT_CLASSES}


# ---------------------------------------------------------------------------------------------
# Latent world and catalog


def _make_world(
    item_rng: np.random.Generator, user_rng: np.random.Generator, n_users: int, n_items: int
) -> World:
    """Draw the latent truth: items from item_rng only, users from user_rng only."""
    category = item_rng.permutation(np.repeat(np.arange(len(CATEGORIES)), _category_sizes(n_items)))
    scale = N_FACTORS**-0.25  # so a user-item dot product has unit variance
    activity = user_rng.lognormal(0.0, ACTIVITY_SIGMA, n_users)
    concentration = np.full(len(CATEGORIES), CATEGORY_CONCENTRATION)
    return World(
        item_category=category,
        item_log_popularity=item_rng.normal(0.0, POPULARITY_SIGMA, n_items),
        item_quality=item_rng.normal(0.0, 1.0, n_items),
        item_factors=item_rng.normal(0.0, scale, (n_items, N_FACTORS)),
        user_category_pref=user_rng.dirichlet(concentration, n_users),
        user_factors=user_rng.normal(0.0, scale, (n_users, N_FACTORS)),
        user_activity=activity / activity.sum(),
    )


def _category_sizes(n_items: int) -> np.ndarray:
    """Items per category: shares of n_items by largest remainder, at least 1 each if possible."""
    shares = np.array([c.share for c in CATEGORIES])
    exact = shares / shares.sum() * n_items
    sizes = np.floor(exact).astype(np.int64)
    leftover = n_items - sizes.sum()
    sizes[np.argsort(-(exact - sizes), kind="stable")[:leftover]] += 1
    if n_items >= len(CATEGORIES):
        for empty in np.flatnonzero(sizes == 0):
            sizes[np.argmax(sizes)] -= 1
            sizes[empty] = 1
    return sizes


def _make_products(rng: np.random.Generator, world: World) -> list[dict[str, Any]]:
    """Build the catalog: one Fake Store-shaped dict per item, ids 1..n_items.

    Every text is picked from tables of the few distinct titles and descriptions (brand x
    adjective x category noun x feature) by numpy indexing; the only pass over the items is the
    one that puts their values into dicts."""
    n = len(world.item_category)
    median = np.array([c.median_price for c in CATEGORIES])[world.item_category]
    sigma = np.array([c.price_sigma for c in CATEGORIES])[world.item_category]
    price = np.maximum(np.round(median * np.exp(rng.normal(0.0, sigma)), 2), 0.99)
    rate = np.clip(np.round(3.5 + 0.6 * world.item_quality + rng.normal(0, 0.3, n), 1), 1.0, 5.0)
    popularity = np.exp(world.item_log_popularity)
    count = rng.poisson(60 * popularity / popularity.mean() * rng.uniform(0.5, 1.5, n))
    noun_pick = rng.integers(0, 1 << 30, n)
    adjective = rng.integers(0, len(ADJECTIVES), n)
    brand = rng.integers(0, len(BRANDS), n)
    feature = rng.integers(0, len(FEATURES), n)
    category = world.item_category
    n_nouns = np.array([len(c.nouns) for c in CATEGORIES])
    noun = noun_pick % n_nouns[category]
    # title of (brand, adjective, category, noun); description adds the feature
    titles = np.empty((len(BRANDS), len(ADJECTIVES), len(CATEGORIES), n_nouns.max()), object)
    descriptions = np.empty((*titles.shape, len(FEATURES)), object)
    for b, a, c, k in np.ndindex(titles.shape):
        spec = CATEGORIES[c]
        if k < len(spec.nouns):
            titles[b, a, c, k] = title = f"{BRANDS[b]} {ADJECTIVES[a]} {spec.nouns[k]}"
            for f, text in enumerate(FEATURES):
                descriptions[b, a, c, k, f] = f"{title}, from our {spec.name} range. {text}"
    ids = np.arange(1, n + 1)
    columns = zip(
        ids.tolist(),
        titles[brand, adjective, category, noun].tolist(),
        price.tolist(),
        descriptions[brand, adjective, category, noun, feature].tolist(),
        np.array([c.name for c in CATEGORIES], object)[category].tolist(),
        [IMAGE_URL.format(id=i) for i in ids.tolist()],
        rate.tolist(),
        count.tolist(),
        strict=True,
    )
    with bulk_allocation():
        return [
            {
                "id": i,
                "title": title,
                "price": p,
                "description": description,
                "category": name,
                "image": image,
                "rating": {"rate": r, "count": c},
            }
            for i, title, p, description, name, image, r, c in columns
        ]


# ---------------------------------------------------------------------------------------------
# Clean interactions


def _make_interactions(
    rng: np.random.Generator, world: World, n_rows: int, start: str, days: int
) -> dict[str, np.ndarray]:
    """Sample n_rows clean rows as columns: 0-based user/item, epoch seconds; sorted by time."""
    n_users = len(world.user_activity)
    user = np.repeat(np.arange(n_users), _rows_per_user(rng, world.user_activity, n_rows))
    item = _sample_items(rng, world, user)
    start_s = int(np.datetime64(start, "s").astype(np.int64))
    ts = _sample_times(rng, user, start_s, days)
    like = _standardise(
        np.einsum("ij,ij->i", world.user_factors[user], world.item_factors[item])
        + 0.5 * world.item_quality[item]
    )
    rating = np.clip(np.rint(3.4 + 1.0 * like + rng.normal(0.0, 0.7, n_rows)), 1, 5)
    event = _sample_events(rng, like)
    order = np.lexsort((item, user, ts))
    return {
        "user": user[order],
        "item": item[order],
        "rating": rating.astype(np.int64)[order],
        "ts": ts[order],
        "event": event[order],
    }


def _rows_per_user(rng: np.random.Generator, activity: np.ndarray, n_rows: int) -> np.ndarray:
    """Heavy-tailed rows per user; every user gets one row first if there are enough rows."""
    floor = 1 if n_rows >= len(activity) else 0
    return floor + rng.multinomial(n_rows - floor * len(activity), activity)


def _sample_items(rng: np.random.Generator, world: World, user: np.ndarray) -> np.ndarray:
    """One item per row, from each user's own distribution over items.

    p(item | user) is proportional to popularity (normalised within the item's category) times
    the user's preference for that category times exp(TASTE_WEIGHT * latent affinity). Users are
    processed in blocks: each block's per-user cumulative probabilities are shifted by the user's
    position in the block (row r spans [r, r + 1]) and flattened, so a single np.searchsorted
    samples every row of the block. Items are laid out grouped by category, so the category
    preference is added one column slice per category.
    """
    n_users, n_items = len(world.user_activity), len(world.item_category)
    layout = np.argsort(world.item_category, kind="stable")  # column j holds item layout[j]
    category = world.item_category[layout]
    popularity = np.exp(world.item_log_popularity[layout])
    category_mass = np.bincount(category, popularity, minlength=len(CATEGORIES))
    base_logit = np.log(popularity) - np.log(category_mass[category])
    log_pref = np.log(np.maximum(world.user_category_pref, 1e-12))
    slices = np.searchsorted(category, np.arange(len(CATEGORIES) + 1))
    factors_t = np.ascontiguousarray(world.item_factors[layout].T)
    item = np.empty(len(user), dtype=np.int64)
    bounds = np.searchsorted(user, np.arange(n_users + 1))  # rows of user u: bounds[u]:bounds[u+1]
    block = max(1, CELLS_PER_BLOCK // n_items)
    for first in range(0, n_users, block):
        last = min(first + block, n_users)
        # Logits stay within about [-60, 30]: exp() neither overflows nor underflows a whole row.
        cum = world.user_factors[first:last] @ factors_t
        cum *= TASTE_WEIGHT
        cum += base_logit
        for c in range(len(CATEGORIES)):
            cum[:, slices[c] : slices[c + 1]] += log_pref[first:last, c : c + 1]
        np.exp(cum, out=cum)
        np.cumsum(cum, axis=1, out=cum)
        cum /= cum[:, -1:]
        cum += np.arange(last - first)[:, None]
        rows = slice(bounds[first], bounds[last])
        local = user[rows] - first
        flat_index = np.searchsorted(cum.reshape(-1), local + rng.random(len(local)), side="right")
        item[rows] = layout[np.clip(flat_index - local * n_items, 0, n_items - 1)]
    return item


def _sample_times(
    rng: np.random.Generator, user: np.ndarray, start_s: int, days: int
) -> np.ndarray:
    """Epoch seconds with a weekly and daily rhythm, unique per user (no two events in 1 s)."""
    first_weekday = (start_s // 86400 + 3) % 7  # 1970-01-01 was a Thursday (Monday = 0)
    day_weight = WEEKDAY_WEIGHTS[(first_weekday + np.arange(days)) % 7]
    n = len(user)
    day = rng.choice(days, size=n, p=day_weight / day_weight.sum())
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    ts = start_s + day * 86400 + hour * 3600 + rng.integers(0, 3600, n)
    end_s = start_s + days * 86400
    while True:  # a few passes at most: move same-second clashes of a user one second on
        order = np.lexsort((ts, user))
        clash = (user[order][1:] == user[order][:-1]) & (ts[order][1:] == ts[order][:-1])
        if not clash.any():
            return ts
        moved = order[1:][clash]
        ts[moved] += 1
        ts[moved[ts[moved] >= end_s]] = start_s


def _standardise(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / (x.std() or 1.0)


def _sample_events(rng: np.random.Generator, like: np.ndarray) -> np.ndarray:
    """Event types: mostly views; carts and (rarer) purchases more likely when the user likes it."""
    p_purchase = 1 / (1 + np.exp(3.6 - 1.2 * like))
    p_cart = 1 / (1 + np.exp(2.4 - 0.7 * like))
    draw = rng.random(len(like))
    view, cart, purchase = schema.EVENT_TYPES
    return np.where(draw < p_purchase, purchase, np.where(draw < p_purchase + p_cart, cart, view))


# ---------------------------------------------------------------------------------------------
# Defects


def _split_defects(n_defects: int, shares: dict[str, float]) -> dict[str, int]:
    """Defective rows per class of DEFECT_CLASSES, by largest remainder of `shares`."""
    exact = np.array([shares[name] for name in DEFECT_CLASSES]) * n_defects
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(-(exact - counts), kind="stable")[: n_defects - counts.sum()]] += 1
    return dict(zip(DEFECT_CLASSES, counts.tolist(), strict=True))


def _inject_defects(
    rng: np.random.Generator, base: dict[str, np.ndarray], n_items: int, counts: dict[str, int]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Corrupt some rows (one defect each) and insert duplicate copies later in the file.

    Returns the final CSV columns (1-based ids, rating with NaN for missing, timestamp text) and,
    per defect class, the 1-based line numbers of its rows. Each defective row has one defect;
    duplicates copy rows that stay clean.
    """
    n = len(base["user"])
    perm = rng.permutation(n)
    sources, perm = perm[: counts[DUPLICATE]], perm[counts[DUPLICATE] :]
    # Bad timestamps hide the time, so their rows must differ in (user, item) to stay distinct.
    _, first_seen = np.unique(base["user"][perm] * n_items + base["item"][perm], return_index=True)
    bad_at = np.sort(first_seen)[: counts[BAD_TIMESTAMP]]
    bad_ts, perm = perm[bad_at], np.delete(perm, bad_at)
    picked = {BAD_TIMESTAMP: bad_ts}
    for name in (MISSING_RATING, RATING_OUT_OF_RANGE, UNKNOWN_ITEM, FUTURE_TIMESTAMP):
        picked[name], perm = perm[: counts[name]], perm[counts[name] :]
    if any(len(picked[name]) < counts[name] for name in picked):
        raise ValueError("defect_rate too high for this many interactions")

    rating = base["rating"].astype(np.float64)
    rating[picked[MISSING_RATING]] = np.nan
    rating[picked[RATING_OUT_OF_RANGE]] = rng.choice(
        OUT_OF_RANGE_RATINGS, len(picked[RATING_OUT_OF_RANGE])
    )
    item = base["item"] + 1
    item[picked[UNKNOWN_ITEM]] = n_items + rng.integers(1, n_items + 1, len(picked[UNKNOWN_ITEM]))
    ts = base["ts"].copy()
    ts[picked[FUTURE_TIMESTAMP]] += FUTURE_SHIFT_DAYS * 86400  # no draw: default bytes unchanged
    ts_text = _format_times(ts)
    ts_text[bad_ts] = _break_times(rng, ts_text[bad_ts])
    clean = {
        schema.CSV_USER: base["user"] + 1,
        schema.CSV_ITEM: item,
        schema.CSV_RATING: rating,
        schema.CSV_TIMESTAMP: ts_text,
        schema.CSV_EVENT: base["event"],
    }

    # Place copy k right before clean row insert_at[k], somewhere after its source.
    insert_at = rng.integers(sources + 1, n + 1) if len(sources) else sources
    order = np.lexsort(
        (
            np.concatenate([np.zeros(n), np.arange(len(sources))]),
            np.concatenate([np.ones(n), np.zeros(len(sources))]),
            np.concatenate([np.arange(n), insert_at]),
        )
    )
    rows = {name: np.concatenate([col, col[sources]])[order] for name, col in clean.items()}
    line = np.empty(len(order), dtype=np.int64)
    line[order] = np.arange(len(order)) + 2  # header is line 1
    lines = {DUPLICATE: np.sort(line[n:])}
    lines.update({name: np.sort(line[idx]) for name, idx in picked.items()})
    listed = [name for name in DEFECT_CLASSES if name in DEFECT_SHARES or counts[name]]
    return rows, {name: lines[name] for name in listed}


def _format_times(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds -> 'YYYY-MM-DD HH:MM:SS' (UTC), as a fixed-width string array."""
    text = np.datetime_as_string(ts.astype("datetime64[s]"), unit="s").astype("U19")
    return np.char.replace(text, "T", " ")


def _break_times(rng: np.random.Generator, text: np.ndarray) -> np.ndarray:
    """Make each timestamp unparseable: a fixed word, or one impossible part of its own text."""
    chars = text.astype("U19").view("U1").reshape(len(text), 19).copy()
    form = rng.integers(0, len(BAD_TIMESTAMP_WORDS) + len(BAD_TIMESTAMP_EDITS), len(text))
    for k, (where, replacement) in enumerate(BAD_TIMESTAMP_EDITS):
        chars[form == k + len(BAD_TIMESTAMP_WORDS), where] = list(replacement)
    broken = chars.view("U19").ravel()
    for k, word in enumerate(BAD_TIMESTAMP_WORDS):
        broken[form == k] = word
    return broken


# ---------------------------------------------------------------------------------------------
# Output


def _write_csv(rows: dict[str, np.ndarray], path: Path) -> None:
    """Write the columns as CSV: plain unquoted values, empty field for a missing rating."""
    rating = rows[schema.CSV_RATING]
    table = pa.table(
        {
            schema.CSV_USER: pa.array(rows[schema.CSV_USER], pa.int64()),
            schema.CSV_ITEM: pa.array(rows[schema.CSV_ITEM], pa.int64()),
            schema.CSV_RATING: pa.array(
                np.nan_to_num(rating).astype(np.int64), pa.int64(), mask=np.isnan(rating)
            ),
            schema.CSV_TIMESTAMP: pa.array(rows[schema.CSV_TIMESTAMP].tolist(), pa.string()),
            schema.CSV_EVENT: pa.array(rows[schema.CSV_EVENT].tolist(), pa.string()),
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write((",".join(schema.CSV_BASIC) + "\n").encode())
        options = pacsv.WriteOptions(include_header=False, quoting_style="none")
        pacsv.write_csv(table, fh, options)


def _write_json(data: Any, path: Path) -> None:
    """`data` as JSON indented by 2, UTF-8, ending in a newline: the bytes of
    `json.dumps(data, indent=2, ensure_ascii=False)`, written by orjson (~30x faster)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def _manifest(
    params: dict[str, Any],
    rows: dict[str, np.ndarray],
    defect_lines: dict[str, np.ndarray],
    products: list[dict[str, Any]],
) -> dict[str, Any]:
    """Sizes, files, per-class defect counts and line numbers, clean row and cold item counts."""
    total = len(rows[schema.CSV_USER])
    n_defects = sum(len(lines) for lines in defect_lines.values())
    n_items = params["n_items"]
    item = rows[schema.CSV_ITEM]
    seen = np.bincount(item[item <= n_items], minlength=n_items + 1)[1:]
    names = Counter(product["category"] for product in products)
    categories = {c.name: names[c.name] for c in CATEGORIES if c.name in names}
    return {
        **params,
        "files": {
            "interactions": INTERACTIONS_FILE.as_posix(),
            "catalog": CATALOG_FILE.as_posix(),
        },
        "total_rows": total,
        "clean_rows": total - n_defects,
        "defect_rows": n_defects,
        "defects": {
            name: {"count": len(lines), "lines": lines.tolist()}
            for name, lines in defect_lines.items()
        },
        "catalog": {"products": len(products), "categories": categories},
        "cold_items": int((seen == 0).sum()),
    }
