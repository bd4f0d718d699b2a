"""The run context: everything that is the same for every recipient of a run.

Compiled MJML (one per A/B variant), the MIME skeleton, the DKIM key, the catalog, the
recommender, the tracked-link cache and the channel connection are prepared once per
process and run, and reused by every batch (:mod:`engine.delivery.pipeline`); per
recipient only Jinja, MIME assembly and the signature remain. The typed spec is rebuilt
once here from the stored JSON, so nothing downstream reads the spec as a dict.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.campaign.catalog import CatalogProduct
from engine.campaign.personalize import Recommender
from engine.campaign.schema import CampaignSpec, Content
from engine.config import Settings
from engine.db import in_list, session_factory
from engine.engagement import bounce_verp
from engine.engagement.tracking import DbLinkRegistry, RunTracker
from engine.message.mime import MessageSkeleton
from engine.message.render import CompiledEmail, compile_email
from engine.message.templating import DINAS, compile_string
from engine.models import Campaign, CampaignRun, CampaignType, Customer, aware, utcnow
from engine.outbox import adapters
from engine.social.plan import campaign_products
from engine.umkm import trainings
from engine.umkm.wilayah import kecamatan_name

log = logging.getLogger(__name__)

DEFAULT_PER_MESSAGE = 3  # products per mail when the spec has no ``products`` block


@dataclass
class RunContext:
    """Per-process, per-run state prepared once (the hot path reuses it for every batch)."""

    run_id: int
    campaign_key: str
    campaign_type: str
    spec: CampaignSpec
    spec_hash: str
    variants: list[tuple[str, CompiledEmail]]
    skeleton: MessageSkeleton
    tracker: RunTracker
    catalog: list[CatalogProduct]
    recommender: Recommender | None
    per_message: int
    base_context: dict[str, Any]
    domain: str
    envelope_from: str
    signer: Any = None
    # VERP domain (settings.bounce_domain resolved); "" = one envelope sender for all.
    bounce_domain: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)
    product_contexts: dict[int, dict[str, Any]] = field(default_factory=dict)

    def return_path(self, delivery_id: int, recipient: str) -> str:
        """The envelope sender of one message: a signed VERP address when a bounce
        domain is configured, so any bounce names its delivery (docs/bounces.md)."""
        if not self.bounce_domain:
            return self.envelope_from
        return bounce_verp.return_path(delivery_id, recipient, self.bounce_domain)

    def product_context(self, product: CatalogProduct, base_url: str) -> dict[str, Any]:
        """The template dict of a product, built once per run instead of per recipient.

        Sharing one dict between recipients is safe: templates render in the immutable
        sandbox, so none of them can change it.
        """
        found = self.product_contexts.get(product.id)
        if found is None:
            found = self.product_contexts[product.id] = product.as_context(base_url)
        return found

    def variant_for(self, recipient: str, chosen: str | None = None) -> tuple[str, CompiledEmail]:
        """A/B split: deterministic by recipient and campaign, stable across retries;
        ``chosen`` (a decided A/B winner, on the rest of the audience) wins."""
        for named in self.variants if chosen else []:
            if named[0] == chosen:
                return named
        if len(self.variants) == 1:
            return self.variants[0]
        digest = hashlib.sha256(f"{self.campaign_key}:{recipient}".encode()).digest()
        return self.variants[int.from_bytes(digest[:4], "big") % len(self.variants)]


_contexts: dict[int, RunContext] = {}
_contexts_lock = threading.Lock()


def _mail_domain(settings: Settings) -> str:
    address = settings.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
    return settings.dkim_domain or address.rsplit("@", 1)[-1]


def _sender(settings: Settings) -> tuple[str, str]:
    raw = settings.mail_from.strip()
    if "<" in raw:
        name, addr = raw.rsplit("<", 1)
        return name.strip().strip('"'), addr.rstrip(">").strip()
    return "", raw


def _load_signer(settings: Settings) -> Any:
    if not (settings.dkim_key_path and settings.dkim_selector):
        return None
    from engine.message.dkim import DkimSigner

    return DkimSigner.from_file(_mail_domain(settings), settings.dkim_selector,
                                settings.dkim_key_path)


def _compile_variants(spec: CampaignSpec, lang: str) -> list[tuple[str, CompiledEmail]]:
    """Variant A is the ``email`` block itself; B, C, ... change its subject or template."""
    email = spec.email
    if email is None:
        return []  # a social-only campaign renders no email
    base = ("A", compile_email(email.template, email.subject,
                               preheader=email.preheader, lang=lang))
    variants = [base]
    for index, variant in enumerate(email.variants):
        name = variant.name or chr(ord("B") + index)
        variants.append((name, compile_email(
            variant.template or email.template,
            variant.subject or email.subject,
            preheader=email.preheader, lang=lang)))
    return variants


def campaign_context(spec: CampaignSpec) -> dict[str, str]:
    """The ``campaign`` a template (and a UTM value) sees: id, name and type only."""
    return {"id": spec.id, "name": spec.name, "type": spec.type}


def utm(spec: CampaignSpec, channel: str = "email") -> dict[str, str | None]:
    """UTM parameters of the campaign's links on ``channel``; the values may use Jinja
    (``{{ campaign.id }}``, ``{{ channel }}``)."""
    ctx = {"channel": channel, "campaign": campaign_context(spec)}
    out: dict[str, str | None] = {}
    values = spec.tracking.utm if spec.tracking else None
    for key in ("source", "medium", "campaign", "content"):
        value = getattr(values, key) if values else None
        if value:
            out[f"utm_{key}"] = compile_string(str(value)).render(ctx)
    out.setdefault("utm_medium", channel)  # reports tell channels apart even untagged
    out.setdefault("utm_campaign", spec.id)
    return out


def content_context(spec: CampaignSpec) -> dict[str, Any]:
    """Offer, articles and trainings exactly as ``campaign validate`` rendered them.

    Templates test optional keys (``{% if offer.ends %}``) under StrictUndefined; the
    schema models carry every key (``None`` when unset) and the date types, so a
    campaign that validated can never fail at send time on a missing optional key.
    """
    content = spec.content or Content()
    trainings = [{**tr.model_dump(by_alias=False),
                  "date": tr.date if tr.date.tzinfo else tr.date.replace(tzinfo=spec.zone)}
                 for tr in content.trainings]
    offer = spec.offer.model_dump(by_alias=False) if spec.offer else None
    return {"articles": [a.model_dump(by_alias=False) for a in content.articles],
            "trainings": trainings, "offer": offer}


AGENDA_WINDOW = timedelta(days=45)
AGENDA_PATH = "/portal/pelatihan"


def with_agenda(session: Session, spec: CampaignSpec, content: dict[str, Any],
                base_url: str, now: datetime | None = None) -> dict[str, Any]:
    """A newsletter's trainings: the file's own, then the Dinas trainings of the next 45
    days from the ``training`` table (Pasal 8), so staff announce a training once.

    Why merged at send time: the table changes after the YAML was reviewed (a new
    training, a cancelled one); a training the file already lists (same title and time)
    is not repeated. The button of a table training opens the portal's training page,
    where an owner registers (or finds the WhatsApp link).
    """
    if spec.type != CampaignType.newsletter.value:
        return content
    listed = {(str(tr["title"]).casefold(), tr["date"]) for tr in content["trainings"]}
    extra = []
    for row in trainings.upcoming(session, now, AGENDA_WINDOW):
        when = aware(row.training.starts_at)
        if (row.training.topic.casefold(), when) in listed or row.full:
            continue
        extra.append({"title": row.training.topic, "date": when,
                      "place": trainings.where_text(row.training),
                      "url": base_url.rstrip("/") + AGENDA_PATH})
    return {**content, "trainings": [*content["trainings"], *extra]}


def per_message(spec: CampaignSpec) -> int:
    """How many products one message features."""
    return spec.products.per_message if spec.products else DEFAULT_PER_MESSAGE


def build_run_context(session: Session, run: CampaignRun, settings: Settings) -> RunContext:
    """Prepare a run for sending (the typed spec rebuilt once from the stored JSON)."""
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    spec = CampaignSpec.from_storage(campaign.spec)
    lang = settings.lang if settings.lang in ("id", "en") else "id"
    catalog: list[CatalogProduct] = []
    recommender = None
    if spec.type != CampaignType.transactional.value:
        catalog = campaign_products(session, spec)
        recommender = Recommender.build(session, catalog, utcnow())
    from_name, from_addr = _sender(settings)
    domain = _mail_domain(settings)
    skeleton = MessageSkeleton(from_addr=from_addr,
                               from_name=(spec.email.from_name if spec.email else None)
                               or from_name, domain=domain)
    tracker = RunTracker(DbLinkRegistry(session_factory(settings), run.id), settings.base_url,
                         utm(spec), channel_utm=lambda channel: utm(spec, channel))
    base_context = {
        "campaign": campaign_context(spec),
        "dinas": DINAS, "channel": "email", "lang": lang, "order": None,
        "days_inactive": spec.trigger.inactive_days if spec.trigger else None,
        **with_agenda(session, spec, content_context(spec), settings.base_url),
    }
    return RunContext(
        run_id=run.id, campaign_key=spec.id, campaign_type=spec.type, spec=spec,
        spec_hash=campaign.spec_hash, variants=_compile_variants(spec, lang), skeleton=skeleton,
        tracker=tracker, catalog=catalog, recommender=recommender,
        per_message=per_message(spec), base_context=base_context,
        domain=domain, envelope_from=from_addr, signer=_load_signer(settings),
        bounce_domain=bounce_domain(settings, from_addr),
    )


def bounce_domain(settings: Settings, from_addr: str) -> str:
    """``bounce_domain``: "" off, "auto" the sender's domain, else that domain."""
    value = settings.bounce_domain.strip().lower()
    if value == "auto":
        return from_addr.rpartition("@")[2].lower()
    return value


def run_context(session: Session, run: CampaignRun, settings: Settings) -> RunContext:
    campaign = session.get(Campaign, run.campaign_id)
    assert campaign is not None
    with _contexts_lock:
        ctx = _contexts.get(run.id)
        if ctx is not None and ctx.spec_hash == campaign.spec_hash:
            return ctx
    ctx = build_run_context(session, run, settings)
    with _contexts_lock:
        _contexts[run.id] = ctx
        while len(_contexts) > 64:  # bounded: old runs fall out
            _contexts.pop(next(iter(_contexts)))
    return ctx


def reset_process_state() -> None:
    """Forget cached run contexts and close channel connections (tests, worker shutdown)."""
    with _contexts_lock:
        _contexts.clear()
    adapters.close_email_adapters()


# ----------------------------------------------------------------------------- recipients
@lru_cache(maxsize=1024)
def _kecamatan_label(code: str | None) -> str:
    return kecamatan_name(code) or ""


def _customer_fields(name: str, email: str | None, kecamatan_code: str | None,
                     ) -> dict[str, Any]:
    name = name.strip()
    return {"first_name": name.split()[0] if name else "", "name": name,
            "email": email, "kecamatan": _kecamatan_label(kecamatan_code)}


def customer_context(customer: Customer) -> dict[str, Any]:
    """The ``customer`` a template sees (first name, name, address, kecamatan name)."""
    return _customer_fields(customer.name, customer.email, customer.kecamatan_code)


def customer_contexts(session: Session, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The ``customer`` render context of each id, read as plain columns (no ORM objects)."""
    query = select(Customer.id, Customer.name, Customer.email, Customer.kecamatan_code).where(
        in_list(session, Customer.id, ids))
    return {cid: _customer_fields(name, email, kecamatan)
            for cid, name, email, kecamatan in session.execute(query).tuples()}


