"""Social accounts (Facebook Page, Instagram, TikTok, WhatsApp) and their tokens.

Tokens are encrypted at rest (engine.common.crypto, purpose ``social-token``) and never shown
in full. An account that fails authentication is marked ``needs_reconnect``: only its
own deliveries wait, every other account goes on. Refreshed tokens (TikTok rotates the
refresh token on every use) are stored together in one transaction, and a refresh runs
under the account row's lock (:func:`refresh_tokens`) so that two workers holding the same
refresh token never both spend it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from channels import ChannelKind, channel_names, plugin_channels
from channels.base import AccountCredentials
from channels.tokens import TokenExchange, TokenSet, refresh_once
from engine.common import crypto
from engine.common.errors import BadRequest
from engine.models import Delivery, DeliveryStatus, SocialAccount, utcnow

PLATFORMS = tuple(channel_names(ChannelKind.POST, ChannelKind.MESSAGE, plugins=False))
TOKEN_PURPOSE = "social-token"
STATUS_OK = "ok"
STATUS_NEEDS_RECONNECT = "needs_reconnect"



class AccountError(BadRequest, ValueError):
    """An account request that cannot be carried out (unknown platform or account, empty
    token); ``ValueError`` too, because callers that parse input catch that."""


def platforms() -> list[str]:
    """The built-in social platforms plus every plugin channel (entry point
    ``umkm.channels``): a third-party adapter gets accounts like the built-in ones."""
    return [*PLATFORMS, *plugin_channels()]


def account_key(platform: str, owner: str, business_id: int | None) -> str:
    """``facebook:dinas`` or ``facebook:biz-12``: how campaigns and logs name an account."""
    return f"{platform}:dinas" if owner == "dinas" else f"{platform}:biz-{business_id}"


def key_of(account: SocialAccount) -> str:
    return account_key(account.platform, account.owner, account.business_id)


def connect(
    session: Session, *, platform: str, external_id: str, name: str, access_token: str,
    refresh_token: str | None = None, expires_at: datetime | None = None,
    business_id: int | None = None, meta: dict[str, Any] | None = None,
) -> SocialAccount:
    """Create or reconnect an account; a reconnect clears ``needs_reconnect``."""
    if platform not in PLATFORMS and platform not in platforms():
        raise AccountError("acct.bad_platform", platform=platform,
                           choices=", ".join(platforms()))
    if not access_token.strip():
        raise AccountError("acct.empty_token")
    account = session.scalars(select(SocialAccount).where(
        SocialAccount.platform == platform, SocialAccount.external_id == external_id)
    ).one_or_none()
    was_paused = account is not None and (account.status != STATUS_OK
                                          or account.cooldown_until is not None)
    if account is None:
        account = SocialAccount(platform=platform, external_id=external_id)
        session.add(account)
    account.owner = "business" if business_id else "dinas"
    account.business_id = business_id
    account.name = name
    account.access_token_enc = crypto.encrypt(access_token.strip(), TOKEN_PURPOSE)
    account.refresh_token_enc = (crypto.encrypt(refresh_token.strip(), TOKEN_PURPOSE)
                                 if refresh_token else None)
    account.token_expires_at = expires_at
    account.status = STATUS_OK
    account.cooldown_until = None
    account.meta = dict(meta or {})
    session.flush()
    if was_paused:
        wake_deliveries(session, key_of(account))
    return account


def wake_deliveries(session: Session, key: str) -> int:
    """Make the waiting deliveries of a reconnected account due now (not in 15 minutes).

    A paused account's posts were deferred without spending attempts; once the
    account works again they go out at the next beat tick (``next_attempt_at`` NULL is
    due whatever the caller's clock says).
    """
    platform = key.partition(":")[0]
    rows = session.execute(select(Delivery.id, Delivery.context).where(
        Delivery.channel == platform, Delivery.status == DeliveryStatus.pending,
        Delivery.next_attempt_at.is_not(None))).all()
    ids = [row_id for row_id, context in rows if (context or {}).get("account") == key]
    if ids:
        session.execute(update(Delivery).where(Delivery.id.in_(ids))
                        .values(next_attempt_at=None)
                        .execution_options(synchronize_session=False))
    return len(ids)


def find(session: Session, platform: str, owner: str, business_id: int | None = None
         ) -> SocialAccount | None:
    """The account a campaign means by ``account: dinas`` or ``account: business``."""
    query = select(SocialAccount).where(SocialAccount.platform == platform)
    if owner == "dinas":
        query = query.where(SocialAccount.owner == "dinas")
    else:
        query = query.where(SocialAccount.business_id == business_id)
    return session.scalars(query.order_by(SocialAccount.id)).first()


def by_key(session: Session, key: str) -> SocialAccount:
    platform, _, owner = key.partition(":")
    business_id = int(owner.removeprefix("biz-")) if owner.startswith("biz-") else None
    account = find(session, platform, "dinas" if owner == "dinas" else "business", business_id)
    if account is None:
        raise AccountError("acct.not_found", key=key)
    return account


def credentials(account: SocialAccount) -> AccountCredentials:
    """Decrypted credentials for an adapter (kept in memory only)."""
    access, refresh, expires_at = stored_tokens(account)
    return AccountCredentials(
        key=key_of(account), external_id=account.external_id, access_token=access,
        refresh_token=refresh, expires_at=expires_at, extra=dict(account.meta or {}),
    )


def stored_tokens(account: SocialAccount) -> TokenSet:
    """The account's decrypted token set, as last stored (kept in memory only)."""
    return TokenSet(
        crypto.decrypt(account.access_token_enc, TOKEN_PURPOSE)
        if account.access_token_enc else "",
        crypto.decrypt(account.refresh_token_enc, TOKEN_PURPOSE)
        if account.refresh_token_enc else None,
        account.token_expires_at,
    )


def store_tokens(session: Session, key: str, access_token: str, refresh_token: str | None,
                 expires_at: datetime | None) -> None:
    """Save a refreshed access token and its rotated refresh token atomically.

    One UPDATE, committed at once: TikTok invalidates the old refresh token the moment
    it answers, so a crash between writing one token and the other would lose the
    account. ``refresh_token=None`` keeps the stored one (providers that do not rotate).
    """
    account = by_key(session, key)
    _write_tokens(session, account.id, TokenSet(access_token, refresh_token, expires_at))
    session.commit()


def refresh_tokens(session: Session, key: str, stale_refresh_token: str,
                   exchange: TokenExchange) -> TokenSet:
    """Refresh the account's tokens at most once per rotation, whatever other workers do.

    Two workers that loaded the same credentials both find the access token expired;
    with rotating refresh tokens only the first exchange succeeds and the second would
    mark the account "needs reconnect" for nothing.  So the account row is locked, the
    stored refresh token re-read, and the provider called (``exchange``) only when no
    other worker rotated it meanwhile (:func:`channels.base.refresh_once`); the new set
    is written and committed before the lock is released.  The lock is held for one
    HTTP call, which the adapter's timeout bounds.  Use a session with no writes of its
    own pending: any failure rolls the whole transaction back.
    """
    account_id = by_key(session, key).id
    try:
        account = _locked_account(session, account_id)
        tokens, fresh = refresh_once(stored_tokens(account), stale_refresh_token, exchange)
        if fresh:
            _write_tokens(session, account_id, tokens)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return tokens


def _locked_account(session: Session, account_id: int) -> SocialAccount:
    """Read the account row under a write lock held until the transaction ends.

    PostgreSQL: ``SELECT ... FOR UPDATE`` (a second worker waits, then reads the row
    as the first one committed it).  SQLite ignores ``FOR UPDATE``; it serializes
    writers instead, so the write transaction is opened first (``BEGIN IMMEDIATE``,
    waiting up to the ``busy_timeout`` of :mod:`engine.db`) and the read comes after.
    """
    if session.get_bind().dialect.name == "sqlite":
        _begin_immediate(session)
    query = (select(SocialAccount).where(SocialAccount.id == account_id).with_for_update()
             .execution_options(populate_existing=True))
    return session.scalars(query).one()


def _begin_immediate(session: Session) -> None:
    """Take SQLite's write lock now (pysqlite otherwise defers BEGIN to the first write,
    too late: both workers would already have read the same refresh token)."""
    driver = session.connection().connection.driver_connection
    if driver is not None and not driver.in_transaction:
        driver.execute("BEGIN IMMEDIATE")


def _write_tokens(session: Session, account_id: int, tokens: TokenSet) -> None:
    """Both tokens in one UPDATE; a working refresh also ends a "needs reconnect" pause."""
    values: dict[str, Any] = {
        "access_token_enc": crypto.encrypt(tokens.access_token, TOKEN_PURPOSE),
        "token_expires_at": tokens.expires_at, "status": STATUS_OK}
    if tokens.refresh_token:
        values["refresh_token_enc"] = crypto.encrypt(tokens.refresh_token, TOKEN_PURPOSE)
    session.execute(update(SocialAccount).where(SocialAccount.id == account_id).values(**values))


def mark_needs_reconnect(session: Session, key: str, reason: str) -> None:
    """Pause the account until someone runs ``umkm account connect`` again."""
    account = by_key(session, key)
    account.status = STATUS_NEEDS_RECONNECT
    account.meta = {**(account.meta or {}), "last_error": reason[:500]}
    session.commit()


def cool_down(session: Session, key: str, until: datetime, reason: str) -> None:
    """Stop every worker's calls on the account until ``until`` (never shortened)."""
    account = by_key(session, key)
    current = account.cooldown_until
    if current is not None and current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    if current is None or current < until:
        account.cooldown_until = until
    account.meta = {**(account.meta or {}), "cooldown_reason": reason[:500]}
    session.commit()


@dataclass(frozen=True)
class AccountView:
    """What `account list` and the dashboard show: never a usable token."""

    key: str
    platform: str
    name: str
    external_id: str
    status: str
    token: str
    expires_at: datetime | None
    cooling_until: datetime | None


def overview(session: Session, now: datetime | None = None) -> list[AccountView]:
    now = now or utcnow()
    views = []
    for account in session.scalars(select(SocialAccount).order_by(SocialAccount.platform,
                                                                  SocialAccount.id)):
        token = crypto.decrypt(account.access_token_enc, TOKEN_PURPOSE) \
            if account.access_token_enc else ""
        until = account.cooldown_until
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=UTC)
        views.append(AccountView(key_of(account), account.platform, account.name,
                                 account.external_id, account.status, crypto.mask_secret(token),
                                 account.token_expires_at,
                                 until if until and until > now else None))
    return views
