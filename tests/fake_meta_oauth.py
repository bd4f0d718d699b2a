"""Facebook Login for the fake Graph server (:mod:`tests.fake_meta`), as Meta documents it.

- ``GET /{v}/dialog/oauth`` (the consent dialog, served here instead of www.facebook.com):
  an unknown ``client_id`` gets an HTML error page, otherwise a 302 to ``redirect_uri``
  with ``code`` and ``state`` (or ``error=access_denied`` when :attr:`MetaOAuth.deny`);
- ``GET /oauth/access_token`` with ``code``: a wrong app secret is code 1 ("Error
  validating client secret."), an unknown or spent code 100 / 36007 or 36009, another
  ``redirect_uri`` than the dialog's 100 / 36008; each code works once;
- ``GET /oauth/access_token`` with ``grant_type=fb_exchange_token``: a long-lived token
  for a known short-lived one, else 190;
- ``GET /me/accounts`` (user tokens only), ``GET /{page}?fields=instagram_business_account``
  (the page's token or a user token) and ``GET /{phone-number-id}`` (only with a token in
  :attr:`MetaOAuth.whatsapp_tokens`); other tokens get 190 as Graph answers.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

if TYPE_CHECKING:
    from tests.fake_meta import Canned, FakeMeta

OAUTH_PATHS = frozenset({"oauth/access_token", "dialog/oauth"})
APP_ID = "fake-meta-app-id"
APP_SECRET = "fake-meta-app-secret"


@dataclass
class FakePage:
    page_id: str
    name: str
    tasks: tuple[str, ...] = ("CREATE_CONTENT", "MODERATE", "ANALYZE")
    instagram: str | None = None


def _error(code: int, subcode: int | None = None, message: str = "") -> Canned:
    from tests.fake_meta import graph_error
    return graph_error(code, subcode, message)


def _ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Canned:
    from tests.fake_meta import Canned
    return Canned(status=status, body=body, headers=dict(headers or {}))


def _bad_token() -> Canned:
    return _error(190, message="Invalid OAuth access token - Cannot parse access token")


class MetaOAuth:
    """The Facebook Login state of one fake Graph server (tests change it directly)."""

    def __init__(self, fake: FakeMeta) -> None:
        self.fake = fake
        self.app_id, self.app_secret = APP_ID, APP_SECRET
        self.deny = False  # the user clicks "Not now" in the dialog
        self.codes: dict[str, str] = {}  # code -> redirect_uri of its dialog
        self.spent_codes: set[str] = set()
        self.short_tokens: set[str] = set()
        self.long_tokens: set[str] = set()
        self.page_tokens: dict[str, tuple[str, bool]] = {}  # token -> (page, long-lived)
        self.pages: dict[str, FakePage] = {}
        self.phone_numbers: dict[str, dict[str, str]] = {}
        self.whatsapp_tokens: set[str] = set()
        self._n = itertools.count(1)

    def add_page(self, page_id: str, name: str, instagram: str | None = None) -> None:
        self.pages[page_id] = FakePage(page_id, name, instagram=instagram)

    def add_phone(self, phone_id: str, number: str, name: str, token: str) -> None:
        self.phone_numbers[phone_id] = {"display_phone_number": number,
                                        "verified_name": name, "id": phone_id}
        self.whatsapp_tokens.add(token)

    # -- no-token endpoints ----------------------------------------------------------
    def exchange(self, path: str, p: dict[str, str]) -> Canned:
        if path == "dialog/oauth":
            return self._dialog(p)
        if p.get("client_id") != self.app_id:
            return _error(101, message="Error validating application. Invalid application ID.")
        if p.get("client_secret") != self.app_secret:
            return _error(1, message="Error validating client secret.")
        if p.get("grant_type") == "fb_exchange_token":
            if p.get("fb_exchange_token") not in self.short_tokens | self.long_tokens:
                return _bad_token()
            token = f"EAAlong{next(self._n)}"
            self.long_tokens.add(token)
            return _ok({"access_token": token, "token_type": "bearer", "expires_in": 5183944})
        return self._code(p)

    def _dialog(self, p: dict[str, str]) -> Canned:
        if p.get("client_id") != self.app_id or not p.get("redirect_uri"):
            return _ok("<html><body>Invalid App ID</body></html>", status=400)
        answer: dict[str, str] = {"state": p.get("state", "")}
        if self.deny:
            answer |= {"error": "access_denied", "error_code": "200",
                       "error_description": "Permissions error", "error_reason": "user_denied"}
        else:
            code = f"AQfakecode{next(self._n)}"
            self.codes[code] = p["redirect_uri"]
            answer["code"] = code
        return _ok({}, status=302,
                   headers={"Location": f"{p['redirect_uri']}?{urlencode(answer)}"})

    def _code(self, p: dict[str, str]) -> Canned:
        code = p.get("code", "")
        if code in self.spent_codes:
            return _error(100, 36009, "This authorization code has been used.")
        if code not in self.codes:
            return _error(100, 36007, "Invalid verification code format.")
        if self.codes[code] != p.get("redirect_uri"):
            return _error(100, 36008, "Error validating verification code. Please make sure "
                          "your redirect_uri is identical to the one you used in the OAuth "
                          "dialog request")
        del self.codes[code]
        self.spent_codes.add(code)
        token = f"EAAshort{next(self._n)}"
        self.short_tokens.add(token)
        return _ok({"access_token": token, "token_type": "bearer", "expires_in": 3600})

    # -- token endpoints -------------------------------------------------------------
    def route(self, method: str, node: str, edge: str, p: dict[str, str]) -> Canned | None:
        """The answer for the nodes this module owns, ``None`` for every other one."""
        if method != "GET":
            return None
        token = p.get("access_token", "")
        if node == "me" and edge == "accounts":
            return self._accounts(token)
        if not edge and node in self.pages:
            return self._page(node, token, p.get("fields", ""))
        if not edge and node in self.phone_numbers:
            if token not in self.whatsapp_tokens:
                return _bad_token()
            return _ok(dict(self.phone_numbers[node]))
        return None

    def _accounts(self, token: str) -> Canned:
        long_lived = token in self.long_tokens
        if not long_lived and token not in self.short_tokens:
            return _bad_token()
        rows = []
        for page in self.pages.values():
            page_token = f"EAApage{page.page_id}{'long' if long_lived else 'short'}{next(self._n)}"
            self.page_tokens[page_token] = (page.page_id, long_lived)
            rows.append({"access_token": page_token, "category": "Government organization",
                         "name": page.name, "id": page.page_id, "tasks": list(page.tasks)})
        return _ok({"data": rows, "paging": {"cursors": {"before": "b", "after": "a"}}})

    def _page(self, page_id: str, token: str, fields: str) -> Canned:
        owner = self.page_tokens.get(token, ("", False))[0]
        if owner != page_id and token not in self.short_tokens | self.long_tokens:
            return _bad_token()
        body: dict[str, Any] = {"id": page_id}
        page = self.pages[page_id]
        if "name" in fields:
            body["name"] = page.name
        if "instagram_business_account" in fields and page.instagram:
            body["instagram_business_account"] = {"id": page.instagram}
        return _ok(body)
