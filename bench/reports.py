"""Monthly report by business over one million engagement events on PostgreSQL.

Run: ``python bench/reports.py [--events 1000000] [--keep]``.  Creates a scratch
database next to the one in ``BENCH_POSTGRES_URL`` (default: the test server,
``postgresql+psycopg://postgres@127.0.0.1:5432/test``), migrates it, fills it in SQL
with ``generate_series`` (no rows travel through Python), runs ``ANALYZE``, then times
:func:`engine.reporting.build.build_report` for ``2026-12`` by business (best and median of
several runs) and :func:`engine.reporting.build.programme_indicators`. Target: under 5 seconds.
The scratch database is dropped at the end unless ``--keep`` is given.

The history: 1,000 UMKM in the 32 kecamatan, 3,000 products, 100,000 customers, 20
campaigns with one run per month (October to December 2026, WITA), 300,000 emails each
carrying three products, 3,000 Facebook posts, and the events: 50 % opens, 15 % clicks
(a tenth of them flagged as scanners), 1 % unsubscribes, 2 % bounces, 0.2 % complaints,
1.8 % leads and 30 % social metric snapshots; 30,000 orders, a third of them after a click.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")

from sqlalchemy import create_engine, text

from engine.config import Settings
from engine.db import dispose_engines, migrate, session_factory
from engine.reporting.build import build_report, programme_indicators

ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/test")
START = "2026-10-01 00:00:00+08"  # WITA
SPAN_SECONDS = 92 * 86400  # October to December


def fill_sql(events: int, deliveries: int) -> list[tuple[str, str]]:
    """(label, statement) pairs that build the whole history inside PostgreSQL."""
    posts = 3_000
    share = {"open": 0.50, "click": 0.15, "unsubscribe": 0.01, "hard_bounce": 0.012,
             "soft_bounce": 0.008,
             "complaint": 0.002, "lead": 0.018}
    counts = {kind: int(events * part) for kind, part in share.items()}
    counts["snapshot"] = events - sum(counts.values())
    sent_at = (f"(timestamptz '{START}' + ((d.id::bigint * 7919) % {SPAN_SECONDS})"
               " * interval '1 second')")
    return [
        ("seed", "SELECT setseed(0.42)"),
        ("businesses", """
            INSERT INTO business (id, name, nib, owner_name, owner_nik_enc, owner_nik_digest,
                owner_nik_masked, kecamatan_code, binaan, size_class, verification, eligible,
                eligibility, created_at, updated_at)
            SELECT g, 'UMKM ' || g, (9120000000000 + g)::text, 'Pemilik ' || g, 'x', md5(g::text),
                   '5302********0001', '53.02.' || lpad((1 + g % 32)::text, 2, '0'), true,
                   'mikro', 'verified', g % 5 <> 0, '{}',
                   timestamptz '2025-01-01' + (g % 700) * interval '1 day', now()
            FROM generate_series(1, 1000) g"""),
        ("products", """
            INSERT INTO product (id, business_id, name, category, price, in_stock,
                certifications, created_at)
            SELECT g, (g - 1) / 3 + 1, 'Produk ' || g, 'kerajinan_tangan',
                   10000 * (1 + g % 50), true, '[]', now()
            FROM generate_series(1, 3000) g"""),
        ("opt-ins", """
            INSERT INTO product_optin (product_id, campaign_key, is_tag, opted_by, opted_at)
            SELECT g, 'promo', false, 'pemilik', timestamptz '2026-09-01'
            FROM generate_series(1, 3000, 2) g"""),
        ("customers", """
            INSERT INTO customer (id, email, name, kecamatan_code, preferences, attributes,
                tags, created_at)
            SELECT g, 'c' || g || '@bench.id', 'Pelanggan ' || g,
                   '53.02.' || lpad((1 + g % 32)::text, 2, '0'), '{}', '{}', '[]', now()
            FROM generate_series(1, 100000) g"""),
        ("campaigns", """
            INSERT INTO campaign (id, key, name, type, tags, spec, spec_hash, active,
                created_at, updated_at)
            SELECT g, 'kampanye-' || g, 'Kampanye ' || g, 'promotional', '[]', '{}',
                   md5(g::text), false, now(), now()
            FROM generate_series(1, 20) g"""),
        ("runs", """
            INSERT INTO campaign_run (id, campaign_id, status, trigger_key, scheduled_at,
                planned, created_at)
            SELECT g, 1 + (g - 1) % 20, 'finished', 'm' || g, now(), 0, now()
            FROM generate_series(1, 60) g"""),
        ("deliveries", f"""
            INSERT INTO delivery (id, run_id, channel, recipient, customer_id, status, context,
                attempts, sent_at, created_at)
            SELECT d.id, 1 + d.id % 60, 'email', 'c' || (1 + d.id % 100000) || '@bench.id',
                   1 + d.id % 100000, CASE WHEN d.id % 50 = 0 THEN 'failed' ELSE 'sent' END,
                   '{{}}', 1,
                   CASE WHEN d.id % 50 = 0 THEN NULL ELSE {sent_at} END, {sent_at}
            FROM generate_series(1, {deliveries}) AS d(id)"""),
        ("delivery products", f"""
            INSERT INTO delivery_product (delivery_id, product_id, business_id, position)
            SELECT d.id, p.pid, (p.pid - 1) / 3 + 1, p.pos
            FROM generate_series(1, {deliveries}) AS d(id)
            CROSS JOIN LATERAL (SELECT 1 + ((d.id * 13 + k * 997) % 3000) AS pid, k AS pos
                                FROM generate_series(0, 2) k) p"""),
        ("social posts", f"""
            WITH d AS (
                INSERT INTO delivery (id, run_id, channel, recipient, status, context,
                    attempts, sent_at, created_at)
                SELECT {deliveries} + g, 1 + g % 60, 'facebook', 'page:' || g, 'sent', '{{}}',
                       1, timestamptz '{START}' + (g % 92) * interval '1 day',
                       timestamptz '{START}' + (g % 92) * interval '1 day'
                FROM generate_series(1, {posts}) g RETURNING id, sent_at)
            INSERT INTO social_post (id, delivery_id, platform, business_id, status,
                published_at, raw)
            SELECT d.id - {deliveries}, d.id, 'facebook', 1 + d.id % 1000, 'published',
                   d.sent_at, '{{}}' FROM d"""),
        ("email events", f"""
            INSERT INTO engagement_event (type, channel, delivery_id, run_id, business_id,
                customer_id, suspected_bot, occurred_at, raw)
            SELECT e.kind, 'email', d.id, d.run_id,
                   CASE WHEN e.kind IN ('click', 'lead') THEN dp.business_id END,
                   d.customer_id, e.kind = 'click' AND random() < 0.1,
                   coalesce(d.sent_at, d.created_at) + random() * interval '3 days',
                   '{{}}'::json
            FROM (SELECT k.kind, g FROM (VALUES
                    ('open', {counts['open']}), ('click', {counts['click']}),
                    ('unsubscribe', {counts['unsubscribe']}),
                    ('hard_bounce', {counts['hard_bounce']}),
                    ('soft_bounce', {counts['soft_bounce']}),
                    ('complaint', {counts['complaint']}), ('lead', {counts['lead']})) AS k(kind, n)
                  CROSS JOIN LATERAL generate_series(1, k.n) g) e
            JOIN delivery d
              ON d.id = 1 + (e.g::bigint * 7919 + length(e.kind) * 104729) % {deliveries}
            JOIN delivery_product dp ON dp.delivery_id = d.id AND dp.position = 0"""),
        ("social snapshots", f"""
            INSERT INTO engagement_event (type, channel, post_id, delivery_id, run_id,
                value, suspected_bot, occurred_at, raw)
            SELECT (ARRAY['view','reach','reaction','comment','share','click','save'])
                       [1 + g % 7], 'facebook', p.id, p.delivery_id, NULL,
                   (g / 7 % 15) * (1 + p.id % 40), false,
                   p.published_at + (g / 7 % 15) * interval '6 hours', '{{}}'
            FROM generate_series(0, {counts['snapshot']} - 1) g
            JOIN social_post p ON p.id = 1 + (g / 105) % {posts}"""),
        ("orders", f"""
            INSERT INTO "order" (business_id, customer_id, external_ref, status, ordered_at,
                total)
            SELECT e.business_id, e.customer_id, 'INV-C' || e.id, 'confirmed',
                   e.occurred_at + random() * interval '10 days', 50000 + (e.id % 20) * 25000
            FROM engagement_event e
            WHERE e.type = 'click' AND e.post_id IS NULL AND e.id % 15 = 0
            UNION ALL
            SELECT 1 + g % 1000, 1 + (g * 31) % 100000, 'INV-R' || g, 'confirmed',
                   timestamptz '{START}'
                       + ((g::bigint * 7919) % {SPAN_SECONDS}) * interval '1 second',
                   75000
            FROM generate_series(1, 20000) g"""),
        ("analyze", "ANALYZE"),
    ]


def timed(fn: object, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        samples.append(time.perf_counter() - start)
    return min(samples), statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--deliveries", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="do not drop the scratch database")
    args = parser.parse_args()

    name = f"umkm_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(database_url=url)
    finished = False
    try:
        migrate(settings)
        engine = create_engine(url)
        fill_start = time.perf_counter()
        with engine.begin() as conn:
            for label, statement in fill_sql(args.events, args.deliveries):
                step = time.perf_counter()
                conn.execute(text(statement))
                print(f"  {label:<18} {time.perf_counter() - step:6.1f} s", flush=True)
        with engine.connect() as conn:
            total = conn.execute(text("SELECT count(*) FROM engagement_event")).scalar_one()
        print(f"built {total:,} engagement events in {time.perf_counter() - fill_start:.1f} s")
        engine.dispose()

        session = session_factory(settings)()
        report = build_report(session, "2026-12", "business")
        print(f"report 2026-12 by business: {len(report.rows)} rows, "
              f"sent {report.totals['sent']:,}, unique clicks {report.totals['unique_clicks']:,}, "
              f"orders {report.totals['orders']:,}")
        best, median = timed(lambda: build_report(session, "2026-12", "business"), args.repeat)
        print(f"monthly report by business: {best:.2f} s (best), {median:.2f} s (median) "
              f"of {args.repeat}; target < 5 s")
        best, median = timed(lambda: programme_indicators(session, "2026-12"), args.repeat)
        print(f"programme indicators:       {best:.2f} s (best), {median:.2f} s (median)")
        session.close()
        finished = True
    finally:
        dispose_engines()
        if args.keep and finished:
            print(f"kept database {url}")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
