"""Reading an imported CSV file: bounded lines, UTF-8, the delimiter, the header, the rows.

Why it is shaped this way (shared by :mod:`engine.customers.customer_import` and
:mod:`engine.customers.order_import`):

* **Streamed, bounded memory.** The file is read line by line (``csv`` over a generator
  of decoded lines); only one batch of rows is held at a time, and a line longer than
  :data:`MAX_LINE_BYTES` is refused (it is not a spreadsheet export).
* **Checked before anything is written.** :func:`inspect_csv` decodes and parses the
  whole file without touching the database, so a file that is not UTF-8, has broken CSV
  quoting or wrong columns is refused as a whole (:class:`ImportFileError`).
* **One transaction per batch.** :func:`run_import` commits each batch on its own, so a
  crash mid-file leaves only whole batches; the importers make every row idempotent.
* **Messages point at the file.** Every rejected row is reported as ``file:line: reason``
  with the physical line number (header = line 1), in Bahasa Indonesia by default.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from sqlalchemy.orm import Session

from engine.common.errors import InvalidInput, os_reason
from engine.common.i18n import t
from engine.db import session_factory

T = TypeVar("T")
Progress = Callable[[int], None]

MAX_KEPT_ERRORS = 1_000  # row errors kept for display; all of them are counted
MAX_LINE_BYTES = 1 << 20  # one physical CSV line; longer is not a spreadsheet export


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class RowError:
    """One rejected row; ``str()`` gives the compiler-style ``file:line: reason``."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class ImportReport:
    """Counts per data row: every row ends in exactly one of the three buckets."""

    file: str
    accepted: int = 0  # created or changed something
    unchanged: int = 0  # already present, nothing added
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.accepted + self.unchanged + self.rejected

    def reject(self, line: int, reason: str) -> None:
        self.keep(RowError(self.file, line, reason))

    def count(self, changed: bool) -> None:
        """A row that was applied: accepted when it changed something, else unchanged."""
        if changed:
            self.accepted += 1
        else:
            self.unchanged += 1

    def keep(self, error: RowError) -> None:
        """Count every rejected row; keep the first :data:`MAX_KEPT_ERRORS` messages, so a
        file of a million bad rows cannot exhaust memory (nobody reads past those)."""
        self.rejected += 1
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(error)


class Invalid(Exception):
    """A row-level problem; the message is the translated reason."""


class ImportFileError(InvalidInput):
    """The file as a whole cannot be imported; nothing was written.

    ``code`` is a catalog id whose text starts with ``file:line:``.
    """


# --------------------------------------------------------------------------- columns


@dataclass(frozen=True)
class ColumnSpec:
    """Canonical column names, their accepted spellings (English and Indonesian)."""

    aliases: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    one_of: tuple[str, ...] = ()

    def lookup(self) -> dict[str, str]:
        table: dict[str, str] = {}
        for canonical, names in self.aliases.items():
            for name in (canonical, *names):
                table[fold_header(name)] = canonical
        return table


def fold_header(name: str) -> str:
    """``"No. HP"`` -> ``"no_hp"``, ``"E-mail"`` -> ``"e_mail"``: spreadsheet headers vary."""
    return "_".join(re.split(r"[^0-9a-z]+", name.strip().casefold())).strip("_")


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class CsvInfo:
    """What the checking pass learned: delimiter, column order and number of data rows."""

    delimiter: str
    columns: tuple[str, ...]  # canonical name per position
    rows: int


@dataclass(frozen=True)
class Row:
    """One data row: its physical line and the cells by canonical column name."""

    line: int
    values: dict[str, str]


def _decoded_lines(handle: BinaryIO, file: str) -> Iterator[str]:
    """UTF-8 lines (BOM dropped); a bad byte is reported with its line number.

    Decoding per physical line is safe because no UTF-8 multi-byte sequence contains
    ``\\n``, and it tells the user exactly where the bad byte is.
    """
    number = 0
    while raw := handle.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(raw) > MAX_LINE_BYTES:
            raise ImportFileError("import.file.line_too_long", file=file, line=number,
                                  limit=MAX_LINE_BYTES // 1024)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFileError("import.file.not_utf8", file=file, line=number) from exc
        if number == 1:
            text = text.removeprefix("\ufeff")
        yield text


def _detect_delimiter(header: str) -> str:
    """Indonesian spreadsheets (decimal comma) export ``;``; everything else ``,``."""
    return ";" if header.count(";") > header.count(",") else ","


def _map_header(cells: Sequence[str], spec: ColumnSpec, file: str) -> tuple[str, ...]:
    lookup = spec.lookup()
    columns: list[str] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for cell in cells:
        canonical = lookup.get(fold_header(cell))
        if canonical is None:
            unknown.append(cell.strip() or "''")
            columns.append("")
            continue
        if canonical in seen:
            raise ImportFileError("import.file.repeated_column", file=file, column=canonical,
                                  names=f"{seen[canonical]}, {cell.strip()}")
        seen[canonical] = cell.strip()
        columns.append(canonical)
    if unknown:
        raise ImportFileError("import.file.unknown_columns", file=file,
                              columns=", ".join(unknown), known=", ".join(spec.aliases))
    missing = [name for name in spec.required if name not in seen]
    if missing:
        raise ImportFileError("import.file.missing_columns", file=file,
                              columns=", ".join(missing))
    if spec.one_of and not any(name in seen for name in spec.one_of):
        raise ImportFileError("import.file.need_one_of", file=file,
                              columns=", ".join(spec.one_of))
    return tuple(columns)


@contextmanager
def _open_rows(path: Path, spec: ColumnSpec) -> Iterator[tuple[CsvInfo, Iterator[Row | RowError]]]:
    """Open, decode and check the header; yield its facts and the data rows.

    Rows are :class:`Row`, or a :class:`RowError` for a row of the wrong shape.
    ``CsvInfo.rows`` is unknown (-1) here: :func:`inspect_csv` counts them.
    """
    file = str(path)
    try:
        handle = path.open("rb")
    except FileNotFoundError as exc:
        raise ImportFileError("import.file.not_found", file=file) from exc
    except OSError as exc:
        raise ImportFileError("import.file.unreadable", file=file, detail=os_reason(exc)) from exc
    with handle:
        lines = _decoded_lines(handle, file)
        skipped = 0  # blank lines above the header still count for line numbers
        first = next(lines, None)
        while first is not None and not first.strip():
            skipped += 1
            first = next(lines, None)
        if first is None:
            raise ImportFileError("import.file.empty", file=file)
        delimiter = _detect_delimiter(first)
        reader = csv.reader(_chain_first(first, lines), delimiter=delimiter, strict=True)
        try:
            header = next(reader)
        except csv.Error as exc:
            raise ImportFileError("import.file.broken_csv", file=file, line=skipped + 1,
                                  detail=exc) from exc
        columns = _map_header(header, spec, file)
        info = CsvInfo(delimiter=delimiter, columns=columns, rows=-1)
        yield info, _iter_rows(reader, columns, file, skipped)


def _chain_first(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def _iter_rows(
    reader: Any, columns: tuple[str, ...], file: str, offset: int
) -> Iterator[Row | RowError]:
    """Data rows with the physical line each starts on (quoted cells may span lines)."""
    previous: int = reader.line_num
    while True:
        start = offset + previous + 1
        try:
            cells: list[str] = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ImportFileError("import.file.broken_csv", file=file, line=start,
                                  detail=exc) from exc
        previous = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue  # blank line or ";;;;" left by a spreadsheet
        if len(cells) != len(columns):
            yield RowError(
                file, start,
                t("import.row.field_count", got=len(cells), expected=len(columns)),
            )
            continue
        yield Row(start, {name: cell.strip() for name, cell in zip(columns, cells, strict=True)})


def inspect_csv(path: Path, spec: ColumnSpec) -> CsvInfo:
    """Read the whole file once without the database: encoding, quoting, header, row count.

    Raises :class:`ImportFileError`; the CLI also uses the row count for its progress bar.
    """
    with _open_rows(path, spec) as (info, rows):
        count = sum(1 for _ in rows)
    return CsvInfo(delimiter=info.delimiter, columns=info.columns, rows=count)


def parse_rows(rows: list[Row], parse: Callable[[Row], T], report: ImportReport) -> list[T]:
    """Every row ``parse`` accepts; a row it refuses (:class:`Invalid`) is reported at its
    line and left out, so one bad row never stops the rest of its batch."""
    parsed: list[T] = []
    for row in rows:
        try:
            parsed.append(parse(row))
        except Invalid as exc:
            report.reject(row.line, str(exc))
    return parsed


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def run_import(
    path: Path,
    spec: ColumnSpec,
    batch_size: int,
    progress: Progress | None,
    handle_batch: Callable[[Session, list[Row], ImportReport], None],
) -> ImportReport:
    """Check the file, then feed it to ``handle_batch`` with one commit per batch."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    inspect_csv(path, spec)  # refuse a bad file before anything is written
    report = ImportReport(file=str(path))
    done = 0
    factory = session_factory()
    with _open_rows(path, spec) as (_info, rows):
        for batch in _batched(rows, batch_size):
            good: list[Row] = []
            for item in batch:
                if isinstance(item, RowError):
                    report.keep(item)
                else:
                    good.append(item)
            if good:
                with factory() as session, session.begin(), session.no_autoflush:
                    handle_batch(session, good, report)
            done += len(batch)
            if progress is not None:
                progress(done)
    report.errors.sort(key=lambda error: error.line)
    return report
