"""``/dinas/dmarc``: staff and admins see the DMARC figures per source; owners do not."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from engine.engagement import dmarc
from engine.models import utcnow
from tests.web_helpers import World, world_fixture  # noqa: F401 - the "world" fixture

CORPUS = Path(__file__).resolve().parents[1] / "data" / "dmarc"


def _recent_google_report(world: World) -> None:
    """The corpus's Google report, moved to yesterday (the page reads the wall clock)."""
    yesterday = datetime.combine(utcnow().date() - timedelta(days=1), time(), UTC)
    begin = int(yesterday.timestamp())
    xml = (CORPUS / "google.xml").read_text()
    xml = xml.replace("1796083200", str(begin)).replace("1796169599", str(begin + 86399))
    with world.session() as session:
        assert dmarc.import_bytes(session, xml.encode(), "google.xml").status == "imported"
        session.commit()


def test_staff_see_volume_alignment_and_the_unknown_source(world: World) -> None:
    world.app.state.settings = dataclasses.replace(world.settings,
                                                   spf_sources="ip4:203.0.113.0/28")
    _recent_google_report(world)
    staff = world.client("staf")
    page = staff.get("/dinas/dmarc")
    assert page.status_code == 200
    assert 'href="/dinas/dmarc"' in page.text  # in the dinas navigation
    assert 'data-unknown="198.51.100.77"' in page.text
    assert "IP 198.51.100.77 mengirim 7 pesan" in page.text
    assert 'data-unknown="203.0.113.5"' not in page.text
    row = page.text.split('data-ip="203.0.113.5"', 1)[1].split("</tr>", 1)[0]
    assert "<td>150</td>" in row and "80,0%" in row and "100,0%" in row
    assert world.client("admin").get("/dinas/dmarc?days=7").status_code == 200
    odd = staff.get("/dinas/dmarc?days=tiga")  # typed by hand: the default period
    assert odd.status_code == 200 and "30 hari terakhir" in odd.text


def test_owners_and_visitors_are_kept_out(world: World) -> None:
    assert world.client("pemilik-a").get("/dinas/dmarc").status_code == 403
    anonymous = world.client().get("/dinas/dmarc", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")
