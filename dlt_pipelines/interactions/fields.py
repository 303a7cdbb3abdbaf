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
"""

from __future__ import annotations

from dlt_pipelines.sql import quote
from recomart_core import schema as s
from recomart_core.settings import AUTO, InteractionsFormat

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
