"""The report as CSV for spreadsheets (UTF-8 with BOM, one row per group plus Total).

Why its own module: the CSV is an export format with spreadsheet quirks (separators,
decimal comma, no thousands separators), independent of how the numbers are built.

Formula injection (OWASP "CSV Injection"): a text cell starting with ``=``, ``+``, ``-``,
``@``, tab or CR is run as a formula by Excel/LibreOffice, so a business named
``=HYPERLINK(...)`` would become a live link in a staff download. Every *text* cell
(header, ID, group label) goes through :func:`neutralise`, which prefixes ``'``. Metric
cells are not text: :func:`_csv_value` formats them from numbers, so a negative value
there is a real number and is written as-is for the spreadsheet to compute with.
"""

from __future__ import annotations

import csv
import io

from engine.common.i18n import get_lang, t
from engine.reporting.build import Report, ReportRow
from engine.reporting.metrics import METRICS, Value, dimension_label


def report_csv(report: Report, *, decimal_comma: bool = False, lang: str | None = None) -> bytes:
    """The report as CSV for spreadsheets: UTF-8 with BOM, one row per group plus Total.

    Indonesian spreadsheets expect ``;`` between fields and ``,`` as decimal separator
    (``decimal_comma=True``); numbers carry no thousands separators so they stay numbers.
    Ratios are percentages with two decimals.
    """
    lang = lang or get_lang()
    sep = ";" if decimal_comma else ","
    header = ["ID", dimension_label(report.by, lang)]
    for key in report.metrics:
        label = METRICS[key].label(lang)
        header.append(f"{label} (%)" if METRICS[key].kind == "ratio" else label)
    header.append(t("report.simulated_column", lang))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=sep, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    total = ReportRow("", t("report.total", lang), report.totals)
    # Sandbox rows come after the total (which never counts them), marked in the last column.
    rows = [(row, "") for row in [*report.rows, total]]
    rows += [(row, t("report.simulated_yes", lang)) for row in report.simulated]
    for row, simulated in rows:
        key = "" if row.key is None else str(row.key)
        writer.writerow([neutralise(key), neutralise(row.label),
                         *[_csv_value(k, row.values[k], decimal_comma) for k in report.metrics],
                         simulated])
    return buffer.getvalue().encode("utf-8-sig")


FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Text a spreadsheet shows as typed: a leading ``'`` stops formula evaluation."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _csv_value(key: str, value: Value, decimal_comma: bool) -> str:
    """Plain numbers a spreadsheet reads as numbers; ratios as percentages."""
    if value is None:
        return ""
    if METRICS[key].kind == "ratio":
        text = f"{value * 100:.2f}"
        return text.replace(".", ",") if decimal_comma else text
    return str(int(value))
