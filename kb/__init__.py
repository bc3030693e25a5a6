"""Storage, search and cited answers for the VET practice knowledge base."""

from kb.offline import enforce_offline

enforce_offline()

from kb.settings import Settings  # noqa: E402

__all__ = ["Settings"]
