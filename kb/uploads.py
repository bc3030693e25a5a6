"""Uploaded files: safe names inside the data folder, size and type checks."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from ingest import SUPPORTED_SUFFIXES
from kb.errors import KBError

MAX_NAME_CHARS = 120
UNSAFE = re.compile(r"[^\w.\- ]+")


class UploadError(KBError):
    """An upload was rejected; `status` is the HTTP status that fits the reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def safe_file_name(name: str) -> str:
    """Return a name without folders, control characters or leading dots.

    Raise UploadError for a name that contains a NUL byte or nothing usable.
    """
    if "\x00" in name:
        raise UploadError("invalid file name: it contains a NUL byte")
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = UNSAFE.sub("_", base).strip(" ._")
    if not base or base in {".", ".."}:
        raise UploadError(f"invalid file name {name!r}: give the file a name")
    stem, dot, suffix = base.rpartition(".")
    if dot and len(base) > MAX_NAME_CHARS:
        base = stem[: MAX_NAME_CHARS - len(suffix) - 1] + "." + suffix
    return base[:MAX_NAME_CHARS]


def save_upload(upload_dir: Path, name: str, data: bytes, max_bytes: int) -> Path:
    """Check an upload and write it to `<upload_dir>/<hash>/<safe name>`."""
    safe = safe_file_name(name)
    suffix = Path(safe).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UploadError(
            f"unsupported file type {suffix or '(none)'!r} for {safe}; "
            f"supported: {supported}",
            status=415,
        )
    if not data:
        raise UploadError(f"{safe} is empty (0 bytes)")
    if len(data) > max_bytes:
        raise UploadError(
            f"{safe} is {len(data) / 1e6:.1f} MB, above the limit of "
            f"{max_bytes / 1e6:.1f} MB (KB_MAX_UPLOAD_MB)",
            status=413,
        )
    folder = upload_dir / hashlib.sha256(data).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe
    resolved = path.resolve()
    if upload_dir.resolve() not in resolved.parents:
        raise UploadError(f"invalid file name {name!r}")
    path.write_bytes(data)
    return path
