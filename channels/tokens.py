"""Access tokens of social accounts and the one rule for refreshing them.

Split from :mod:`channels.base` (which re-exports these names) because the rotation
rule is its own concern: TikTok's refresh tokens die at first use, so two workers
holding the same credentials must not both refresh.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple


class TokenSet(NamedTuple):
    """An access token with the refresh token and expiry that came with it.

    A tuple so that ``access, refresh, expires_at = tokens`` reads naturally; ``repr``
    hides both tokens because a TokenSet can end up in a log line or a traceback.
    """

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at!r})"


# Performs the provider's refresh call: refresh token in, the new set out (raises a
# ChannelError when the provider refuses).
TokenExchange = Callable[[str], TokenSet]


def refresh_once(stored: TokenSet | None, stale_refresh_token: str, exchange: TokenExchange,
                 now: datetime | None = None) -> tuple[TokenSet, bool]:
    """Decide, under the account's lock, whether a refresh still has to reach the provider.

    Refresh tokens that rotate (TikTok) die at their first use, so when the stored set
    already carries another refresh token, a worker that loaded the same credentials
    refreshed first: its set is returned and the provider is not called (calling it with
    the stale token would only earn ``invalid_grant`` and a false "reconnect").  Otherwise
    the newest refresh token known is exchanged, also when the stored set is newer but its
    access token has expired as well.  Returns the set and whether it is a new one that
    the caller must store before letting go of the lock.
    """
    if stored is None or not stored.refresh_token:
        return exchange(stale_refresh_token), True
    if stored.refresh_token != stale_refresh_token and _usable(stored, now):
        return stored, False
    return exchange(stored.refresh_token), True


def _usable(tokens: TokenSet, now: datetime | None) -> bool:
    """Whether the access token has not expired yet (an unknown expiry counts as usable)."""
    expires = tokens.expires_at
    if expires is None:
        return True
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return expires > (now or datetime.now(UTC))
