"""Seed a PostgreSQL database with N benchmark customers in seconds, not minutes.

The UMKM, products and opt-ins come from the demo dataset (:mod:`engine.demo.seeding`,
through the service layer, so eligibility is real); the N customers, their marketing
consent and 1-3 orders each (at least one handicraft purchase in the last year, so the
promotion's audience matches them) are generated inside PostgreSQL with
``INSERT ... SELECT generate_series``: no row ever travels through Python.

Customers are tagged ``bench``; the first ``scale_n`` also ``bench-scale`` (the audience
of the smaller one-worker pass). Run alone: ``python bench/seed.py URL N``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import Engine, create_engine, text

FIRST_NAMES = ("Maria", "Yohanes", "Sonya", "Agus", "Ferdinand", "Yuliana", "Melki", "Ina",
               "Yosef", "Marselina", "Benediktus", "Elisabeth", "Paulus", "Theresia",
               "Kristo", "Oktovianus", "Adriana", "Daniel", "Ester", "Frans", "Nelci",
               "Simon", "Veronika", "Wilhelmus")
SURNAMES = ("Tefa", "Nenobais", "Tanesib", "Benu", "Nope", "Taneo", "Sanam", "Boimau",
            "Tlonaen", "Kase", "Nubatonis", "Selan", "Toto", "Lakapu", "Manafe", "Bani")
KECAMATAN = ("53.02.01", "53.02.02", "53.02.03", "53.02.04", "53.02.05", "53.02.06",
             "53.02.07", "53.02.12", "53.02.13", "53.02.14")


@dataclass
class SeedReport:
    customers: int
    orders: int
    order_items: int
    products: int
    seconds: float


def _array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def seed_demo_catalog(url: str) -> None:
    """UMKM, products and opt-ins of the demo (plus its 320 customers) via the engine."""
    from engine.config import Settings
    from engine.db import session_factory
    from engine.demo.seeding import seed_demo

    with session_factory(Settings(database_url=url))() as session:
        seed_demo(session)
        session.commit()


def _customers_sql(n: int, scale_n: int) -> str:
    first, last, kec = _array(FIRST_NAMES), _array(SURNAMES), _array(KECAMATAN)
    return f"""
        INSERT INTO customer (email, phone, name, kecamatan_code, preferences, attributes,
                              tags, created_at)
        SELECT 'pelanggan' || g || '@bench.example.id', NULL,
               ({first})[1 + g % {len(FIRST_NAMES)}] || ' ' ||
               ({last})[1 + (g / {len(FIRST_NAMES)}) % {len(SURNAMES)}],
               ({kec})[1 + g % {len(KECAMATAN)}],
               CASE WHEN g % 5 = 0 THEN '{{"categories": ["makanan_olahan"]}}'::json
                    ELSE '{{}}'::json END,
               '{{"source": "bench"}}'::json,
               CASE WHEN g <= {scale_n} THEN '["bench", "bench-scale"]'::json
                    ELSE '["bench"]'::json END,
               now() - interval '400 days'
        FROM generate_series(1, {n}) AS g
    """


_CONSENT_SQL = """
    INSERT INTO consent (customer_id, channel, purpose, granted, source, recorded_at)
    SELECT id, 'email', 'marketing', true, 'bench', now() - interval '300 days'
    FROM customer WHERE email LIKE '%@bench.example.id'
"""

# Products of the catalog numbered per category; every customer buys one handicraft in
# the last year (order 1) and 0-2 more products of any category (orders 2-3).
_PRODUCTS_SQL = """
    CREATE TEMP TABLE bench_product ON COMMIT DROP AS
    SELECT id, business_id, price, category,
           row_number() OVER (PARTITION BY category = 'kerajinan_tangan' ORDER BY id) - 1
               AS craft_idx,
           row_number() OVER (ORDER BY id) - 1 AS any_idx
    FROM product WHERE in_stock
"""

_ORDERS_SQL = """
    CREATE TEMP TABLE bench_order ON COMMIT DROP AS
    WITH c AS (
        SELECT id, row_number() OVER (ORDER BY id) AS g
        FROM customer WHERE email LIKE '%@bench.example.id'
    ), k AS (
        SELECT c.id AS customer_id, c.g, s.k
        FROM c CROSS JOIN LATERAL generate_series(1, 1 + (c.g % 3)::int) AS s(k)
    )
    SELECT k.customer_id, k.g, k.k, p.id AS product_id, p.business_id, p.price,
           'BENCH-' || k.g || '-' || k.k AS ref,
           now() - ((8 + (k.g * 37 + k.k * 101) % 350) || ' days')::interval AS ordered_at
    FROM k
    JOIN bench_product p ON
        CASE WHEN k.k = 1
             THEN p.category = 'kerajinan_tangan'
                  AND p.craft_idx = (k.g * 7) % :crafts
             ELSE p.any_idx = (k.g * 13 + k.k * 5) % :products END
"""

_INSERT_ORDERS_SQL = """
    INSERT INTO "order" (business_id, customer_id, external_ref, status, ordered_at, total)
    SELECT business_id, customer_id, ref, 'invoiced', ordered_at, price FROM bench_order
"""

_INSERT_ITEMS_SQL = """
    INSERT INTO order_item (order_id, product_id, quantity, unit_price)
    SELECT o.id, b.product_id, 1, b.price
    FROM bench_order b
    JOIN "order" o ON o.business_id = b.business_id AND o.external_ref = b.ref
"""


def seed_bench_customers(engine: Engine, n: int, scale_n: int) -> tuple[int, int, int]:
    """(customers, orders, products) inserted in one transaction, all in SQL."""
    with engine.begin() as conn:
        conn.execute(text(_customers_sql(n, min(scale_n, n))))
        conn.execute(text(_CONSENT_SQL))
        conn.execute(text(_PRODUCTS_SQL))
        crafts, products = conn.execute(text(
            "SELECT count(*) FILTER (WHERE category = 'kerajinan_tangan'), count(*) "
            "FROM bench_product")).one()
        if not crafts:
            raise RuntimeError("the demo catalog has no handicraft product in stock")
        conn.execute(text(_ORDERS_SQL), {"crafts": crafts, "products": products})
        orders = conn.execute(text(_INSERT_ORDERS_SQL)).rowcount
        conn.execute(text(_INSERT_ITEMS_SQL))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM as well (issue 22): rows fresh from one bulk transaction have no hint
        # bits and no visibility map yet, and the first query to read them sets them,
        # writing every page back (~10 s more in the launch of 1M, once). A real
        # customer base has been vacuumed long before a campaign reads it.
        conn.execute(text("VACUUM ANALYZE"))
    return n, int(orders), int(products)


def seed(url: str, n: int, scale_n: int = 0) -> SeedReport:
    """Demo catalog + N bench customers with consent and purchase history."""
    start = time.perf_counter()
    seed_demo_catalog(url)
    engine = create_engine(url)
    try:
        customers, orders, products = seed_bench_customers(engine, n, scale_n)
    finally:
        engine.dispose()
    return SeedReport(customers, orders, orders, products, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="SQLAlchemy URL of a migrated, empty PostgreSQL database")
    parser.add_argument("n", type=int, help="number of bench customers")
    parser.add_argument("--scale-n", type=int, default=0, help="customers also tagged bench-scale")
    args = parser.parse_args()
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")
    report = seed(args.url, args.n, args.scale_n)
    print(f"{report.customers:,} customers, {report.orders:,} orders over "
          f"{report.products} products in {report.seconds:.1f} s")


if __name__ == "__main__":
    main()
