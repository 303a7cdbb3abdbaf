"""A shop's data, valid under its configuration, written in the configuration's own layout.

`write_shop(settings, folder, draw)` reads what an example configuration says about the files
(recomart_core/settings.py: [ingest.interactions] delimiter, header or columns, column_map,
ignore_columns, time_offset, timestamp formats and zone, event names, returns, guests; [ratings];
[catalog] files and their columns) and writes interaction rows (and a catalog file when the
configuration reads one) that are valid under it, with the extremes real files have and our
renderings lacked:

- ratings at both ends of the scale and on its grid, and a user whose mean is near the top
  rating the bottom of the scale (the largest valid deviation from a user's mean);
- one-event users and one-event items, re-visits (the same user and item at other times);
- guests (lines without a user) when the configuration calls them guests;
- returns and cancellations by the configured rule (negative quantity, a transaction prefix);
- repeated lines of one invoice (same invoice, customer, item and minute, other quantities);
- quantities from 1 to 80,995 (the largest UCI line), prices of 0, times decades apart;
- ids as the shop writes them: leading zeros, letters, float customer ids (`17850.0`);
- lines of items that are not products ([catalog] not_products).

`inject(rows, defect, ...)` turns a share of a valid file's rows into one class of defect. The
`DEFECTS` table says which contract check each class must fail. Everything is drawn from a
numpy generator whose seed hypothesis draws (tests/test_gate_properties.py); no third-party data is
copied.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from recomart_core import schema as s
from recomart_core.settings import Settings

DAY = timedelta(days=1)
LATEST = datetime(2026, 11, 1, tzinfo=UTC)  # the newest valid event: well before any load
OLDEST = datetime(1996, 3, 29, tzinfo=UTC)  # MovieLens latest's first rating: decades back
TOP_RATINGS = 12  # a user's top ratings beside one bottom rating: deviation -12/13 of the span
HUGE_QUANTITY = 80_995  # the largest quantity on one line of the UCI Online Retail file
FILLER = {"Description": "WHITE HANGING HEART T-LIGHT HOLDER", "Country": "United Kingdom"}

# defect class -> (contract dataset, the one check it must fail, the check's column)
RAW = "raw_interactions.interactions"
DEFECTS = {
    "duplicate_lines": (RAW, "Few duplicate rows", None),
    "rating_off_scale": (RAW, "Few ratings off the scale", s.CSV_RATING),
    "missing_rating": (RAW, "Few missing ratings", None),
    "bad_timestamp": (RAW, "Few unreadable rows", None),
    "future_timestamp": (RAW, "Few events in the future", s.CSV_TIMESTAMP),
    "unknown_event": (RAW, "Known event types", s.CSV_EVENT),
    "missing_user": (RAW, "Few unreadable rows", None),
    "unknown_item": ("raw_catalog.products", "Few unknown items", None),
}


@dataclass
class Layout:
    """The file's columns in order, each with the column of ours it feeds (None: not ours), and
    how its values are written."""

    settings: Settings
    columns: list[tuple[str, str | None]]
    has_rating: bool
    interactions_file: str  # relative to the home
    catalog_file: str | None = None
    catalog_columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fmt(self):
        return self.settings.ingest.interactions

    def ours(self) -> set[str]:
        return {ours for _, ours in self.columns if ours}

    def applicable(self) -> list[str]:
        """The defect classes this layout can carry."""
        ours, fmt = self.ours(), self.fmt
        out = ["duplicate_lines", "bad_timestamp", "future_timestamp"]
        if self.has_rating:
            out += ["rating_off_scale", "missing_rating"]
        if s.CSV_EVENT in ours:
            out.append("unknown_event")
        if fmt.missing_user == "defect":
            out.append("missing_user")
        if self.catalog_file and self.settings.catalog.unknown_item_policy == "reject":
            out.append("unknown_item")
        return out


def _from_glob(pattern: str) -> str:
    """A file name the glob matches."""
    return pattern.replace("**/", "").replace("*", "shop_export")


def layout_of(settings: Settings, raw: dict[str, Any]) -> Layout:
    """The layout an example configuration (validated `settings` and its `raw` TOML) describes.

    Without a header, the file's columns are the configured ones. With one, they are every
    column of ours the configuration maps a name onto, the required ones (under our names when
    nothing maps onto them), a rating when the configuration sets a rating scale, and the
    ignored columns (written, never read)."""
    fmt = settings.ingest.interactions
    onto = {}  # ours -> the file's name (the first mapping onto it)
    for name, ours in fmt.column_map.items():
        onto.setdefault(ours, name)
    has_rating = "ratings" in raw
    if not fmt.header:
        columns = [
            (name, None if name in fmt.ignore_columns else fmt.column_map.get(name, name))
            for name in fmt.columns
        ]
        columns = [(n, o if o in s.CSV_INPUT_COLUMNS else None) for n, o in columns]
        has_rating = has_rating and any(o == s.CSV_RATING for _, o in columns)
    else:
        wanted = [*s.CSV_REQUIRED, *onto]
        if has_rating:
            wanted.append(s.CSV_RATING)
        if fmt.event_map:
            wanted.append(s.CSV_EVENT)
        ours = [c for c in s.CSV_INPUT_COLUMNS if c in wanted]
        columns = [(onto.get(c, c), c) for c in ours]
        columns += [(name, None) for name in fmt.ignore_columns]
        if s.CSV_QUANTITY in ours:  # a retail export's other columns
            columns += [(name, None) for name in FILLER]
    paths = settings.paths
    catalog = settings.catalog
    catalog_file = catalog_columns = None
    if catalog.source == "files":
        catalog_file = _from_glob(catalog.files)
        onto_catalog = {}
        for name, ours in catalog.column_map.items():
            onto_catalog.setdefault(ours, name)
        catalog_columns = [(onto_catalog.get(c, c), c) for c in (s.CATALOG_ID, "title", "category")]
    return Layout(
        settings, columns, has_rating, _from_glob(paths.interactions_glob), catalog_file,
        catalog_columns or [],
    )  # fmt: skip


# ------------------------------------------------------------------------------------- values
def _id(number: int, style: str) -> str:
    """A shop's id for a number: leading zeros, letters, or the plain number."""
    if style == "zeros":
        return f"{number:06d}"
    if style == "letters":
        return f"A{number:05d}X" if number % 2 else f"{number:05d}B"
    return str(number)


def _time_text(when: datetime, layout: Layout) -> tuple[str, str | None]:
    """(timestamp text, time_offset text or None) of an instant in the layout's format."""
    fmt = layout.fmt
    if s.CSV_TIME_OFFSET in layout.ours():
        local = when.astimezone(ZoneInfo(fmt.timezone))
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        scale = 1000 if fmt.time_offset_unit == "ms" else 1
        offset = int((local - midnight).total_seconds() * scale)
        return midnight.strftime(fmt.formats[0]), str(offset)
    form = fmt.formats[0]
    if form == "epoch_s":
        return str(int(when.timestamp())), None
    if form == "epoch_ms":
        return str(int(when.timestamp() * 1000)), None
    if form == "auto":
        return when.strftime("%Y-%m-%d %H:%M:%S"), None
    local = when.astimezone(ZoneInfo(fmt.timezone))
    text = local.strftime(form)
    if form.startswith("%m/%d/%Y"):  # the UCI file writes 12/1/2010 8:26
        text = text.replace("/0", "/").lstrip("0").replace(" 0", " ")
    return text, None


def _rating_values(settings: Settings) -> list[float]:
    r = settings.ratings
    if r.step:
        n = round((r.max - r.min) / r.step)
        return [r.min + i * r.step for i in range(n + 1)]
    return [r.min, r.min + (r.max - r.min) * 0.37, r.min + (r.max - r.min) * 0.81, r.max]


def _number(value: float) -> str:
    return f"{value:.1f}" if value != int(value) or value < 10 else str(int(value))


@dataclass
class Shop:
    """What write_shop wrote: the files, the rows as dicts of the file's columns, and counts the
    tests compare with."""

    layout: Layout
    rows: list[dict[str, str]]
    catalog: list[dict[str, str]]
    counts: dict[str, int]


def write_shop(
    settings: Settings, raw: dict[str, Any], home: Path, rng: np.random.Generator
) -> Shop:
    """Write a shop's valid data for an example configuration into home (the configuration's own
    paths), drawn with rng. Returns the Shop."""
    layout = layout_of(settings, raw)
    fmt, ours = layout.fmt, layout.ours()
    n_users = int(rng.integers(8, 31))
    n_items = int(rng.integers(TOP_RATINGS + 1, 31))
    id_style = str(rng.choice(["plain", "zeros", "letters"]))
    span_days = int(rng.choice([30, 400, 365 * 20]))
    events = list(s.EVENT_TYPES)
    event_names = {ours_: ours_ for ours_ in events}
    for file_name, ours_ in fmt.event_map.items():
        event_names.setdefault(ours_, file_name)
        if event_names[ours_] == ours_:
            event_names[ours_] = file_name
    ratings = _rating_values(settings)
    not_products = settings.catalog.not_products
    is_retail = s.CSV_TRANSACTION in ours and s.CSV_QUANTITY in ours
    start = LATEST - span_days * DAY

    def instant(fraction: float) -> datetime:
        return (start + (LATEST - start) * fraction).replace(microsecond=0, second=0)

    records: list[dict[str, Any]] = []  # ours -> value, before formatting
    invoice = 536_365
    for user in range(n_users):
        one_event = user % 7 == 3  # one-event users
        n = 1 if one_event else int(rng.integers(2, 10))
        for j in range(n):
            item = (user * 3 + j * 5 + int(rng.integers(0, n_items))) % n_items
            # distinct times per user: a drawn instant, then j minutes apart (the same line
            # twice is a defect, not valid data)
            when = instant(rng.uniform(0, 0.98)) + timedelta(minutes=j, seconds=user % 60)
            event = s.PURCHASE if is_retail else str(rng.choice(events))
            rec = {"user": user, "item": item, "when": when, "event": event,
                   "rating": float(rng.choice(ratings)), "quantity": int(rng.integers(1, 13)),
                   "price": float(rng.choice([0.0, 0.29, 1.25, 2.55, 12.75])),
                   "invoice": str(invoice)}  # fmt: skip
            invoice += 1
            records.append(rec)
    # extremes: both ends of the scale; a user whose other ratings are at the top rates the
    # bottom (the largest deviation from a user's mean); a re-visit of the same item later;
    # the largest UCI quantity
    top = n_users  # a new user: twelve items at the top of the scale, one at the bottom
    for j in range(TOP_RATINGS):
        records.append({**records[0], "user": top, "item": j, "rating": ratings[-1],
                        "when": instant(0.2 + j / 50), "invoice": str(invoice + j)})  # fmt: skip
    records.append({**records[0], "user": top, "item": TOP_RATINGS, "rating": ratings[0],
                    "when": instant(0.9), "invoice": str(invoice + TOP_RATINGS)})  # fmt: skip
    records.append({**records[1], "when": records[1]["when"] + 3 * DAY + timedelta(minutes=7),
                    "invoice": str(invoice + 20)})  # a re-visit, days later  # fmt: skip
    records.append({**records[3], "when": start - DAY})  # the oldest event
    counts = {"repeated_invoice_lines": 0, "returns": 0, "guests": 0, "not_products": 0}
    if is_retail:  # the largest UCI line; an invoice lists a product on two more lines
        records[2]["quantity"] = HUGE_QUANTITY
        for rec in records[5:8]:
            for extra in (1, 3):  # other quantities than the line's: not the same line twice
                records.append({**rec, "quantity": rec["quantity"] + extra})
                counts["repeated_invoice_lines"] += 1
        returns = fmt.returns
        if fmt.returns.negative_quantity or returns.transaction_prefix:
            for rec in records[8:10]:
                cancelled = returns.transaction_prefix + rec["invoice"]
                later = rec["when"] + DAY
                records.append(
                    {**rec, "quantity": -rec["quantity"], "when": later, "invoice": cancelled}
                )
                counts["returns"] += 1
    if fmt.missing_user == "guest":
        for rec in records[10:13]:
            records.append({**rec, "user": None})
            counts["guests"] += 1
    for product in not_products[:2]:
        records.append({**records[4], "item": product})
        counts["not_products"] += 1

    def item_text(item: Any) -> str:
        return item if isinstance(item, str) else _id(1000 + item, id_style)

    rows = []
    for rec in records:
        stamp, offset = _time_text(rec["when"], layout)
        user = "" if rec["user"] is None else _id(17_000 + rec["user"], id_style)
        if user and is_retail and id_style == "plain":
            user += ".0"  # a float-typed export's customer id
        values = {
            s.CSV_USER: user,
            s.CSV_ITEM: item_text(rec["item"]),
            s.CSV_TIMESTAMP: stamp,
            s.CSV_TIME_OFFSET: offset,
            s.CSV_RATING: _number(rec["rating"]),
            s.CSV_EVENT: event_names[rec["event"]],
            s.CSV_QUANTITY: str(rec["quantity"]),
            s.CSV_UNIT_PRICE: f"{rec['price']:.2f}",
            s.CSV_VALUE: f"{rec['price'] * rec['quantity']:.2f}",
            s.CSV_TRANSACTION: rec["invoice"] if is_retail or rec["event"] == s.PURCHASE else "",
        }
        row = {}
        for name, col in layout.columns:
            row[name] = values[col] if col else FILLER.get(name, "NA")
        rows.append(row)
    catalog = []
    if layout.catalog_file:
        for item in range(n_items):
            names = {s.CATALOG_ID: item_text(item), "title": f"Title {item}, the sequel",
                     "category": "Adventure|Animation" if item % 2 else "Drama"}  # fmt: skip
            catalog.append({name: names[ours_] for name, ours_ in layout.catalog_columns})
    shop = Shop(layout, rows, catalog, {**counts, "rows": len(rows)})
    write_files(shop, home)
    return shop


def write_files(shop: Shop, home: Path, rows: list[dict[str, str]] | None = None) -> Path:
    """Write the shop's interaction file (rows, default its valid rows) and its catalog file in
    the layout; returns the interaction file's path."""
    layout = shop.layout
    path = home / layout.interactions_file
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_delimited(path, layout, rows if rows is not None else shop.rows)
    if layout.catalog_file:
        catalog_path = home / layout.catalog_file
        catalog_path.parent.mkdir(parents=True, exist_ok=True)
        names = [name for name, _ in layout.catalog_columns]
        with catalog_path.open("w", newline="") as fh:
            delimiter = layout.settings.catalog.delimiter
            writer = csv.DictWriter(fh, names, delimiter=delimiter, lineterminator="\n")
            writer.writeheader()
            writer.writerows(shop.catalog)
    return path


def _write_delimited(path: Path, layout: Layout, rows: list[dict[str, str]]) -> None:
    """CSV with the layout's delimiter (any length): fields quoted only when they hold it, a
    quote or a line break."""
    delimiter = layout.fmt.delimiter
    names = [name for name, _ in layout.columns]

    def field_text(value: str) -> str:
        if delimiter in value or '"' in value or "\n" in value:
            return '"' + value.replace('"', '""') + '"'
        return value

    lines = [delimiter.join(field_text(n) for n in names)] if layout.fmt.header else []
    lines += [delimiter.join(field_text(row[n]) for n in names) for row in rows]
    path.write_text("\n".join(lines) + "\n")


def inject(shop: Shop, defect: str, share: float, rng: np.random.Generator) -> list[dict[str, str]]:
    """A copy of the shop's rows where `share` of them carry one defect class (added rows for
    duplicates, altered copies of valid rows otherwise). The altered rows are new events (a
    later time), so that only the defect tells them apart."""
    layout = shop.layout
    by_ours = {ours: name for name, ours in layout.columns if ours}
    rows = [dict(r) for r in shop.rows]
    n = max(1, int(share * len(rows) / (1 - share)) + 1)
    picked = [rows[i] for i in rng.choice(len(rows), n, replace=False)]
    ratings = layout.settings.ratings
    out = []
    for row in picked:
        bad = dict(row)
        if defect == "duplicate_lines":
            out.append(bad)
            continue
        if defect == "rating_off_scale":
            bad[by_ours[s.CSV_RATING]] = _number(ratings.max + max(ratings.step, 1.0))
        elif defect == "missing_rating":
            bad[by_ours[s.CSV_RATING]] = ""
        elif defect == "bad_timestamp":
            bad[by_ours[s.CSV_TIMESTAMP]] = "not-a-date"
        elif defect == "future_timestamp":
            bad[by_ours[s.CSV_TIMESTAMP]] = _time_text(LATEST + 50 * 365 * DAY, layout)[0]
        elif defect == "unknown_event":
            bad[by_ours[s.CSV_EVENT]] = "teleport"
        elif defect == "missing_user":
            bad[by_ours[s.CSV_USER]] = ""
        elif defect == "unknown_item":
            bad[by_ours[s.CSV_ITEM]] = "NOT-IN-CATALOG-" + bad[by_ours[s.CSV_ITEM]]
        if defect in ("missing_rating", "unknown_item", "rating_off_scale", "unknown_event"):
            # a new event: another user, so no kept row of the valid data is its duplicate
            bad[by_ours[s.CSV_USER]] = "defect-" + (bad[by_ours[s.CSV_USER]] or "guest")
        out.append(bad)
    return rows + out
