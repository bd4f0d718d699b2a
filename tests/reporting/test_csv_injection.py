"""Issue 13 finding 8: report CSVs never carry a live spreadsheet formula.

Text cells starting with ``=``, ``+``, ``-``, ``@``, tab or CR get a leading ``'``
(OWASP); metric cells are numbers and stay numbers, negative ones included.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest

from engine.models import Business
from engine.reporting.build import Report, ReportRow
from engine.reporting.csv_export import neutralise, report_csv
from engine.reporting.periods import Period
from tests.reporting.test_report_downloads import PERIOD, _history
from tests.web_helpers import World

DANGEROUS = ["=HYPERLINK(\"http://x.test\",\"klik\")", "+1+2", "-2+3", "@SUM(A1)",
             "\tTenun", "\rTenun"]


def _rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""),
                           delimiter=delimiter))


def _report(labels: list[str], value: int = 0) -> Report:
    rows = [ReportRow(i + 1, label, {}) for i, label in enumerate(labels)]
    period = Period("2026-12", date(2026, 12, 1), date(2026, 12, 1))
    report = Report(period, "business", 30, None, rows, {})
    for row in [*rows]:
        row.values.update({m: value for m in report.metrics})
    report.totals.update({m: value for m in report.metrics})
    return report


@pytest.mark.parametrize("label", DANGEROUS)
def test_each_dangerous_prefix_is_neutralised(label: str) -> None:
    for delimiter, comma in ((",", False), (";", True)):
        rows = _rows(report_csv(_report([label]), decimal_comma=comma), delimiter)
        assert rows[1][1] == "'" + label


def test_plain_text_and_numbers_are_untouched() -> None:
    assert neutralise("Tenun Ina") == "Tenun Ina"
    assert neutralise("") == ""
    rows = _rows(report_csv(_report(["Tenun Ina"], value=-3)))
    assert rows[1][1] == "Tenun Ina"
    assert "-3" in rows[1][2:]  # a real (negative) number stays a number


def test_staff_download_neutralises_a_formula_business_name(world: World) -> None:
    _history(world)
    with world.session() as session:
        business = session.get(Business, world.ids["business_a"])
        assert business is not None
        business.name = '=HYPERLINK("http://jahat.test","Tenun")'
        session.commit()
    response = world.client("staf").get(
        f"/dinas/laporan/unduh?periode={PERIOD}&by=business&format=csv")
    assert response.status_code == 200
    text = response.content.decode("utf-8-sig")
    cells = [cell for row in csv.reader(io.StringIO(text), delimiter=";" if ";" in
                                        text.splitlines()[0] else ",") for cell in row]
    assert "'=HYPERLINK(\"http://jahat.test\",\"Tenun\")" in cells
    assert not any(cell.startswith("=") for cell in cells)
