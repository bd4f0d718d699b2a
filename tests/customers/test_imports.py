"""CSV imports of customers and orders: exact counts, ``file:line: reason`` messages,
idempotent re-imports, consent proof appended only on change, and crash safety (one
transaction per batch, checked by SIGKILLing a real ``umkm import`` process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from engine.cli.app import app
from engine.common import crypto
from engine.common.i18n import set_lang
from engine.config import Settings
from engine.customers.csvfile import ImportFileError
from engine.customers.customer_import import import_customers
from engine.customers.order_import import import_orders
from engine.db import session_factory
from engine.models import (
    Business,
    Consent,
    Customer,
    Order,
    OrderEvent,
    OrderItem,
    Product,
)

UMKM = Path(sys.executable).with_name("umkm")

CUSTOMERS_MIXED = (
    "name,email,phone,kecamatan,consent_email,consent_whatsapp,preferences,tags\n"  # 1
    "Yohanes Tefa,yohanes.tefa@gmail.com,0812-3745-1021,Kota Soe,ya,ya,makanan_olahan,\"setia|\n"
    "reseller\"\n"  # 2-3: one record over two physical lines
    "Maria Nenobais,maria@@gmail.com,,Mollo Utara,ya,,,\n"  # 4
    ",tanpa.nama@gmail.com,,,,,,\n"  # 5
    "Agustinus Benu,agus.benu@gmail.com,,Kupang Kota,,,,\n"  # 6
    "Yuliana Selan,yuliana.selan@gmail.com,,53.02.06,mungkin,,,\n"  # 7
    "Fransiskus Nope,,12345,Fatumnasi,,,,\n"  # 8
    "Elisabeth Tanu,,,Kot'olin,ya,,,\n"  # 9
    "Markus Boimau,markus.boimau@gmail.com,081237004512,Nunkolo,tidak,ya,kerajinan_tangan,\n"
    "Yohanes T.,YOHANES.TEFA@gmail.com,,,,,,\n"  # 11
    "Debora Lakapu,debora.lakapu@gmail.com,085239118870,Kie,ya,ya,kuliner,\n"  # 12
    "Yakobus Taneo,yakobus@gmail.com,0813\n"  # 13
    "\n"  # 14: blank lines are skipped, not counted
    "Maria Nenobais,maria.nenobais@yahoo.co.id,+62 813-3920-1455,53.02.03,ya,tidak,"
    "kerajinan_tangan,\n"  # 15
    "Agustinus Benu,,085338120077,Amanuban Tengah,,ya,,\n"  # 16
    "Rut Kase,rut.kase@gmail.com,,,,ya,,\n"  # 17
)


def expected_customer_errors(path: Path) -> list[str]:
    return [
        f"{path}:4: email tidak valid: 'maria@@gmail.com'",
        f"{path}:5: nama kosong",
        f"{path}:6: kecamatan tidak dikenal di TTS: 'Kupang Kota' (pakai nama atau kode 53.02.xx)",
        f"{path}:7: nilai consent_email tidak valid: 'mungkin' (pakai ya atau tidak)",
        f"{path}:8: nomor telepon tidak valid: '12345' (contoh: 081234567890)",
        f"{path}:9: email atau telepon wajib diisi",
        f"{path}:11: duplikat baris 2 (email sama); baris ini dilewati",
        f"{path}:12: kategori tidak dikenal: 'kuliner' (pilih: makanan_olahan, kerajinan_tangan)",
        f"{path}:13: jumlah kolom 3, seharusnya 8",
        f"{path}:17: persetujuan WhatsApp diisi 'ya' tetapi pelanggan tidak punya nomor telepon",
    ]


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = folder / name
    path.write_bytes(text.encode(encoding))
    return path


def count(model: type, settings: Settings) -> int:
    with session_factory(settings)() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def customer_by(session: Session, **match: str) -> Customer:
    return session.scalars(select(Customer).filter_by(**match)).one()


def consent_history(settings: Settings, email: str) -> list[tuple[str, bool, str]]:
    with session_factory(settings)() as session:
        rows = session.execute(
            select(Consent.channel, Consent.granted, Consent.source)
            .join(Customer, Customer.id == Consent.customer_id)
            .where(Customer.email == email)
            .order_by(Consent.id)
        )
        return [(str(channel), granted, source) for channel, granted, source in rows]


# ------------------------------------------------------------------------- customers


def test_customer_file_with_mixed_rows_gives_exact_counts_and_lines(
    settings: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "customers.csv", CUSTOMERS_MIXED)
    seen: list[int] = []

    report = import_customers(path, batch_size=4, progress=seen.append)

    assert (report.accepted, report.unchanged, report.rejected) == (4, 0, 10)
    assert [str(error) for error in report.errors] == expected_customer_errors(path)
    assert seen == [4, 8, 12, 14]  # rows handled after each committed batch
    with session_factory(settings)() as session:
        yohanes = customer_by(session, email="yohanes.tefa@gmail.com")
        assert yohanes.phone == "6281237451021"
        assert yohanes.kecamatan_code == "53.02.01"
        assert yohanes.preferences == {"categories": ["makanan_olahan"]}
        assert yohanes.tags == ["setia", "reseller"]
        phone_only = customer_by(session, phone="6285338120077")
        assert (phone_only.email, phone_only.kecamatan_code) == (None, "53.02.05")
    # consent rows only where the answer is "ya": "tidak" on a new customer changes nothing
    assert count(Consent, settings) == 5
    assert consent_history(settings, "yohanes.tefa@gmail.com") == [
        ("email", True, "import:customers.csv"),
        ("whatsapp", True, "import:customers.csv"),
    ]
    assert consent_history(settings, "markus.boimau@gmail.com") == [
        ("whatsapp", True, "import:customers.csv")
    ]


def test_customer_reimport_adds_nothing_and_consent_is_appended_only_on_change(
    settings: Settings, tmp_path: Path
) -> None:
    first = write(tmp_path, "customers.csv", CUSTOMERS_MIXED)
    import_customers(first)
    before = (count(Customer, settings), count(Consent, settings))

    again = import_customers(first)

    assert (again.accepted, again.unchanged, again.rejected) == (0, 4, 10)
    assert (count(Customer, settings), count(Consent, settings)) == before

    update = write(
        tmp_path,
        "pembaruan.csv",
        "name,email,phone,consent_email,consent_whatsapp,tags\n"
        "Yohanes Tefa,yohanes.tefa@gmail.com,,tidak,,setia\n"  # withdraws email consent
        "Markus Boimau,markus.boimau@gmail.com,,tidak,ya,\n"  # same state as before
        "Maria Nenobais,,6281339201455,ya,ya,baru\n",  # found by phone: WA tidak -> ya
    )
    report = import_customers(update)

    assert (report.accepted, report.unchanged, report.rejected) == (2, 1, 0)
    assert count(Consent, settings) == before[1] + 2
    assert consent_history(settings, "yohanes.tefa@gmail.com")[-1] == (
        "email", False, "import:pembaruan.csv",
    )
    assert consent_history(settings, "maria.nenobais@yahoo.co.id")[-1] == (
        "whatsapp", True, "import:pembaruan.csv",
    )
    with session_factory(settings)() as session:
        maria = customer_by(session, phone="6281339201455")
        assert maria.tags == ["baru"]  # tags are merged, never dropped
        yohanes = customer_by(session, email="yohanes.tefa@gmail.com")
        assert yohanes.tags == ["setia", "reseller"]

    repeat = import_customers(update)
    assert (repeat.accepted, repeat.unchanged) == (0, 3)
    assert count(Consent, settings) == before[1] + 2


def test_semicolon_file_with_bom_crlf_and_indonesian_headers(
    settings: Settings, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "ekspor-excel.csv",
        "Nama;Surel;No. HP;Kecamatan;Izin Email;Minat\r\n"
        "Yohanes Tefa;yohanes.tefa@gmail.com;0812 3745 1021;KOTA SOE;Ya;makanan olahan\r\n"
        "\"Benu; Agustinus\";agus.benu@gmail.com;85338120077;kie;;\r\n"
        "Yuliana Selan;yuliana.selan@gmail;;Polen;ya;\r\n",
        encoding="utf-8-sig",
    )

    report = import_customers(path)

    assert (report.accepted, report.unchanged, report.rejected) == (2, 0, 1)
    assert [str(e) for e in report.errors] == [
        f"{path}:4: email tidak valid: 'yuliana.selan@gmail'"
    ]
    with session_factory(settings)() as session:
        benu = customer_by(session, email="agus.benu@gmail.com")
        # Excel dropped the leading zero of the phone; the kecamatan KI'E was typed "kie"
        assert (benu.name, benu.phone, benu.kecamatan_code) == (
            "Benu; Agustinus", "6285338120077", "53.02.10",
        )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("email,phone\na@contoh.id,\n", "{path}:1: kolom wajib tidak ada: name"),
        ("nama,alamat_rumah\nA,Jl. Soekarno\n", "{path}:1: kolom tidak dikenal: alamat_rumah"),
        ("nama,kecamatan\nA,Polen\n", "{path}:1: perlu minimal satu kolom dari: email, phone"),
        ("nama,hp,telepon\nA,0812,0812\n", "{path}:1: kolom phone muncul lebih dari sekali"),
        ("", "{path}:1: berkas kosong"),
        ('nama,email\nAna,ana@contoh.id\n"Budi,budi@contoh.id\n', "{path}:3: CSV rusak"),
    ],
)
def test_unusable_file_is_refused_whole_and_nothing_is_written(
    sqlite_settings: Settings, tmp_path: Path, content: str, expected: str
) -> None:
    path = write(tmp_path, "buruk.csv", content)

    with pytest.raises(ImportFileError) as caught:
        import_customers(path)

    assert str(caught.value).startswith(expected.format(path=path))
    assert count(Customer, sqlite_settings) == 0


def test_file_that_is_not_utf8_names_the_line_and_writes_nothing(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    good_rows = "".join(f"Pelanggan {i},p{i}@contoh.id\n" for i in range(5))
    path = write(tmp_path, "cp1252.csv", "nama,email\n" + good_rows + "José Tallo,jose@contoh.id\n",
                 encoding="cp1252")

    with pytest.raises(ImportFileError) as caught:
        import_customers(path, batch_size=2)

    assert str(caught.value).startswith(f"{path}:7: berkas bukan UTF-8")
    assert count(Customer, sqlite_settings) == 0


# ------------------------------------------------------------------------- CLI


@pytest.fixture
def default_lang() -> Iterator[None]:
    """``--lang en`` sets a context variable; put the default back for later tests."""
    yield
    set_lang(None)


def test_cli_exit_codes_bad_row_list_and_summary(
    sqlite_settings: Settings, tmp_path: Path, default_lang: None
) -> None:
    runner = CliRunner()
    good = write(tmp_path, "baik.csv", "nama,email\nYohanes Tefa,yohanes.tefa@gmail.com\n")
    many_bad = write(
        tmp_path, "banyak.csv",
        "nama,email\n" + "".join(f"Pelanggan {i},salah{i}@\n" for i in range(53)),
    )
    missing = tmp_path / "tidak-ada.csv"

    ok = runner.invoke(app, ["import", "customers", str(good)])
    bad = runner.invoke(app, ["import", "customers", str(many_bad)])
    gone = runner.invoke(app, ["import", "customers", str(missing)])
    english = runner.invoke(app, ["--lang", "en", "import", "customers", str(many_bad)])

    assert ok.exit_code == 0, ok.output
    assert "diterima" in ok.output and "tidak berubah" in ok.output
    assert bad.exit_code == 1
    lines = bad.output.splitlines()
    assert f"{many_bad}:2: email tidak valid: 'salah0@'" in lines
    assert f"{many_bad}:51: email tidak valid: 'salah49@'" in lines
    assert f"{many_bad}:52: email tidak valid: 'salah50@'" not in lines  # only 50 shown
    assert "… dan 3 lainnya" in lines
    assert gone.exit_code == 2
    assert f"{missing}: berkas tidak ditemukan" in gone.output
    assert english.exit_code == 1
    assert f"{many_bad}:2: invalid email: 'salah0@'" in english.output.splitlines()
    assert "rejected" in english.output


# ------------------------------------------------------------------------- orders


def make_business(session: Session, nib: str, products: dict[str, int]) -> Business:
    nik = "5302014107920001"
    business = Business(
        name=f"UMKM {nib[-4:]}", nib=nib, owner_name="Pemilik Uji",
        owner_nik_enc=crypto.encrypt(nik, purpose="nik"),
        owner_nik_digest=crypto.digest(nik, "nik"), owner_nik_masked=crypto.mask_nik(nik),
        kecamatan_code="53.02.01",
    )
    session.add(business)
    session.flush()
    for sku, price in products.items():
        session.add(Product(business_id=business.id, sku=sku, name=sku, category="makanan_olahan",
                            price=price))
    return business


@pytest.fixture
def businesses(settings: Settings) -> Settings:
    """The two UMKM (and SKUs) that docs/examples/orders.csv refers to, committed."""
    with session_factory(settings)() as session, session.begin():
        make_business(session, "9120001234567", {"MDU-250": 65000, "SAB-500": 45000})
        make_business(session, "9120007654321", {"TNN-SEL-01": 750000, "TNN-SLD-02": 350000})
    return settings


@pytest.fixture
def shop(businesses: Settings) -> Settings:
    """The two UMKM plus three customers, committed."""
    settings = businesses
    with session_factory(settings)() as session, session.begin():
        session.add_all([
            Customer(name="Yohanes Tefa", email="yohanes.tefa@gmail.com"),
            Customer(name="Maria Nenobais", email="maria.nenobais@yahoo.co.id"),
            Customer(name="Agustinus Benu", phone="6285338120077"),
        ])
    return settings


ORDER_HEADER = ("order_ref,nib,customer_email,customer_phone,sku,quantity,unit_price,ordered_at,"
                "status,courier,tracking_number\n")
ORDERS_MIXED = ORDER_HEADER + (
    "INV-1,9120001234567,yohanes.tefa@gmail.com,,MDU-250,2,Rp 65.000,2026-03-02 09:15,dikirim,"
    "JNE,SOE001\n"  # 2
    "INV-1,9120001234567,yohanes.tefa@gmail.com,,SAB-500,1,45000,2026-03-02 09:15,dikirim,"
    "JNE,SOE001\n"  # 3
    "INV-2,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,1,65.000,14/03/2026,dikonfirmasi,,\n"
    "INV-3,9120007654321,,0853-3812-0077,TNN-SEL-01,1,\"Rp 750.000\",2026-03-05T10:30:00+08:00,"
    "ditagih,,\n"
    "INV-4,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,1,65rb,2026-03-06 10:00,,,\n"  # 6
    "INV-4,9120001234567,maria.nenobais@yahoo.co.id,,XXX-1,1,65000,2026-03-06 10:00,,,\n"  # 7
    "INV-5,9999999999999,maria.nenobais@yahoo.co.id,,MDU-250,1,65000,2026-03-06 10:00,,,\n"  # 8
    "INV-6,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,1,65000,31/02/2026,,,\n"  # 9
    "INV-7,9120001234567,orang.lain@gmail.com,,MDU-250,1,65000,2026-03-06 10:00,,,\n"  # 10
    "INV-8,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,1,65000,2026-03-06 10:00,batal,,\n"
    "INV-9,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,0,65000,2026-03-06 10:00,,,\n"  # 12
    "INV-1,9120001234567,yohanes.tefa@gmail.com,,MDU-250,3,65000,2026-03-02 09:15,,,\n"  # 13
    "INV-10,912000123456,maria.nenobais@yahoo.co.id,,MDU-250,1,65000,2026-03-06 10:00,,,\n"
    "INV-2,9120001234567,yohanes.tefa@gmail.com,,SAB-500,1,45000,14/03/2026,,,\n"  # 15
    "INV-11,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,1,\"150,000\",2026-03-06,,,\n"
)


def expected_order_errors(path: Path) -> list[str]:
    return [
        f"{path}:6: harga tidak valid: '65rb' (contoh: 150000, 150.000 atau Rp 150.000)",
        f"{path}:7: SKU 'XXX-1' tidak ada pada usaha NIB 9120001234567",
        f"{path}:8: usaha dengan NIB 9999999999999 tidak terdaftar",
        f"{path}:9: tanggal tidak valid: '31/02/2026' (contoh: 2026-03-14 10:30 atau 14/03/2026)",
        f"{path}:10: pelanggan tidak ditemukan: orang.lain@gmail.com "
        "(impor pelanggan terlebih dahulu)",
        f"{path}:11: status tidak dikenal: 'batal' (pilih: dikonfirmasi, dikirim, ditagih)",
        f"{path}:12: jumlah tidak valid: '0' (bilangan bulat, minimal 1)",
        f"{path}:13: duplikat baris 2 (pesanan INV-1, SKU MDU-250); baris ini dilewati",
        f"{path}:14: NIB tidak valid: '912000123456' (harus 13 angka)",
        f"{path}:15: pesanan INV-2 sudah tercatat untuk pelanggan lain",
        f"{path}:16: harga tidak valid: '150,000' (contoh: 150000, 150.000 atau Rp 150.000)",
    ]


def order_state(settings: Settings) -> dict[str, tuple[int, str, datetime, set[str], int]]:
    """ref -> (total, status, ordered_at UTC, event kinds, number of lines)."""
    with session_factory(settings)() as session:
        state = {}
        for order in session.scalars(select(Order)):
            kinds = set(session.scalars(
                select(OrderEvent.kind).where(OrderEvent.order_id == order.id)
            ))
            lines = session.scalar(
                select(func.count()).select_from(OrderItem).where(OrderItem.order_id == order.id)
            )
            at = order.ordered_at  # SQLite gives it back naive (it stored UTC)
            at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
            state[order.external_ref] = (order.total, str(order.status), at,
                                         {str(k) for k in kinds}, lines or 0)
        return state


def test_order_file_with_mixed_rows_gives_exact_counts_totals_and_events(
    shop: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "pesanan.csv", ORDERS_MIXED)

    report = import_orders(path)

    assert (report.accepted, report.unchanged, report.rejected) == (4, 0, 11)
    assert [str(error) for error in report.errors] == expected_order_errors(path)
    assert order_state(shop) == {
        # 09.15 WITA = 01.15 UTC; total = 2 x 65.000 + 45.000
        "INV-1": (175000, "shipped", datetime(2026, 3, 2, 1, 15, tzinfo=UTC),
                  {"confirmed", "shipped"}, 2),
        # a bare date is midnight WITA
        "INV-2": (65000, "confirmed", datetime(2026, 3, 13, 16, 0, tzinfo=UTC), {"confirmed"}, 1),
        # invoiced implies confirmed; an explicit +08:00 is honoured
        "INV-3": (750000, "invoiced", datetime(2026, 3, 5, 2, 30, tzinfo=UTC),
                  {"confirmed", "invoiced"}, 1),
    }
    with session_factory(shop)() as session:
        events = session.scalars(select(OrderEvent)).all()
        assert {(e.source, e.processed_at) for e in events} == {("csv", None)}
        inv1 = session.scalars(select(Order).where(Order.external_ref == "INV-1")).one()
        assert (inv1.shipping_courier, inv1.tracking_number) == ("JNE", "SOE001")


def test_order_reimport_adds_nothing_and_a_later_status_adds_one_event(
    shop: Settings, tmp_path: Path
) -> None:
    path = write(tmp_path, "pesanan.csv", ORDERS_MIXED)
    import_orders(path, batch_size=1)  # lines of INV-1 land in separate transactions
    first = order_state(shop)
    assert first["INV-1"][0] == 175000 and first["INV-1"][4] == 2
    counts = (count(Order, shop), count(OrderItem, shop), count(OrderEvent, shop))

    again = import_orders(path, batch_size=3)

    assert (again.accepted, again.unchanged, again.rejected) == (0, 4, 11)
    assert (count(Order, shop), count(OrderItem, shop), count(OrderEvent, shop)) == counts
    assert order_state(shop) == first

    shipped = write(tmp_path, "dikirim.csv", ORDER_HEADER + (
        "INV-2,9120001234567,maria.nenobais@yahoo.co.id,,MDU-250,1,65000,2026-03-14 00:00,"
        "dikirim,J&T,JT123\n"
    ))
    report = import_orders(shipped)

    assert (report.accepted, report.unchanged, report.rejected) == (1, 0, 0)
    assert count(OrderEvent, shop) == counts[2] + 1
    assert order_state(shop)["INV-2"][1:4] == (
        "shipped", datetime(2026, 3, 13, 16, 0, tzinfo=UTC), {"confirmed", "shipped"},
    )


# ------------------------------------------------------------------------- crash safety


def _db_count(url: str, query: str) -> int:
    eng = create_engine(url)
    try:
        with eng.connect() as conn:
            return int(conn.exec_driver_sql(query).scalar() or 0)
    finally:
        eng.dispose()


def test_killed_import_keeps_only_whole_batches_and_rerun_completes(
    settings: Settings, tmp_path: Path
) -> None:
    total, batch = 20_000, 250
    big = tmp_path / "besar.csv"
    with big.open("w", encoding="utf-8") as out:
        out.write("nama,email,kecamatan,consent_email\n")
        for i in range(total):
            out.write(f"Pelanggan {i},pelanggan{i}@contoh.id,53.02.{i % 32 + 1:02d},ya\n")
    url = settings.effective_database_url
    command = [str(UMKM), "import", "customers", str(big), "--batch-size", str(batch)]
    env = dict(os.environ)

    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    eng = create_engine(url)
    try:
        deadline = time.monotonic() + 120
        committed = 0
        while committed < 2 * batch and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
            with eng.connect() as conn:
                committed = int(conn.exec_driver_sql("SELECT count(*) FROM customer").scalar() or 0)
        assert proc.poll() is None, "the import finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        eng.dispose()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    customers = _db_count(url, "SELECT count(*) FROM customer")
    consents = _db_count(url, "SELECT count(*) FROM consent")
    assert 0 < customers < total
    assert customers % batch == 0, "a partial batch was committed"
    assert consents == customers  # no customer without its consent proof, nor the reverse

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    assert rerun.returncode == 0, rerun.stderr
    assert _db_count(url, "SELECT count(*) FROM customer") == total
    assert _db_count(url, "SELECT count(DISTINCT email) FROM customer") == total
    assert _db_count(url, "SELECT count(*) FROM consent") == total
    granted_email = "SELECT count(*) FROM consent WHERE channel = 'email' AND granted"
    assert _db_count(url, granted_email) == total



def test_documented_example_files_import_cleanly(businesses: Settings) -> None:
    examples = Path(__file__).resolve().parents[2] / "docs" / "examples"

    customers = import_customers(examples / "customers.csv")
    orders = import_orders(examples / "orders.csv")

    assert (customers.rejected, orders.rejected) == (0, 0), customers.errors + orders.errors
    assert customers.accepted == 8
    assert orders.accepted == 5
    assert count(Order, businesses) == 4
