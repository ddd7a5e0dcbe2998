"""Date helpers of the masking operations: text parsing, wall time of time-zone-aware columns, truncation,
fake dates and date noise.

Time-zone-aware columns are worked on in wall time (the clock time of their zone) and localized back,
so a month starts at local midnight; the result keeps the column's unit and zone.
"""

from __future__ import annotations

import datetime as dt
import warnings
from typing import Any

import numpy as np
import pandas as pd

#: generalize ``truncate`` unit -> pandas period frequency
TRUNCATE = {"year": "Y", "quarter": "Q", "month": "M", "week": "W", "day": "D", "hour": "h"}
#: fakes are drawn over at least this span (centred on the column's), for date-only and timed columns
MIN_SPAN = {False: pd.Timedelta(days=30), True: pd.Timedelta(hours=1)}


def is_datetime(series: pd.Series) -> bool:
    """Whether ``series`` has a datetime64 dtype (naive or time-zone-aware)."""
    return pd.api.types.is_datetime64_any_dtype(series.dtype)


def parse_text(series: pd.Series) -> pd.Series:
    """Text dates as datetime64 (what does not parse becomes NaT); values with different UTC offsets go to UTC."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas warns about mixed offsets before returning objects
            parsed = pd.to_datetime(series, errors="coerce", format="mixed")
        if is_datetime(parsed):
            return parsed
    except (ValueError, TypeError):  # mixed offsets raise in newer pandas
        pass
    return pd.to_datetime(series, errors="coerce", format="mixed", utc=True)


def wall(series: pd.Series) -> pd.Series:
    """The naive wall-clock times of a datetime column (itself when it has no time zone)."""
    return series.dt.tz_localize(None) if series.dt.tz is not None else series


def relocalize(values: pd.Series, like: pd.Series, dst: np.ndarray | None = None) -> pd.Series:
    """Naive wall times back in ``like``'s unit and time zone.

    Args:
        values: naive datetimes.
        like: the original column.
        dst: per row, whether an ambiguous wall time (the repeated hour when clocks go back) is the
            daylight-saving one; default standard time. Wall times skipped by the clock move forward.
    """
    out = values.astype(f"datetime64[{like.dt.unit}]")
    if like.dt.tz is None:
        return out
    flags = np.zeros(len(out), dtype=bool) if dst is None else dst
    return out.dt.tz_localize(like.dt.tz, ambiguous=flags, nonexistent="shift_forward")


def dst_flags(series: pd.Series) -> np.ndarray:
    """Per row of a datetime column, whether it is in daylight-saving time (False for naive or null)."""
    if series.dt.tz is None:
        return np.zeros(len(series), dtype=bool)
    flags = {stamp: bool(stamp.dst()) for stamp in series.dropna().unique()}
    return series.map(flags).eq(True).to_numpy()


def truncate(series: pd.Series, unit: str) -> pd.Series:
    """Dates cut down to the start of their year, quarter, month, week, day or hour.

    A datetime column keeps its dtype (in wall time for a zoned column); a text column gets
    ``YYYY-MM-DD`` text (``YYYY-MM-DD HH:00`` for hours) and nulls where a value is not a date.
    """
    if is_datetime(series):
        cut = wall(series).dt.to_period(TRUNCATE[unit]).dt.start_time
        return relocalize(cut, series, dst_flags(series))
    parsed = parse_text(series)
    cut = wall(parsed).dt.to_period(TRUNCATE[unit]).dt.start_time
    fmt = "%Y-%m-%d %H:00" if unit == "hour" else "%Y-%m-%d"
    nothing = np.array(None, dtype=object)  # what np.where makes of None
    return pd.Series(np.where(cut.notna(), cut.dt.strftime(fmt), nothing), index=series.index, dtype=object)


def span(series: pd.Series) -> tuple[Any, Any, bool]:
    """(first, end, with times) of the dates in a column, for drawing fakes; the last 80 years when none parse.

    A span narrower than ``MIN_SPAN`` is widened to it around its middle (a column of one date, or
    of a few days, would otherwise leave no fake that differs from the value).
    """
    dates = wall(series if is_datetime(series) else parse_text(series)).dropna()
    if dates.empty:
        return dt.date.today() - dt.timedelta(days=80 * 365), dt.date.today(), False
    timed = bool((dates != dates.dt.normalize()).any())
    first, last = dates.min(), dates.max()
    pad = max(MIN_SPAN[timed] - (last - first), pd.Timedelta(0)) / 2
    first, last = first - pad, last + pad
    if not timed:  # Faker draws dates before its end date: one day past the last keeps the last in reach
        return first.date(), (last + pd.Timedelta(days=1)).date(), False
    return first.to_pydatetime(), last.to_pydatetime(), True


def draw(faker: Any, within: tuple[Any, Any, bool]) -> pd.Timestamp:
    """One fake date (a timestamp when the column has times of day) in ``within``, from a seeded Faker."""
    first, last, timed = within
    made = faker.date_time_between(first, last) if timed else faker.date_between(first, last)
    return pd.Timestamp(made).floor("s")


def as_text(stamp: pd.Timestamp, timed: bool) -> str:
    """A fake date as text: ``YYYY-MM-DD``, with ``HH:MM:SS`` when the column has times of day."""
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if timed else "%Y-%m-%d")


def shift(series: pd.Series, days: np.ndarray) -> pd.Series:
    """Dates moved by ``days`` (rounded to whole days) in wall time and clipped to the column's range."""
    local = wall(series)
    moved = (local + pd.to_timedelta(np.round(days), unit="D")).clip(local.min(), local.max())
    return relocalize(moved, series, dst_flags(series))
