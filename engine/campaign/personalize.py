"""Recommendations for ``personalized`` campaigns (Pasal 7(3) e).

Two signals, both explainable to Dinas staff:

* **category affinity** -- the share of a customer's distinct purchased products in each
  category, plus a boost for categories they stated in ``Customer.preferences``
  (``{"categories": [...]}``);
* **co-purchase** -- catalog products bought by the same customers who bought the
  customer's products ("pembeli X juga membeli Y"), counted once per run in SQL.

Popularity (distinct buyers in the last year) only breaks near-ties and is the whole
answer for a customer with no history and no stated preference.

Safety by construction: candidates come only from the catalog handed in (opted-in
products of eligible UMKM, :mod:`engine.campaign.catalog`), minus out-of-stock products and
anything the customer already bought, so nothing else can ever be recommended.

Speed (DESIGN §9): :meth:`Recommender.build` loads co-purchase and popularity once per
run; :meth:`Recommender.for_customers` runs one query for a whole batch's history and
scores sparsely: products with a co-purchase signal, plus the first few unseen products
of each category from a list pre-sorted by popularity, which is exactly where the top-k
of the remaining products must come from.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from engine.campaign.catalog import CatalogProduct
from engine.db import in_list
from engine.models import Customer, Order, OrderItem, OrderStatus, Product

PURCHASED = (OrderStatus.confirmed, OrderStatus.shipped, OrderStatus.invoiced)
POPULARITY_WINDOW_DAYS = 365
PREFERENCE_BOOST = 0.5  # a stated category counts like half of a purchase history
CO_PURCHASE_WEIGHT = 1.0
AFFINITY_WEIGHT = 1.0
POPULARITY_WEIGHT = 0.1  # a tie-breaker, never stronger than a real signal
MEMO_SIZE = 20_000  # distinct purchase histories remembered per run


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


@dataclass
class _History:
    bought: set[int] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    affinity: dict[str, float] = field(default_factory=dict)
    stated: frozenset[str] = frozenset()
    muted: frozenset[str] = frozenset()

    def signature(self) -> tuple[Any, ...]:
        """Everything a recommendation depends on: equal signatures, equal picks."""
        return (frozenset(self.bought), frozenset(self.counts.items()), self.stated,
                self.muted)


def _stated_categories(preferences: Any, key: str = "categories") -> set[str]:
    """Categories listed under ``key`` of ``Customer.preferences``: ``categories`` (stated
    interests) or ``muted_categories`` (turned off in the preference centre)."""
    if not isinstance(preferences, Mapping):
        return set()
    stated = preferences.get(key)
    if not isinstance(stated, list):
        return set()
    return {c for c in stated if isinstance(c, str)}


def _affinity(counts: Mapping[str, int], stated: set[str]) -> dict[str, float]:
    """Share of distinct purchased products per category, plus the stated-preference boost."""
    total = sum(counts.values())
    affinity: dict[str, float] = {c: n / total for c, n in counts.items()} if total else {}
    for category in stated:
        affinity[category] = affinity.get(category, 0.0) + PREFERENCE_BOOST
    return affinity


class Recommender:
    """Per-run recommendation state; build it once, then ask for batches of customers."""

    def __init__(
        self,
        catalog: Sequence[CatalogProduct],
        co_purchase: Mapping[int, Mapping[int, int]],
        popularity: Mapping[int, int],
    ) -> None:
        self.products: dict[int, CatalogProduct] = {p.id: p for p in catalog}
        self.co_purchase = co_purchase
        self.popularity = popularity
        top = max(popularity.values(), default=0)
        self._pop_score = {pid: (popularity.get(pid, 0) / top if top else 0.0)
                           for pid in self.products}
        by_category: dict[str, list[int]] = defaultdict(list)
        for pid in sorted(self.products, key=self._rank_key_without_signal):
            by_category[self.products[pid].category].append(pid)
        self._by_category = dict(by_category)
        # Many customers share a purchase history (a catalog of a few dozen products):
        # their picks are computed once per run. Bounded, so memory stays flat.
        self._memo: dict[tuple[Any, ...], list[CatalogProduct]] = {}

    def _rank_key_without_signal(self, pid: int) -> tuple[int, int]:
        return (-self.popularity.get(pid, 0), pid)

    # ------------------------------------------------------------------ building

    @classmethod
    def build(
        cls, session: Session, catalog: Sequence[CatalogProduct], now: datetime
    ) -> Recommender:
        """Load co-purchase counts and popularity for the catalog (two grouped queries)."""
        ids = [p.id for p in catalog]
        if not ids:
            return cls([], {}, {})
        in_stock = set(
            session.execute(
                select(Product.id).where(Product.id.in_(ids), Product.in_stock.is_(True))
            ).scalars()
        )
        catalog = [p for p in catalog if p.id in in_stock]
        ids = [p.id for p in catalog]
        return cls(catalog, _co_purchase(session, ids), _popularity(session, ids, now))

    # ------------------------------------------------------------------ scoring

    def for_customers(
        self, session: Session, customer_ids: Sequence[int], k: int
    ) -> dict[int, list[CatalogProduct]]:
        """Top ``k`` catalog products for each customer (every id gets an entry)."""
        if k < 1 or not customer_ids:
            return {cid: [] for cid in customer_ids}
        histories = self._histories(session, customer_ids)
        return {cid: self._recommend_memo(histories[cid], k) for cid in customer_ids}

    def _recommend_memo(self, history: _History, k: int) -> list[CatalogProduct]:
        key = (*history.signature(), k)
        found = self._memo.get(key)
        if found is None:
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            found = self._memo[key] = self._recommend(history, k)
        return list(found)

    def _histories(self, session: Session, customer_ids: Sequence[int]) -> dict[int, _History]:
        """The batch's purchase history and stated preferences in ONE query."""
        stmt = (
            select(Customer.id, Customer.preferences, OrderItem.product_id, Product.category)
            .select_from(Customer)
            .outerjoin(Order, and_(Order.customer_id == Customer.id, Order.status.in_(PURCHASED)))
            .outerjoin(OrderItem, OrderItem.order_id == Order.id)
            .outerjoin(Product, Product.id == OrderItem.product_id)
            .where(in_list(session, Customer.id, customer_ids))
        )
        histories: dict[int, _History] = defaultdict(_History)
        stated: dict[int, set[str]] = {}
        for cid, preferences, product_id, category in session.execute(stmt).tuples():
            history = histories[cid]
            if cid not in stated:
                stated[cid] = _stated_categories(preferences)
                history.muted = frozenset(_stated_categories(preferences, "muted_categories"))
            if product_id is not None and product_id not in history.bought:
                history.bought.add(product_id)
                history.counts[category] += 1
        for cid, history in histories.items():
            history.stated = frozenset(stated.get(cid, set()))
            history.affinity = _affinity(history.counts, set(history.stated))
        return histories

    def _co_scores(self, bought: Iterable[int]) -> dict[int, int]:
        scores: dict[int, int] = defaultdict(int)
        for pid in bought:
            for other, n in self.co_purchase.get(pid, {}).items():
                scores[other] += n
        return scores

    def _recommend(self, history: _History, k: int) -> list[CatalogProduct]:
        """Top ``k`` by co-purchase, affinity and popularity; never a product already
        bought, nor one of a category the customer muted in the preference centre."""
        bought = history.bought
        co = {pid: n for pid, n in self._co_scores(bought).items()
              if pid in self.products and pid not in bought
              and self.products[pid].category not in history.muted}
        candidates = set(co)
        for category, ranked in self._by_category.items():
            if category in history.muted:
                continue
            taken = 0
            for pid in ranked:
                if taken == k:
                    break
                if pid not in bought and pid not in co:
                    candidates.add(pid)
                    taken += 1
        top_co = max(co.values(), default=0)
        affinity = history.affinity

        def key(pid: int) -> tuple[float, int, int]:
            score = (
                CO_PURCHASE_WEIGHT * (co.get(pid, 0) / top_co if top_co else 0.0)
                + AFFINITY_WEIGHT * affinity.get(self.products[pid].category, 0.0)
                + POPULARITY_WEIGHT * self._pop_score[pid]
            )
            return (-round(score, 9), -self.popularity.get(pid, 0), pid)

        return [self.products[pid] for pid in sorted(candidates, key=key)[:k]]


def _purchases() -> Any:
    """Distinct (customer, product) pairs of real (not cancelled) purchases."""
    return (
        select(Order.customer_id, OrderItem.product_id)
        .join(OrderItem, OrderItem.order_id == Order.id)
        .where(Order.status.in_(PURCHASED))
        .distinct()
        .cte("purchases")
    )


def _co_purchase(session: Session, catalog_ids: list[int]) -> dict[int, dict[int, int]]:
    """bought product -> {catalog product: customers who bought both}, in one GROUP BY."""
    purchases = _purchases()
    a = purchases.alias("a")
    b = purchases.alias("b")
    stmt = (
        select(a.c.product_id, b.c.product_id, func.count())
        .select_from(a)
        .join(b, and_(a.c.customer_id == b.c.customer_id, a.c.product_id != b.c.product_id))
        .where(b.c.product_id.in_(catalog_ids))
        .group_by(a.c.product_id, b.c.product_id)
    )
    matrix: dict[int, dict[int, int]] = defaultdict(dict)
    for source, target, n in session.execute(stmt).tuples():
        matrix[source][target] = int(n)
    return dict(matrix)


def _popularity(session: Session, catalog_ids: list[int], now: datetime) -> dict[int, int]:
    since = _utc(now) - timedelta(days=POPULARITY_WINDOW_DAYS)
    stmt = (
        select(OrderItem.product_id, func.count(func.distinct(Order.customer_id)))
        .join(Order, Order.id == OrderItem.order_id)
        .where(
            OrderItem.product_id.in_(catalog_ids),
            Order.status.in_(PURCHASED),
            Order.ordered_at >= since,
        )
        .group_by(OrderItem.product_id)
    )
    return {pid: int(n) for pid, n in session.execute(stmt).tuples()}
