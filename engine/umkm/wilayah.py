"""Administrative areas of Kabupaten Timor Tengah Selatan (Kemendagri codes, not BPS).

Why a CSV of our own: domicile (Pasal 10 ayat 1 huruf d) is checked on the business
address, and the only authoritative list is Kepmendagri's ``53.02.xx`` (kecamatan) and
``53.02.xx.xxxx`` (desa/kelurahan). BPS numbers TTS differently (5304), and libraries
such as python-stdnum carry the BPS table, so they cannot be used here.

The file is read once per process (:func:`functools.lru_cache`).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

CSV_PATH = Path(__file__).resolve().parents[1] / "data" / "wilayah-tts.csv"
REGENCY_CODE = "53.02"

# "53.02.05", "530205", "5302.05" (and "53.0205"): three two-digit groups, dots optional.
_KECAMATAN_RE = re.compile(r"^(\d{2})\.?(\d{2})\.?(\d{2})$")
_DESA_PREFIXES = ("desa ", "kelurahan ", "kel. ", "ds. ")


@dataclass(frozen=True)
class _Table:
    regency_name: str
    kecamatan: dict[str, str]  # "53.02.01" -> "Kota Soe", in file order
    desa: dict[str, list[tuple[str, str]]]  # kecamatan code -> [(desa code, name)]


@lru_cache(maxsize=1)
def _table() -> _Table:
    regency_name = ""
    kecamatan: dict[str, str] = {}
    desa: dict[str, list[tuple[str, str]]] = {}
    with CSV_PATH.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            code, name = row["code"].strip(), row["name"].strip()
            depth = code.count(".")
            if depth == 1:
                regency_name = name
            elif depth == 2:
                kecamatan[code] = name
                desa.setdefault(code, [])
            elif depth == 3:
                desa.setdefault(code.rsplit(".", 1)[0], []).append((code, name))
    return _Table(regency_name, kecamatan, desa)


def regency_name() -> str:
    """``Kabupaten Timor Tengah Selatan``."""
    return _table().regency_name


def normalize_kecamatan(code: str | None) -> str | None:
    """Canonical ``PP.KK.CC`` for any well-formed kecamatan code, else ``None``.

    Well-formed is not the same as TTS: ``"530101"`` gives ``"53.01.01"`` so callers can
    tell "outside TTS" (see :func:`is_tts_kecamatan`) from "not a code at all".
    """
    if code is None:
        return None
    match = _KECAMATAN_RE.match(code.strip())
    if match is None:
        return None
    return ".".join(match.groups())


def is_tts_kecamatan(code: str | None) -> bool:
    """True only for a kecamatan of TTS listed by Kemendagri (53.02.01 to 53.02.32)."""
    canonical = normalize_kecamatan(code)
    return canonical is not None and canonical in _table().kecamatan


def kecamatan_name(code: str | None) -> str | None:
    """``"53.02.01"`` (any accepted spelling) -> ``"Kota Soe"``; ``None`` if not in TTS."""
    canonical = normalize_kecamatan(code)
    return _table().kecamatan.get(canonical) if canonical else None


def kecamatan_list() -> list[tuple[str, str]]:
    """Every TTS kecamatan as ``(code, name)``, alphabetical by name: people pick by name."""
    return sorted(_table().kecamatan.items(), key=lambda item: (item[1].casefold(), item[0]))


def find_kecamatan(text: str | None) -> str | None:
    """A TTS kecamatan code from a code or a name (``"Kota Soe"``, ``"kota soe"``).

    Staff type names more often than codes; returns ``None`` when nothing matches.
    """
    if not text:
        return None
    if is_tts_kecamatan(text):
        return normalize_kecamatan(text)
    wanted = _fold(text)
    for code, name in _table().kecamatan.items():
        if _fold(name) == wanted:
            return code
    return None


def desa_list(kecamatan_code: str | None) -> list[tuple[str, str]]:
    """Desa/kelurahan of a TTS kecamatan as ``(code, name)``; empty outside TTS."""
    canonical = normalize_kecamatan(kecamatan_code)
    if canonical is None:
        return []
    return list(_table().desa.get(canonical, []))


def desa_name(code: str | None) -> str | None:
    """``"53.02.01.1001"`` -> ``"SoE"``."""
    if not code:
        return None
    code = code.strip()
    for desa_code, name in _table().desa.get(code.rsplit(".", 1)[0], []):
        if desa_code == code:
            return name
    return None


def find_desa(kecamatan_code: str | None, text: str | None) -> tuple[str, str] | None:
    """The ``(code, name)`` of a desa in a kecamatan, matched by code or by name.

    Names match case-insensitively and without a leading "Desa"/"Kelurahan", because
    that is how they arrive from forms and spreadsheets.
    """
    if not text:
        return None
    wanted = _fold(text)
    for prefix in _DESA_PREFIXES:
        if wanted.startswith(prefix):
            wanted = wanted[len(prefix):].strip()
            break
    for code, name in desa_list(kecamatan_code):
        if code == text.strip() or _fold(name) == wanted:
            return code, name
    return None


def _fold(text: str) -> str:
    """Compare names loosely: case, spacing and apostrophes (``Kot'olin`` = ``Kot olin``)."""
    return " ".join(text.casefold().replace("'", " ").replace("’", " ").split())
