"""Fail when any log written by the test suite contains a full NIK (UU 27/2022).

A NIK is 16 digits; nothing else the engine logs (NIB 13, phone <= 15) is that long, so
any free-standing run of exactly 16 digits is treated as a leak. "Free-standing" excludes
digits glued to letters, dots, dashes or ``@``: the random part of a Message-ID
(``umkm.1.1136.2143293999482207@...``) is 16 hex digits and about one in 1,800 is all
decimal, which is a token, not a NIK.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

NIK_LIKE = re.compile(rb"(?<![\w.@-])\d{16}(?![\w@-])")


def scan(folder: Path) -> list[str]:
    leaks: list[str] = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        for lineno, line in enumerate(path.read_bytes().splitlines(), start=1):
            match = NIK_LIKE.search(line)
            if match:
                digits = match.group().decode()
                leaks.append(f"{path}:{lineno}: {digits[:4]}…{digits[-2:]}")
    return leaks


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "var/test-logs")
    if not folder.is_dir():
        print(f"tidak ada log untuk diperiksa di {folder}", file=sys.stderr)
        return 1
    leaks = scan(folder)
    files = sum(1 for p in folder.rglob("*") if p.is_file())
    if leaks:
        print("NIK lengkap ditemukan di log:", *leaks[:20], sep="\n  ")
        return 1
    print(f"check_logs: {files} berkas log diperiksa, tidak ada NIK lengkap.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
