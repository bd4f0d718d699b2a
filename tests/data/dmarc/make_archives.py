"""Regenerate the compressed and mailed variants of the DMARC corpus (run from here).

The XML files are written by hand from RFC 7489 appendix C; this script only packs them
as providers send them (Google: .zip, Microsoft and Yahoo: .xml.gz) and builds the
hostile archives, so the bombs need not be stored uncompressed anywhere.
"""

from __future__ import annotations

import gzip
import zipfile
from email.message import EmailMessage
from pathlib import Path

HERE = Path(__file__).parent
BOMB_BYTES = 21 * 1024 * 1024  # above the importer's 20 MB bound


def _zip(name: str, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(HERE / name, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            info = zipfile.ZipInfo(member, date_time=(2026, 12, 2, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def _gzip(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(gzip.compress(data, mtime=0))


def main() -> None:
    for stem in ("google", "microsoft", "yahoo"):
        xml = (HERE / f"{stem}.xml").read_bytes()
        _gzip(f"{stem}.xml.gz", xml)
        _zip(f"{stem}.zip", {f"{stem}!umkm.ttskab.go.id.xml": xml})
    mail = EmailMessage()
    mail["From"] = "noreply-dmarc-support@google.com"
    mail["To"] = "dmarc@umkm.ttskab.go.id"
    mail["Subject"] = "Report domain: umkm.ttskab.go.id Submitter: google.com"
    mail["Message-ID"] = "<4217703911902155806@google.com>"
    mail.set_content("This is an aggregate report from google.com.")
    mail.add_attachment((HERE / "google.zip").read_bytes(), maintype="application",
                        subtype="zip", filename="google.com!umkm.ttskab.go.id.zip")
    (HERE / "google-mail.eml").write_bytes(bytes(mail))
    zeros = b"<feedback>" + b" " * BOMB_BYTES + b"</feedback>"
    _gzip("hostile-bomb.xml.gz", zeros)
    _zip("hostile-bomb.zip", {"bomb.xml": zeros})
    xml = (HERE / "yahoo.xml").read_bytes()
    _zip("hostile-many-members.zip", {f"part{i}.xml": xml for i in range(50)})
    (HERE / "hostile-truncated.xml.gz").write_bytes(gzip.compress(xml, mtime=0)[:60])


if __name__ == "__main__":
    main()
