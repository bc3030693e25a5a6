"""Bearer-token checks for the API: curators write, readers read when required."""

from __future__ import annotations

import logging

from fastapi import Header, HTTPException

from kb.auth import parse_hashes, token_matches
from kb.settings import Settings

logger = logging.getLogger(__name__)


def _bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def curator_guard(settings: Settings):
    """Return a dependency that admits only requests with a curator token."""
    hashes = parse_hashes(settings.curator_token_sha256)

    def require_curator(authorization: str | None = Header(default=None)) -> None:
        if not hashes:
            raise HTTPException(
                403,
                "writing is disabled: set KB_CURATOR_TOKEN_SHA256 to the hash "
                "printed by `kb token new`",
            )
        token = _bearer(authorization)
        if token is None:
            raise HTTPException(
                401,
                "missing curator token: send the header "
                "'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not token_matches(token, hashes):
            logger.warning("rejected a write with an invalid curator token")
            raise HTTPException(403, "invalid curator token")

    return require_curator


def reader_guard(settings: Settings):
    """Return a dependency that checks reader tokens when they are configured."""
    readers = parse_hashes(settings.reader_token_sha256)
    curators = parse_hashes(settings.curator_token_sha256)

    def require_reader(authorization: str | None = Header(default=None)) -> None:
        if not readers:
            return
        token = _bearer(authorization)
        if token is None:
            raise HTTPException(
                401,
                "missing reader token: send 'Authorization: Bearer <token>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not token_matches(token, readers + curators):
            raise HTTPException(403, "invalid reader token")

    return require_reader
