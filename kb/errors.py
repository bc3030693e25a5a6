"""The exception hierarchy of the knowledge base.

Every message names the value that failed and what the user can do about it.
"""


class KBError(Exception):
    """Base class for every error the knowledge base raises on purpose."""


class ConfigError(KBError):
    """A setting has a value the knowledge base cannot use."""


class ModelMismatchError(KBError):
    """The index was built with a different embedding model than the one configured."""


class DocumentNotFoundError(KBError):
    """No document with the requested id is in the catalogue."""

    def __init__(self, document_id: str) -> None:
        super().__init__(
            f"document {document_id!r} not found; list documents with "
            "`kb documents` or GET /api/documents"
        )
        self.document_id = document_id
