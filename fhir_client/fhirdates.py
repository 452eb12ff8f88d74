"""Parsing of FHIR date, dateTime and instant values into aware datetimes."""

from __future__ import annotations

from datetime import UTC, date, datetime


def parse_fhir_datetime(value: object) -> datetime | None:
    """A FHIR date/dateTime/instant as an aware datetime (UTC when no offset); None if invalid.

    Partial dates (``2019`` or ``2019-03``) become the first instant of the period, which
    is what "latest before" comparisons need to stay conservative.
    """
    if not isinstance(value, str) or not value:
        return None
    try:
        if len(value) == 4:
            parsed = datetime(int(value), 1, 1)
        elif len(value) == 7:
            parsed = datetime(int(value[:4]), int(value[5:7]), 1)
        else:
            parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return as_utc(parsed)


def as_utc(moment: datetime) -> datetime:
    """An aware datetime; one without a zone is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_fhir_date(value: object) -> date | None:
    parsed = parse_fhir_datetime(value)
    return parsed.date() if parsed else None


def age_in_years(birth: date, on: date) -> int:
    """Completed years of age on a given day."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
