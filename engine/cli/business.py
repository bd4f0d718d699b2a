"""``umkm business``, ``umkm product`` and ``umkm optin``: UMKM data and Pasal 10 checks.

Every command goes through :mod:`engine.umkm.businesses`, so the CLI enforces exactly the
rules the web portal and the importer do. The database is migrated on first use (the
friendly path: no "run umkm init first" dead end). A full NIK is never printed.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.cli.app import app, console, err_console, fail, sub
from engine.common.crypto import MissingSecretKey
from engine.common.formatting import rupiah
from engine.common.i18n import t
from engine.config import ensure_secret_key, get_settings, reset_settings
from engine.db import migrate, session_scope
from engine.models import Business, Product
from engine.umkm import businesses, wilayah
from engine.umkm.eligibility import FAIL, OK, WARNING, Criterion, Verdict, product_problems

business_app = sub("business", "Kelola UMKM dan periksa kelayakan Pasal 10.")
product_app = sub("product", "Kelola produk UMKM.")

_STATUS_STYLE = {OK: "green", WARNING: "yellow", FAIL: "red"}


# --- database access -------------------------------------------------------------------


def ensure_database() -> None:
    """Create the secret key if missing and migrate the schema (fast when up to date).

    Any command module may call this; it makes ``umkm init`` optional.
    """
    settings, created = ensure_secret_key(get_settings())
    if created:
        reset_settings()
        err_console.print(t("cli.biz.key_created", path=settings.secret_key_file))
    migrate()


@contextmanager
def db_session() -> Iterator[Session]:
    """A migrated database session; other errors become a clear message and exit 1.

    Engine refusals (:class:`~engine.common.errors.EngineError`) are printed by the CLI's
    one handler (:class:`engine.cli.app.EngineErrorGroup`); what is caught here is not one.
    """
    try:
        ensure_database()
        with session_scope() as session:
            yield session
    except (MissingSecretKey, ValueError) as exc:  # e.g. a NIK encrypted with another key
        fail(escape(str(exc)))


def default_actor() -> str:
    """``cli:<os user>`` so the audit log says who typed the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def parse_rupiah(value: str) -> int:
    """``"25000"``, ``"25.000"``, ``"Rp 25.000"`` or ``"Rp25.000,00"`` -> ``25000``."""
    text = re.sub(r"(?i)^\s*rp\.?\s*", "", value).strip()
    text = text.split(",", 1)[0].replace(".", "").replace(" ", "")
    if not text.isdigit():
        fail(escape(t("cli.money", value=value)))
    return int(text)


# --- rendering -------------------------------------------------------------------------


def _verdict_table(verdict: Verdict) -> Table:
    table = Table(show_header=True, header_style="bold")
    table.add_column(t("col.criterion"), no_wrap=True)
    table.add_column(t("col.status"), no_wrap=True)
    table.add_column(t("col.reason"))
    for criterion in verdict.criteria:
        table.add_row(t(f"crit.{criterion.key}"), _status(criterion), escape(criterion.message))
    return table


def _status(criterion: Criterion) -> str:
    return f"[{_STATUS_STYLE[criterion.status]}]{t('status.' + criterion.status)}[/]"


def _verdict_line(verdict: Verdict) -> str:
    if not verdict.eligible:
        return f"[red]{t('cli.biz.not_eligible', count=len(verdict.failures))}[/]"
    if verdict.warnings:
        return f"[yellow]{t('cli.biz.eligible_warn', count=len(verdict.warnings))}[/]"
    return f"[green]{t('cli.biz.eligible')}[/]"


def _print_verdict(verdict: Verdict) -> None:
    console.print(_verdict_table(verdict))
    console.print(_verdict_line(verdict))


def _eligible_cell(business: Business) -> str:
    """From the cached verdict: listing many UMKM must not decrypt every NIK."""
    warnings = len((business.eligibility or {}).get("warnings") or [])
    if not business.eligible:
        return "[red]✗[/]"
    if warnings:
        return f"[yellow]✓ ({t('cli.biz.warnings', count=warnings)})[/]"
    return "[green]✓[/]"


def _kecamatan_label(code: str) -> str:
    name = wilayah.kecamatan_name(code)
    return f"{name} ({code})" if name else code


def _yes_no(value: bool) -> str:
    return "✓" if value else "✗"


def _category_label(value: str) -> str:
    return t(f"cat.{value}") if value in ("makanan_olahan", "kerajinan_tangan") else value


# --- business commands ---------------------------------------------------------------


@business_app.command("add")
def business_add(
    name: str = typer.Option(..., "--name", help="Nama usaha."),
    nib: str = typer.Option(..., "--nib", help="Nomor Induk Berusaha (13 digit, OSS-RBA)."),
    owner: str = typer.Option(..., "--owner", help="Nama pemilik."),
    kecamatan: str = typer.Option(
        ..., "--kecamatan", help="Kode (53.02.01) atau nama kecamatan alamat usaha."
    ),
    nik: str | None = typer.Option(
        None, "--nik", help="NIK pemilik (16 digit). Kosongkan untuk diminta tanpa tampil."
    ),
    desa: str | None = typer.Option(None, "--desa", help="Desa/kelurahan."),
    address: str | None = typer.Option(None, "--address", help="Alamat lengkap."),
    phone: str | None = typer.Option(None, "--phone", help="Nomor telepon."),
    whatsapp: str | None = typer.Option(None, "--whatsapp", help="Nomor WhatsApp."),
    email: str | None = typer.Option(None, "--email", help="Alamat email."),
    binaan: bool = typer.Option(False, "--binaan/--bukan-binaan", help="UMKM binaan Dinas."),
    group: str | None = typer.Option(None, "--group", help="Nama kelompok binaan."),
    annual_sales: str | None = typer.Option(
        None, "--annual-sales", help="Omzet tahunan dalam Rupiah (menentukan skala usaha)."
    ),
    actor: str | None = typer.Option(None, "--actor", help="Nama petugas untuk log audit."),
) -> None:
    """Daftarkan UMKM baru (NIK disimpan terenkripsi, ditampilkan tersamar)."""
    if nik is None:
        nik = typer.prompt(t("cli.biz.nik_prompt"), hide_input=True)
    sales = parse_rupiah(annual_sales) if annual_sales is not None else None
    with db_session() as session:
        business = businesses.register_business(
            session,
            name=name,
            nib=nib,
            owner_name=owner,
            nik=nik,
            kecamatan_code=kecamatan,
            desa=desa,
            address=address,
            phone=phone,
            whatsapp=whatsapp,
            email=email,
            binaan=binaan,
            binaan_group=group,
            annual_sales=sales,
            actor=actor or default_actor(),
        )
        verdict = businesses.refresh_eligibility(session, business)
        console.print(t("cli.biz.registered", id=business.id, name=escape(business.name)))
        _print_verdict(verdict)


@business_app.command("list")
def business_list(
    kecamatan: str | None = typer.Option(None, "--kecamatan", help="Hanya kecamatan ini."),
) -> None:
    """Daftar UMKM dengan status kelayakan (NIK tersamar)."""
    with db_session() as session:
        query = select(Business).order_by(Business.id)
        if kecamatan is not None:
            code = wilayah.find_kecamatan(kecamatan)
            if code is None:
                fail(escape(t("cli.biz.not_tts", value=kecamatan)))
            query = query.where(Business.kecamatan_code == code)
        rows = session.scalars(query).all()
        if not rows:
            console.print(t("cli.biz.none"))
            return
        table = Table(header_style="bold")
        table.add_column(t("col.id"), justify="right")
        table.add_column(t("col.name"))
        table.add_column(t("col.nib"), no_wrap=True)
        table.add_column(t("col.nik"), no_wrap=True)
        table.add_column(t("col.kecamatan"))
        table.add_column(t("col.binaan"), justify="center")
        table.add_column(t("col.eligible"))
        for b in rows:
            table.add_row(
                str(b.id),
                escape(b.name),
                b.nib,
                b.owner_nik_masked,
                escape(wilayah.kecamatan_name(b.kecamatan_code) or b.kecamatan_code),
                _yes_no(b.binaan),
                _eligible_cell(b),
            )
        console.print(table)
        eligible = sum(1 for b in rows if b.eligible)
        console.print(t("cli.biz.summary", ok=eligible, total=len(rows)))


@business_app.command("show")
def business_show(ref: str = typer.Argument(..., help="ID atau NIB UMKM.")) -> None:
    """Rincian UMKM, produknya, dan alasan kelayakan per kriteria."""
    with db_session() as session:
        business = businesses.get_business(session, ref)
        verdict = businesses.refresh_eligibility(session, business)
        console.print(_details(business))
        if business.products:
            console.print(_product_table(business.products, with_business=False))
        _print_verdict(verdict)


def _details(b: Business) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    sales = rupiah(b.annual_sales) if b.annual_sales is not None else "-"
    binaan = t("yes") if b.binaan else t("no")
    rows: list[tuple[str, Any]] = [
        ("col.id", b.id),
        ("col.name", b.name),
        ("col.nib", b.nib),
        ("col.owner", b.owner_name),
        ("col.nik", b.owner_nik_masked),
        ("col.kecamatan", _kecamatan_label(b.kecamatan_code)),
        ("col.desa", b.desa),
        ("col.address", b.address),
        ("col.phone", b.phone),
        ("col.whatsapp", b.whatsapp),
        ("col.email", b.email),
        ("col.binaan", binaan + (f" ({b.binaan_group})" if b.binaan_group else "")),
        ("col.size", str(b.size_class)),
        ("col.sales", sales),
        ("col.products", len(b.products)),
    ]
    for key, value in rows:
        grid.add_row(t(key), escape(str(value)) if value not in (None, "") else "-")
    return grid


@business_app.command("check")
def business_check(
    ref: str | None = typer.Argument(None, help="ID atau NIB UMKM."),
    all_: bool = typer.Option(False, "--all", help="Periksa semua UMKM."),
) -> None:
    """Periksa kelayakan Pasal 10 (keluar dengan kode 1 bila UMKM yang disebut belum layak)."""
    if (ref is None) == (not all_):
        fail(t("cli.biz.check_what"))
    if ref is not None:
        with db_session() as session:
            business = businesses.get_business(session, ref)
            verdict = businesses.refresh_eligibility(session, business)
            console.print(f"[bold]#{business.id} {escape(business.name)}[/]")
            _print_verdict(verdict)
        if not verdict.eligible:  # after the commit, so the refreshed cache is kept
            raise typer.Exit(1)
        return
    with db_session() as session:
        _check_all(session)


def _check_all(session: Session) -> None:
    table = Table(header_style="bold")
    table.add_column(t("col.id"), justify="right")
    table.add_column(t("col.name"))
    table.add_column(t("col.eligible"), no_wrap=True)
    table.add_column(t("col.reason"))
    total = eligible = 0
    for business in session.scalars(select(Business).order_by(Business.id)):
        verdict = businesses.refresh_eligibility(session, business)
        total += 1
        eligible += verdict.eligible
        notes = [c for c in verdict.criteria if c.status != OK]
        reasons = "\n".join(f"{t('crit.' + c.key)}: {c.message}" for c in notes)
        table.add_row(
            str(business.id),
            escape(business.name),
            _eligible_cell(business),
            escape(reasons) or "-",
        )
    if not total:
        console.print(t("cli.biz.none"))
        return
    console.print(table)
    console.print(t("cli.biz.summary", ok=eligible, total=total))


@business_app.command("binaan")
def business_binaan(
    ref: str = typer.Argument(..., help="ID atau NIB UMKM."),
    value: bool = typer.Option(..., "--ya/--tidak", help="Tetapkan atau cabut status binaan."),
    group: str | None = typer.Option(None, "--group", help="Nama kelompok binaan."),
    actor: str | None = typer.Option(None, "--actor", help="Nama petugas untuk log audit."),
) -> None:
    """Tandai UMKM sebagai binaan Dinas (hanya petugas Dinas)."""
    with db_session() as session:
        business = businesses.get_business(session, ref)
        verdict = businesses.set_binaan(
            session, business, value, actor or default_actor(), group=group
        )
        key = "cli.biz.binaan_set" if value else "cli.biz.binaan_unset"
        console.print(t(key, id=business.id, name=escape(business.name)))
        console.print(_verdict_line(verdict))


@business_app.command("kecamatan")
def business_kecamatan(
    code: str | None = typer.Argument(None, help="Kode/nama kecamatan untuk daftar desanya."),
) -> None:
    """Daftar kode kecamatan TTS (Kemendagri 53.02.xx), atau desa dalam satu kecamatan."""
    if code is None:
        rows = wilayah.kecamatan_list()
    else:
        found = wilayah.find_kecamatan(code)
        if found is None:
            fail(escape(t("cli.biz.not_tts", value=code)))
        rows = wilayah.desa_list(found)
    table = Table(header_style="bold")
    table.add_column(t("col.code"), no_wrap=True)
    table.add_column(t("col.name"))
    for row_code, name in rows:
        table.add_row(row_code, escape(name))
    console.print(table)


# --- product commands ----------------------------------------------------------------


@product_app.command("add")
def product_add(
    business_ref: str = typer.Option(..., "--business", help="ID atau NIB UMKM."),
    name: str = typer.Option(..., "--name", help="Nama produk."),
    category: str = typer.Option(
        ..., "--category", help="makanan_olahan atau kerajinan_tangan (Pasal 1 angka 6)."
    ),
    price: str = typer.Option(..., "--price", help="Harga dalam Rupiah (25000 atau 25.000)."),
    description: str | None = typer.Option(None, "--description", help="Deskripsi produk."),
    photo: str | None = typer.Option(None, "--photo", help="URL foto produk."),
    sku: str | None = typer.Option(None, "--sku", help="Kode produk milik UMKM."),
    cert: list[str] = typer.Option([], "--cert", help="Sertifikasi: PIRT, halal, BPOM, SNI."),
    in_stock: bool = typer.Option(True, "--in-stock/--out-of-stock", help="Ketersediaan."),
) -> None:
    """Tambah produk UMKM (kelayakan UMKM diperbarui otomatis)."""
    amount = parse_rupiah(price)
    with db_session() as session:
        business = businesses.get_business(session, business_ref)
        product = businesses.add_product(
            session,
            business,
            name=name,
            category=category,
            price=amount,
            description=description,
            image_url=photo,
            sku=sku,
            in_stock=in_stock,
            certifications=cert,
        )
        console.print(
            t("cli.product.added", id=product.id, name=escape(product.name), business=business.id)
        )
        problems = product_problems(product)
        if problems:
            console.print(f"[yellow]{t('cli.product.incomplete', fields=', '.join(problems))}[/]")
        verdict = businesses.refresh_eligibility(session, business)
        console.print(f"#{business.id} {escape(business.name)}: {_verdict_line(verdict)}")


@product_app.command("list")
def product_list(
    business_ref: str | None = typer.Option(None, "--business", help="ID atau NIB UMKM."),
) -> None:
    """Daftar produk (harga dalam Rupiah)."""
    with db_session() as session:
        query = select(Product).order_by(Product.id)
        if business_ref is not None:
            business = businesses.get_business(session, business_ref)
            query = query.where(Product.business_id == business.id)
        products = session.scalars(query).all()
        if not products:
            console.print(t("cli.product.none"))
            return
        console.print(_product_table(products, with_business=business_ref is None))


def _product_table(products: list[Product] | Any, *, with_business: bool) -> Table:
    table = Table(header_style="bold")
    table.add_column(t("col.id"), justify="right")
    table.add_column(t("col.sku"))
    table.add_column(t("col.name"))
    table.add_column(t("col.category"))
    table.add_column(t("col.price"), justify="right", no_wrap=True)
    if with_business:
        table.add_column(t("col.business"))
    table.add_column(t("col.stock"), justify="center")
    table.add_column(t("col.complete"))
    for p in products:
        problems = product_problems(p)
        complete = "[green]✓[/]" if not problems else f"[red]✗[/] {escape(', '.join(problems))}"
        cells = [str(p.id), escape(p.sku or "-"), escape(p.name), _category_label(p.category)]
        cells.append(rupiah(p.price))
        if with_business:
            cells.append(f"#{p.business_id} {escape(p.business.name)}")
        cells += [_yes_no(p.in_stock), complete]
        table.add_row(*cells)
    return table


# --- opt-in --------------------------------------------------------------------------


@app.command("optin")
def optin(
    product_ref: str = typer.Argument(..., help="ID atau SKU produk."),
    campaign: str = typer.Argument(..., help="Kode kampanye (atau tag dengan --tag)."),
    withdraw: bool = typer.Option(False, "--withdraw", help="Tarik produk dari kampanye."),
    tag: bool = typer.Option(False, "--tag", help="Ikut semua kampanye bertag ini."),
    actor: str | None = typer.Option(None, "--actor", help="Nama petugas untuk log audit."),
) -> None:
    """Ikutkan produk ke kampanye (hanya UMKM layak dan produk lengkap), atau tarik."""
    with db_session() as session:
        product = businesses.find_product(session, product_ref)
        who = actor or default_actor()
        if withdraw:
            businesses.withdraw_opt_in(session, product, campaign, who, is_tag=tag)
            key = "cli.optin.withdrawn"
        else:
            businesses.opt_in(session, product, campaign, actor=who, is_tag=tag)
            key = "cli.optin.done_tag" if tag else "cli.optin.done"
        console.print(t(key, id=product.id, name=escape(product.name), campaign=escape(campaign)))
