"""Country, region, locale and time-zone codes for the convert* functions (spec §1.6).

Country and subdivision data come from ``pycountry`` (ISO 3166-1, ISO 3166-2), likely
regions of languages from ``babel`` (CLDR), and SAP's time-zone codes from the table SAP
documents (``data/sap-timezones.txt``, spec Appendix A).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import pycountry
from babel.core import get_global

_countries: Any = pycountry.countries  # pycountry has no type hints
_subdivisions: Any = pycountry.subdivisions
_languages: Any = pycountry.languages

COUNTRY_FORMATS = ("fullName", "alpha2", "alpha3", "numeric")
REGION_FORMATS = ("fullName", "alpha2")
LOCALE_FORMATS = ("bcp47", "iso639")
TIMEZONE_FORMATS = ("iana", "sap")
DEFAULT_IANA = "Europe/Berlin"
DEFAULT_SAP = "CET"
_UNSUPPORTED_LANGUAGES = {"eo", "ia", "io"}  # SAP maps these to English


def _country(value: str) -> Any:
    text = value.strip()
    if not text:
        return None
    try:
        if text.isdigit():
            return _countries.get(numeric=text.zfill(3))
        if len(text) == 2:
            return _countries.get(alpha_2=text.upper())
        if len(text) == 3:
            return _countries.get(alpha_3=text.upper())
        return _countries.lookup(text)
    except LookupError:
        return None


def convert_country(value: Any, output_format: str) -> Any:
    """A country (name, alpha-2, alpha-3 or numeric) in ``output_format``; unknown: as is."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return value
    country = _country(str(value))
    if country is None:
        return value
    return {
        "fullName": country.name,
        "alpha2": country.alpha_2,
        "alpha3": country.alpha_3,
        "numeric": country.numeric,
    }[output_format]


def convert_region(region: Any, country: Any, output_format: str) -> Any:
    """An ISO 3166-2 subdivision (``AL`` with country ``US``, ``US-AL`` or ``Alabama``)."""
    if not isinstance(region, str) or not region.strip():
        return region
    text = region.strip()
    found = None
    if "-" in text:
        found = _subdivisions.get(code=text.upper())
    country_code = None
    if isinstance(country, str) and country.strip():
        match = _country(country)
        country_code = match.alpha_2 if match is not None else None
    if found is None and country_code:
        found = _subdivisions.get(code=f"{country_code}-{text.upper()}")
        if found is None:
            for candidate in _subdivisions.get(country_code=country_code) or ():
                if candidate.name.lower() == text.lower():
                    found = candidate
                    break
    if found is None:
        return region
    return found.name if output_format == "fullName" else found.code


def convert_locale(value: Any, output_format: str) -> Any:
    """``en-US`` ⇄ ``EN``: BCP 47 tags and SAP's ISO 639 language keys."""
    if not isinstance(value, str) or not value.strip():
        return value
    parts = value.strip().replace("_", "-").split("-")
    language = parts[0].lower()
    if language in _UNSUPPORTED_LANGUAGES or _languages.get(alpha_2=language) is None:
        language, parts = "en", ["en"]
    if output_format == "iso639":
        return language.upper()
    region = next((p.upper() for p in parts[1:] if len(p) == 2 and p.isalpha()), None)
    if region is None:
        likely = get_global("likely_subtags").get(language, "")
        region = next((p for p in likely.split("_")[1:] if len(p) == 2 and p.isupper()), None)
    return f"{language}-{region}" if region else language


@cache
def _timezones() -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """(SAP code -> first IANA zone, lower-cased IANA zone -> (zone, first SAP code))."""
    to_iana: dict[str, str] = {}
    to_sap: dict[str, tuple[str, str]] = {}
    text = resources.files("provisor.transform").joinpath("data/sap-timezones.txt").read_text()
    for line in text.splitlines():
        code, _, zones = line.partition(":")
        names = [z.strip() for z in zones.split(",") if z.strip()]
        if not code.strip() or not names:
            continue
        to_iana.setdefault(code.strip().upper(), names[0])
        for name in names:
            to_sap.setdefault(name.lower(), (name, code.strip()))
    return to_iana, to_sap


def convert_timezone(value: Any, output_format: str) -> str:
    """SAP time-zone codes ⇄ IANA zones; unknown or missing: Europe/Berlin or CET."""
    to_iana, to_sap = _timezones()
    text = value.strip() if isinstance(value, str) else ""
    zone = to_sap.get(text.lower())
    if output_format == "iana":
        if text.upper() in to_iana:
            return to_iana[text.upper()]
        return zone[0] if zone else DEFAULT_IANA
    if zone:
        return zone[1]
    return text.upper() if text.upper() in to_iana else DEFAULT_SAP
