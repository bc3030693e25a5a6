"""Curator tokens: random secrets that are configured and compared as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import hmac
import secrets


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> tuple[str, str]:
    """Return a fresh token and the SHA-256 hash to configure for it."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def parse_hashes(value: str) -> list[str]:
    """Split a comma-separated list of hex SHA-256 hashes, ignoring blanks."""
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def token_matches(token: str, hashes: list[str]) -> bool:
    """Compare the token's hash with every configured hash in constant time."""
    digest = hash_token(token)
    matched = False
    for expected in hashes:
        matched |= hmac.compare_digest(digest, expected)
    return matched
