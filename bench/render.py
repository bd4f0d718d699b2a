"""Email hot-path throughput on one core: personalized render, MIME build, MIME + DKIM.

Run: ``python bench/render.py [--seconds 1.5]``.  Prints rates only; writes nothing.

Each stage runs for a fixed time in several rounds and reports the best round (the
least disturbed by other processes on a shared machine) plus the median, with the
number of iterations.  Targets (DESIGN §9): >= 10,000 renders/s, >= 5,000 MIME/s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-not-for-production")

from cryptography.hazmat.primitives.asymmetric import rsa

from engine.engagement.tracking import (
    InMemoryLinkRegistry,
    RunTracker,
    make_unsubscribe_token,
    message_id_for,
)
from engine.message.dkim import DkimSigner
from engine.message.mime import MessageSkeleton
from engine.message.render import RenderedEmail, compile_email, render_email
from engine.message.templating import sample_context

DOMAIN = "umkm.ttskab.go.id"
BASE_URL = f"https://{DOMAIN}"
SUBJECT = "{{ customer.first_name }}, diskon {{ offer.percent }}% tenun ikat – TTS"
FIRST_NAMES = ["Maria", "Yohanes", "Sonya", "Agus", "Ferdinand", "Yuliana", "Melki", "Ina"]


def measure(
    step: Callable[[int], object], seconds: float, rounds: int = 5
) -> tuple[float, float, int]:
    """(best rate, median rate, total iterations) over ``rounds`` timed rounds."""
    rates: list[float] = []
    total = 0
    counter = 0
    for _ in range(rounds):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / rounds
        while True:
            for _ in range(50):
                step(counter)
                counter += 1
            done += 50
            now = time.perf_counter()
            if now >= deadline:
                break
        rates.append(done / (now - start))
        total += done
    return max(rates), statistics.median(rates), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.5, help="time per stage")
    args = parser.parse_args()

    compiled = compile_email("email/promotional.mjml", SUBJECT)
    base = sample_context("promotional")
    contexts = [
        {**base, "customer": {**base["customer"], "first_name": name, "name": f"{name} Tefa"}}
        for name in FIRST_NAMES
    ]
    run = RunTracker(InMemoryLinkRegistry(), BASE_URL,
                     {"source": "dinas-tts", "medium": "email", "campaign": "bench"})

    def render(i: int) -> RenderedEmail:
        context = {**contexts[i % len(contexts)],
                   "unsubscribe_url": f"{BASE_URL}/u/{make_unsubscribe_token(i + 1)}"}
        return render_email(compiled, context, run.for_delivery(i + 1))

    rendered = [render(i) for i in range(len(contexts))]
    skeleton = MessageSkeleton(f"pemasaran@{DOMAIN}", "Dinas Koperasi & UMKM TTS", DOMAIN)

    def build(i: int) -> bytes:
        email = rendered[i % len(rendered)]
        return skeleton.build(
            f"pelanggan{i}@example.id", f"{FIRST_NAMES[i % len(FIRST_NAMES)]} Tefa – Soë",
            email.subject, email.text, email.html, message_id_for(i + 1, 7, DOMAIN),
            f"{BASE_URL}/u/{make_unsubscribe_token(i + 1)}",
        )

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    signer = DkimSigner(DOMAIN, "umkm2026", key)

    def build_and_sign(i: int) -> bytes:
        return signer.sign(build(i))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"personalized email (promotional.mjml, {len(rendered[0].html)} B html), 1 core;"
          f" load average {load:.1f} on {os.cpu_count()} cores (other work lowers the rates):")
    for label, step in (
        ("render (subject + html + text, tracked links)", render),
        ("MIME build (multipart/alternative, QP)", build),
        ("MIME build + DKIM rsa-sha256 (2048 bit)", build_and_sign),
    ):
        best, median, count = measure(step, args.seconds)
        print(f"  {label:<48} {best:>9,.0f}/s best  {median:>9,.0f}/s median"
              f"  ({count:,} iterations)")


if __name__ == "__main__":
    main()
