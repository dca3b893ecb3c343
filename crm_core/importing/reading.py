"""Reading import files safely: content sniffing, encoding detection, caps, chunked rows.

A file is judged by its bytes, never by its name or extension: ``PK`` zip containers holding a
workbook are ``.xlsx``, legacy ``.xls`` (OLE) files are refused with a hint, text is CSV. CSV
encodings UTF-8, UTF-8 with BOM and GB18030 (a superset of GBK, as Chinese Excel writes) are
detected and can be overridden. ``.xlsx`` containers are checked for entry count and unpacked
size before openpyxl opens them (zip bombs). Rows come in chunks so memory stays bounded.

The uploaded file name is a label only: nothing here builds a path from it.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import shutil
import tempfile
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import pandas as pd

from crm_core.errors import InvalidInput
from crm_core.settings import get_settings

#: Rows per chunk handed to the importer (big enough for parallel validation).
CHUNK_ROWS = 50_000
#: ``.xlsx`` limits checked before opening: entries in the zip, unpacked bytes per packed byte.
XLSX_MAX_ENTRIES = 2_000
XLSX_MAX_RATIO = 200
#: Unpacked ``.xlsx`` bytes allowed per byte of the import size cap.
XLSX_UNPACKED_FACTOR = 5
ENCODINGS = ("utf-8", "utf-8-sig", "gb18030", "gbk", "big5", "latin-1")
_SNIFF_BYTES = 1 << 20
_CSV_FIELD_LIMIT = 1 << 20

Source = bytes | bytearray | IO[bytes] | Path | str


@dataclass
class FileInfo:
    """What the sniffing found out about a file."""

    format: str  # csv or xlsx
    encoding: str | None  # csv only
    delimiter: str | None  # csv only
    size: int
    sha256: str
    sheet: str | None = None


@dataclass
class Chunk:
    """Consecutive data rows: ``line_numbers`` are 1-based positions in the file (header = 1)."""

    header: list[str]
    rows: list[list[str]]
    line_numbers: list[int] = field(default_factory=list)

    def frame(self) -> pd.DataFrame:
        """The chunk as a DataFrame of strings, one column per header."""
        return pd.DataFrame(self.rows, columns=self.header, dtype="string")


def display_name(name: str | None) -> str:
    """A safe label for an uploaded file's name: its last path part, printable, 200 chars."""
    text = unicodedata.normalize("NFKC", str(name or ""))
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text[:200] or "upload"


class SpooledFile:
    """The import's own copy of the file: in memory when small, in a private temp file when
    big. Created from bytes, a file object or a path the operator gave; the name the user
    uploaded is never used on disk."""

    def __init__(self, source: Source) -> None:
        import hashlib

        cap = get_settings().import_max_bytes
        self._file: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=16 << 20)  # noqa: SIM115
        digest = hashlib.sha256()
        size = 0
        if isinstance(source, str | Path):
            path = Path(source)
            if not path.is_file():
                raise InvalidInput(f"'{path}' is not a readable file", field="file")
            if path.stat().st_size > cap:
                raise _too_big(path.stat().st_size, cap)
            reader: IO[bytes] = path.open("rb")
        elif isinstance(source, bytes | bytearray):
            reader = io.BytesIO(bytes(source))
        else:
            reader = source
        try:
            while True:
                block = reader.read(1 << 20)
                if not block:
                    break
                size += len(block)
                if size > cap:
                    raise _too_big(size, cap)
                digest.update(block)
                self._file.write(block)
        finally:
            if isinstance(source, str | Path):
                reader.close()
        self.size = size
        self.sha256 = digest.hexdigest()
        self._file.seek(0)

    def open(self) -> IO[bytes]:
        """The bytes from the start (one reader at a time)."""
        self._file.seek(0)
        return self._file

    def head(self, n: int = _SNIFF_BYTES) -> bytes:
        self._file.seek(0)
        data = self._file.read(n)
        self._file.seek(0)
        return data

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SpooledFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _too_big(size: int, cap: int) -> InvalidInput:
    return InvalidInput(
        f"the file is larger than the import limit ({size / 1e6:.1f} MB > {cap / 1e6:.1f} MB; "
        "split it or raise CRM_IMPORT_MAX_BYTES)",
        field="file",
    )


# ---------------------------------------------------------------- sniffing


def detect_encoding(head: bytes, *, complete: bool = False) -> str:
    """``utf-8-sig`` (BOM), ``utf-8`` or ``gb18030`` (GBK as Chinese Excel writes CSV).

    ``head`` may end inside a multi-byte character unless ``complete`` says it is the whole
    file. Raises ``InvalidInput`` for bytes that are none of these.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InvalidInput(
            "the file is UTF-16 text; save it as CSV UTF-8 (or CSV with GBK) and try again",
            field="encoding",
        )
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            decoder.decode(head, final=complete)
        except UnicodeDecodeError:
            continue
        return encoding
    raise InvalidInput(
        "the text encoding is not UTF-8 or GBK/GB18030; choose the encoding by hand",
        field="encoding",
    )


def sniff(spool: SpooledFile, *, encoding: str | None = None) -> FileInfo:
    """Tell the format from the content (never the name), the encoding and the delimiter."""
    head = spool.head()
    if not head.strip():
        raise InvalidInput("the file is empty", field="file")
    info = FileInfo("csv", None, None, spool.size, spool.sha256)
    if head.startswith(b"PK\x03\x04"):
        check_xlsx(spool)
        info.format = "xlsx"
        return info
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise InvalidInput(
            "this is an old Excel .xls (or another Office) file; save it as .xlsx or CSV",
            field="file",
        )
    if head.startswith((b"%PDF", b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"\x1f\x8b", b"7z\xbc")):
        raise InvalidInput("the file is not a CSV or .xlsx spreadsheet", field="file")
    if encoding:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise InvalidInput(f"unknown encoding '{encoding}'", field="encoding") from None
        info.encoding = encoding
    else:
        info.encoding = detect_encoding(head, complete=len(head) >= spool.size)
    text = head.decode(info.encoding, errors="ignore")
    if "\x00" in text:
        raise InvalidInput("the file holds binary data, not CSV text", field="file")
    info.delimiter = _delimiter(text)
    return info


def _delimiter(text: str) -> str:
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    if not lines:
        return ","
    best, best_score = ",", 0
    for candidate in (",", "\t", ";", "|"):
        counts = [ln.count(candidate) for ln in lines]
        if counts[0] == 0:
            continue
        # the header's count, repeated on most lines, wins
        score = sum(1 for c in counts if c == counts[0]) * 10 + counts[0]
        if score > best_score:
            best, best_score = candidate, score
    return best


def check_xlsx(spool: SpooledFile) -> None:
    """Refuse zip bombs and non-workbooks before any XML is parsed."""
    limit = get_settings().import_max_bytes * XLSX_UNPACKED_FACTOR
    try:
        with zipfile.ZipFile(spool.open()) as archive:
            entries = archive.infolist()
            if len(entries) > XLSX_MAX_ENTRIES:
                raise InvalidInput(
                    f"the workbook holds {len(entries)} parts (limit {XLSX_MAX_ENTRIES}); "
                    "it is not a normal .xlsx file",
                    field="file",
                )
            names = {e.filename for e in entries}
            if "[Content_Types].xml" not in names or "xl/workbook.xml" not in names:
                raise InvalidInput("the zip file is not an Excel .xlsx workbook", field="file")
            total = 0
            for entry in entries:
                total += entry.file_size
                ratio = entry.file_size / max(entry.compress_size, 1)
                if entry.file_size > (1 << 20) and ratio > XLSX_MAX_RATIO:
                    raise InvalidInput(
                        f"the workbook part '{entry.filename[:60]}' unpacks {ratio:.0f} times "
                        "its size (a zip bomb?); refused",
                        field="file",
                    )
            if total > limit:
                raise InvalidInput(
                    f"the workbook unpacks to {total / 1e6:.0f} MB (limit {limit / 1e6:.0f} MB)",
                    field="file",
                )
    except zipfile.BadZipFile:
        raise InvalidInput("the file is a damaged zip/.xlsx file", field="file") from None
    finally:
        spool.open()


# ---------------------------------------------------------------- reading rows


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as import text: whole numbers without ``.0``, dates as ISO."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        if value != value:
            return ""
        if value.is_integer() and abs(value) < 1e17:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    return str(value)


def _header(raw: list[str]) -> list[str]:
    """Clean header names; blank or repeated names get a position suffix."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, name in enumerate(raw):
        text = unicodedata.normalize("NFKC", str(name or "")).replace("\ufeff", "").strip()
        text = text or f"column {i + 1}"
        if text in seen:
            seen[text] += 1
            text = f"{text} ({seen[text]})"
        else:
            seen[text] = 1
        out.append(text)
    return out


def iter_chunks(
    spool: SpooledFile,
    info: FileInfo,
    *,
    chunk_rows: int = CHUNK_ROWS,
    max_rows: int | None = None,
) -> Iterator[Chunk]:
    """The data rows in chunks. Refuses more than ``max_rows`` (default: the setting)."""
    cap = max_rows if max_rows is not None else get_settings().import_max_rows
    reader = _xlsx_rows(spool, info) if info.format == "xlsx" else _csv_rows(spool, info)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    count = 0
    for line, values in reader:
        if header is None:
            if not any(v.strip() for v in values):
                continue
            header = _header(values)
            continue
        if not any(v.strip() for v in values):
            continue
        count += 1
        if count > cap:
            raise InvalidInput(
                f"the file has more than {cap} rows (the import limit); split it or raise "
                "CRM_IMPORT_MAX_ROWS",
                field="file",
            )
        if len(values) < len(header):
            values = values + [""] * (len(header) - len(values))
        rows.append(values)
        lines.append(line)
        if len(rows) >= chunk_rows:
            yield Chunk(header, rows, lines)
            rows, lines = [], []
    if header is None:
        raise InvalidInput("the file has no header row", field="file")
    if rows or count == 0:
        yield Chunk(header, rows, lines)


def _csv_rows(spool: SpooledFile, info: FileInfo) -> Iterator[tuple[int, list[str]]]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    text = io.TextIOWrapper(spool.open(), encoding=info.encoding or "utf-8", newline="")
    reader = csv.reader(text, delimiter=info.delimiter or ",", strict=True)
    width: int | None = None
    try:
        for values in reader:
            line = reader.line_num
            if width is None and any(v.strip() for v in values):
                width = len(values)
            elif (
                width is not None and len(values) > width and any(v.strip() for v in values[width:])
            ):
                raise InvalidInput(
                    f"line {line} has {len(values)} values but the header has {width}; "
                    "check the quoting and the delimiter",
                    field="file",
                )
            yield line, values[: width or len(values)]
    except csv.Error as exc:
        raise InvalidInput(
            f"line {reader.line_num}: the CSV quoting is broken ({exc}); fix the quotes around "
            "values that contain commas or line breaks",
            field="file",
        ) from None
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"the file is not valid {info.encoding} text near byte {exc.start}; "
            "choose another encoding",
            field="encoding",
        ) from None
    finally:
        text.detach()


def _xlsx_rows(spool: SpooledFile, info: FileInfo) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(spool.open(), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for damaged files
        raise InvalidInput(
            f"the .xlsx workbook cannot be read ({type(exc).__name__})", field="file"
        ) from None
    try:
        if info.sheet:
            if info.sheet not in workbook.sheetnames:
                raise InvalidInput(f"the workbook has no sheet '{info.sheet}'", field="sheet")
            sheet = workbook[info.sheet]
        else:
            sheet = workbook.worksheets[0]
            info.sheet = sheet.title
        try:
            for line, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                yield line, [_cell_text(v) for v in row]
        except InvalidInput:
            raise
        except Exception as exc:
            raise InvalidInput(
                f"the .xlsx workbook is damaged ({type(exc).__name__})", field="file"
            ) from None
    finally:
        workbook.close()


def copy_to(spool: SpooledFile, target: IO[bytes]) -> None:
    """Copy the spooled bytes to ``target`` (used to keep an uploaded file)."""
    shutil.copyfileobj(spool.open(), target)


def open_source(source: Source, *, encoding: str | None = None) -> tuple[SpooledFile, FileInfo]:
    """Spool ``source`` and sniff it; the caller closes the spool."""
    spool = SpooledFile(source)
    try:
        info = sniff(spool, encoding=encoding)
    except BaseException:
        spool.close()
        raise
    return spool, info


def read_frame(
    source: Source, *, encoding: str | None = None, max_rows: int = 1000
) -> pd.DataFrame:
    """The first ``max_rows`` rows of a file as a DataFrame of strings (previews, notebooks)."""
    spool, info = open_source(source, encoding=encoding)
    with spool:
        for chunk in iter_chunks(spool, info, chunk_rows=max_rows, max_rows=10**12):
            return chunk.frame()
    return pd.DataFrame()


__all__ = [
    "CHUNK_ROWS",
    "Chunk",
    "FileInfo",
    "SpooledFile",
    "detect_encoding",
    "display_name",
    "iter_chunks",
    "open_source",
    "read_frame",
    "sniff",
]
