"""How the text fields of an interaction file become typed values, as DuckDB SQL over whole columns.

- ids (user, item, transaction): text as the shop writes it, trimmed; `007` stays `007`. A whole
  number written by a float-typed export (`17850.0`) reads as `17850`. Longer than
  schema.ID_MAX_LENGTH characters, or holding a control character (schema.ID_CONTROL, the API's
  rule too): unparseable.
- timestamps: [ingest.interactions] timestamp_format: `auto` (ISO 8601 with or without an offset,
  epoch seconds or milliseconds), `epoch_s`, `epoch_ms`, or strptime formats such as
  `%m/%d/%Y %H:%M`; a text without an offset is local time in `timezone`. Stored as UTC. An event
  time before YEAR_MIN or after YEAR_MAX (year 0000, say) is `timestamp out of range`.
- time_offset (a file's column mapped onto it, e.g. Diginetica's `timeframe`, the milliseconds
  since the session began beside an `eventdate` of `2016-05-09`): a number of `time_offset_unit`
  (`ms` or `s`; negative and fractional allowed, kept to the microsecond) added to the parsed
  timestamp; the event time is the sum, the offset is not stored. When the file has the column, an
  empty offset is `missing time_offset` (quarantined: the file says the time within the day is
  unknown, and midnight would be a made-up time that reorders the session) and a text that is no
  number, or a sum out of the timestamp range, is `unparseable time_offset`; a timestamp that is
  missing or unparseable is reported as such first. A file without the column: the timestamp
  alone (column_map renames the columns a file has).
- numbers (rating, quantity, unit_price, value): doubles; empty is missing, other text unparseable.
- event_type: lowercased and trimmed, then renamed by `event_map` (the file's name -> ours); a row
  the returns rule matches (negative quantity, a transaction id prefix) becomes a `return`.

type_statements puts it together: per file, the statement that types its records in file order
and works out, for a row that cannot be typed, why (the quarantine's reason).
"""

from __future__ import annotations

from typing import Protocol

from dlt_pipelines.sql import quote
from recomart_core import schema as s
from recomart_core.settings import AUTO, InteractionsFormat


class Read(Protocol):
    """What typing a read file needs of it (csv_reader.Prepared has it): its place in the batch,
    the read's SQL source, the file's own columns and which of ours it has, and whether epoch
    numbers are parsed first."""

    order: int
    source: str
    own: list[str]
    present: list[str]
    epoch_first: bool


ISO_FORMAT = "%Y-%m-%d %H:%M:%S"
OFFSET_AT_END = r"'([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$'"


def _column(name: str) -> str:
    return f'"{name}"'


def epoch_parser(unit: str | None = None) -> str:
    """Epoch numbers as UTC: `epoch_s`, `epoch_ms`, or (None) told apart by size."""
    ts = _column(s.CSV_TIMESTAMP)
    if unit == "epoch_s":
        body = "make_timestamp(cast(x * 1e6 as bigint))"
    elif unit == "epoch_ms":
        body = "make_timestamp(cast(x * 1e3 as bigint))"
    else:
        body = """case
        when x between 1e8 and 1e11 then make_timestamp(cast(x * 1e6 as bigint))
        when x between 1e11 and 1e14 then make_timestamp(cast(x * 1e3 as bigint))
    end"""
    # the lambda binds the number once, so DuckDB does not hoist the cast out of coalesce (where
    # it would run on every row)
    return f"list_transform([try_cast({ts} as double)], lambda x: {body})[1]"


def _local(naive: str, zone: str) -> str:
    """A naive timestamp expression read as local time in `zone`, as UTC."""
    return naive if zone == "UTC" else f"timezone({quote(zone)}, {naive})::timestamp"


def timestamp_parsers(fmt: InteractionsFormat, epoch_first: bool = False) -> list[str]:
    """The timestamp expressions to coalesce, cheapest and most usual first. At most one accepts
    a given text, so coalesce runs the next only on the rows the ones before failed."""
    ts = _column(s.CSV_TIMESTAMP)
    parsers: list[str] = []
    for form in fmt.formats:
        if form == AUTO:
            iso = [_local(f"try_strptime({ts}, {quote(ISO_FORMAT)})", fmt.timezone)]
            if fmt.timezone != "UTC":  # other naive ISO texts (a T, fractions) in the zone too
                naive = f"case when not regexp_matches({ts}, {OFFSET_AT_END}) then try_cast({ts} as timestamp) end"  # noqa: E501
                iso.append(_local(naive, fmt.timezone))
            iso.append(f"try_cast({ts} as timestamptz)::timestamp")
            parsers += [epoch_parser(), *iso] if epoch_first else [*iso, epoch_parser()]
        elif form in ("epoch_s", "epoch_ms"):
            parsers.append(epoch_parser(form))
        elif "%z" in form or "%Z" in form:
            parsers.append(f"try_strptime({ts}, {quote(form)})::timestamp")
        else:
            parsers.append(_local(f"try_strptime({ts}, {quote(form)})", fmt.timezone))
    return parsers


# An event time of this era: a text that parses to year 0000 (1 BC), to the year 1 or to a year
# past 9999 is no real event, quarantined as `timestamp out of range`. (Events after the load are
# dbt's `event in the future`.)
YEAR_MIN, YEAR_MAX = 1900, 9999
IN_RANGE = (
    f"t >= timestamp '{YEAR_MIN}-01-01' and t < timestamp '{YEAR_MAX}-12-31' + interval 1 day"
)

# The event time of a row whose file has a time_offset: the file's timestamp (tf) plus the offset
# in microseconds (o); null when either is, or when the sum leaves the timestamp range
EVENT_TIME_WITH_OFFSET = "try(tf + to_microseconds(o))"
MICROSECONDS = {"s": 1_000_000, "ms": 1_000}  # [ingest.interactions] time_offset_unit


def offset_microseconds(fmt: InteractionsFormat) -> str:
    """The time_offset column in microseconds (bigint): null when empty, not a number, not
    finite or beyond a bigint."""
    number = f"try_cast({_column(s.CSV_TIME_OFFSET)} as double)"
    return f"try_cast(round({number} * {MICROSECONDS[fmt.time_offset_unit]}) as bigint)"


def event_sql(fmt: InteractionsFormat) -> str:
    """The event type in our names: mapped, lowercased and trimmed; `return` when the returns
    rule matches the row (whatever its event type says)."""
    event = f"lower(trim({_column(s.CSV_EVENT)}))"
    if fmt.event_map:
        cases = " ".join(f"when {quote(k)} then {quote(v)}" for k, v in fmt.event_map.items())
        event = f"case {event} {cases} else {event} end"
    rule = return_rule(fmt)
    return f"case when {rule} then {quote(s.RETURN_EVENT)} else {event} end" if rule else event


def return_rule(fmt: InteractionsFormat) -> str | None:
    """SQL that is true for a return or cancellation row (q: the typed quantity), or None."""
    returns, parts = fmt.returns, []
    if returns.negative_quantity:
        parts.append("coalesce(q < 0, false)")
    if returns.transaction_prefix:
        tx = _column(s.CSV_TRANSACTION)
        prefix = quote(returns.transaction_prefix)
        parts.append(f"coalesce(starts_with(trim({tx}), {prefix}), false)")
    return " or ".join(parts) or None


BLANK = "blank"  # reason of a record with no data at all (a whitespace-only line): not a row

# Typing and reasons over a file's records, in file order. A rating, quantity, price or value may
# be missing, not unparseable. Reasons, and the record's fields re-joined, are worked out only for
# rows that failed to type. `tf` is the timestamp as the file writes it, `t` the event time (tf
# plus the time_offset in microseconds, `o`, when the file has that column).
_TYPE_SQL = """
create or replace temp table {typed} as
with fielded as (
    select
        *,
        shop_id("{user}") as u,
        shop_id("{item}") as i,
        try_cast("{rating}" as double) as r,
        coalesce({timestamp_parsers}) as tf,
        {offset} as o,
        try_cast("{quantity}" as double) as q,
        try_cast("{unit_price}" as double) as p,
        try_cast("{value}" as double) as v,
        shop_id("{transaction}") as x,
    from {read}
),
typed as (
    select *, {event_time} as t from fielded
),
reasoned as (
    select
        *,
        {event} as e,
        case
            when {typed_fine} then null
            when {blank} then '{BLANK}'
            when u is null then '{missing_user}'
            when length(u) > {max_id} or regexp_matches(u, '{id_control}') then 'unparseable {user}'
            when i is null then 'missing {item}'
            when length(i) > {max_id} or regexp_matches(i, '{id_control}') then 'unparseable {item}'
            when nullif(trim("{timestamp}"), '') is null then 'missing {timestamp}'
            when tf is null then 'unparseable {timestamp}'
            {offset_reasons}
            when not ({in_range}) then '{out_of_range}'
            when r is null and nullif(trim("{rating}"), '') is not null then 'unparseable {rating}'
            when q is null and nullif(trim("{quantity}"), '') is not null
                then 'unparseable {quantity}'
            when p is null and nullif(trim("{unit_price}"), '') is not null
                then 'unparseable {unit_price}'
            when v is null and nullif(trim("{value}"), '') is not null then 'unparseable {value}'
            when length(x) > {max_id} then 'unparseable {transaction}'
            {quarantined_returns}
        end as reason,
    from typed
)
select
    u, i, r, t, e, q, p, v, x, reason,
    case when reason is not null then concat_ws($delim, {fields}) end as fields_text,
    case
        when reason = '{out_of_range}' then "{timestamp}"
        when reason not like 'unparseable %' then null
        when reason like '%{user}' then "{user}"
        when reason like '%{item}' then "{item}"
        when reason like '%{timestamp}' then "{timestamp}"
        when reason like '%{time_offset}' then "{time_offset}"
        when reason like '%{rating}' then "{rating}"
        when reason like '%{quantity}' then "{quantity}"
        when reason like '%{unit_price}' then "{unit_price}"
        when reason like '%{value}' then "{value}"
        when reason like '%{transaction}' then "{transaction}"
    end as value_text,
from reasoned
"""
RETURN_REASON = "return or cancellation"
OUT_OF_RANGE = f"{s.CSV_TIMESTAMP} out of range"  # a date, but not of this era (py)
GUEST_REASON = "guest (no user_id)"  # a row without a user when missing_user = "guest"
# the typed columns of a row, as the accepted rows are staged (and the raw table named)
TYPED_COLUMNS = {
    "u": s.CSV_USER, "i": s.CSV_ITEM, "r": s.CSV_RATING, "t": s.CSV_TIMESTAMP, "e": s.CSV_EVENT,
    "q": s.CSV_QUANTITY, "p": s.CSV_UNIT_PRICE, "v": s.CSV_VALUE, "x": s.CSV_TRANSACTION,
}  # fmt: skip


# Why a row whose timestamp parsed has no event time, when the file has a time_offset column
_OFFSET_REASONS = f"""
            when nullif(trim("{s.CSV_TIME_OFFSET}"), '') is null then 'missing {s.CSV_TIME_OFFSET}'
            when t is null then 'unparseable {s.CSV_TIME_OFFSET}'
"""
# The optional numbers among the typed columns: each must type when the file gives it text.
_OPTIONAL_NUMBERS = {typed: TYPED_COLUMNS[typed] for typed in "rqpv"}


def _typed_fine(present: list[str], quarantined: str | None) -> str:
    """The cheap test that a row typed: checked first, on every row, so the reasons (and the
    blank-line test over every field) are worked out only for the rows that fail it. Only the
    optional columns the file has are tested."""
    tests = ["u is not null", "i is not null", "t is not null",
             f"length(u) <= {s.ID_MAX_LENGTH}", f"length(i) <= {s.ID_MAX_LENGTH}",
             f"not regexp_matches(u || i, '{s.ID_CONTROL}')", IN_RANGE]  # fmt: skip
    tests += [
        f"({typed} is not null or nullif(trim(\"{name}\"), '') is null)"
        for typed, name in _OPTIONAL_NUMBERS.items()
        if name in present
    ]
    if s.CSV_TRANSACTION in present:
        tests.append(f"coalesce(length(x) <= {s.ID_MAX_LENGTH}, true)")
    if quarantined:
        tests.append(f"not ({quarantined})")
    return " and ".join(tests)


def type_sql(
    typed: str,
    read: str,
    own: list[str],
    present: list[str],
    fmt: InteractionsFormat,
    epoch_first: bool,
) -> str:
    """The statement that reads a file (`read`, its own fields `own`, our columns `present`) and
    types it into `typed`."""
    rule = return_rule(fmt)
    quarantined = rule if fmt.returns.action == "quarantine" else None  # returns kept out here
    offset = s.CSV_TIME_OFFSET in present
    return _TYPE_SQL.format(
        typed=typed,
        read=read,
        user=s.CSV_USER, item=s.CSV_ITEM, rating=s.CSV_RATING, timestamp=s.CSV_TIMESTAMP,
        missing_user=GUEST_REASON if fmt.missing_user == "guest" else f"missing {s.CSV_USER}",
        quantity=s.CSV_QUANTITY, unit_price=s.CSV_UNIT_PRICE, value=s.CSV_VALUE,
        transaction=s.CSV_TRANSACTION,
        timestamp_parsers=", ".join(timestamp_parsers(fmt, epoch_first)),
        time_offset=s.CSV_TIME_OFFSET,
        offset=offset_microseconds(fmt) if offset else "null::bigint",
        event_time=EVENT_TIME_WITH_OFFSET if offset else "tf",
        offset_reasons=_OFFSET_REASONS if offset else "",
        event=event_sql(fmt),
        typed_fine=_typed_fine(present, quarantined),
        blank=" and ".join(f"nullif(trim({c}), '') is null" for c in own) or "false",
        BLANK=BLANK,
        max_id=s.ID_MAX_LENGTH,
        id_control=s.ID_CONTROL,
        in_range=IN_RANGE,
        out_of_range=OUT_OF_RANGE,
        quarantined_returns=f"when {quarantined} then '{RETURN_REASON}'" if quarantined else "",
        fields=", ".join(f"coalesce({c}, '')" for c in own),
    )  # fmt: skip


def type_statements(reads: list[Read], fmt: InteractionsFormat) -> list[str]:
    """For each file prepared to be read (csv_reader.prepare), the statement that reads and
    types it into its temp table typed_<order>."""
    return [
        type_sql(f"typed_{r.order}", r.source, r.own, r.present, fmt, r.epoch_first) for r in reads
    ]
