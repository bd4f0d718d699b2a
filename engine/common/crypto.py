"""Encryption of personal data and secrets at rest (UU 27/2022 PDP).

NIK and social tokens are stored as Fernet tokens; a keyed digest (HMAC-SHA256) lets
us find duplicates without decrypting. Keys are derived from the one ``SECRET_KEY``
with HKDF so each purpose gets its own key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from engine.config import get_settings


class MissingSecretKey(RuntimeError):
    """Raised when encryption is needed but no secret key exists (run ``umkm init``)."""


def _master_key() -> bytes:
    key = get_settings().secret_key.get()
    if not key:
        raise MissingSecretKey(
            "SECRET_KEY belum diatur: jalankan `umkm init` (atau set SECRET_KEY di .env)"
        )
    return key.encode()


@lru_cache(maxsize=16)
def _derive(master: bytes, purpose: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode()).derive(
        master
    )


def derived_key(purpose: str) -> bytes:
    """32 bytes bound to ``purpose`` (e.g. ``"nik"``, ``"tracking"``)."""
    return _derive(_master_key(), purpose)


def _fernet(purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(derived_key("fernet:" + purpose)))


def encrypt(plaintext: str, purpose: str = "pii") -> str:
    return _fernet(purpose).encrypt(plaintext.encode()).decode()


def decrypt(token: str, purpose: str = "pii") -> str:
    try:
        return _fernet(purpose).decrypt(token.encode()).decode()
    except InvalidToken as exc:  # wrong key or tampered row
        raise ValueError("data terenkripsi tidak dapat dibuka (kunci salah?)") from exc


def digest(value: str, purpose: str = "pii") -> str:
    """Keyed, deterministic digest for equality lookups of encrypted values."""
    return hmac.new(derived_key("digest:" + purpose), value.encode(), hashlib.sha256).hexdigest()


def mask_nik(nik: str) -> str:
    """``5302014107920001`` -> ``5302**********01``: enough for staff to recognise it."""
    if len(nik) < 6:
        return "*" * len(nik)
    return nik[:4] + "*" * (len(nik) - 6) + nik[-2:]


def mask_secret(value: str) -> str:
    if len(value) <= 8:
        return "*" * len(value)
    return value[:4] + "…" + value[-2:]
