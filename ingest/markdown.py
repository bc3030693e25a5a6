"""Markdown to plain-text sections, keeping the heading path of each section."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

FRONT_MATTER = re.compile(
    r"\A\ufeff?---[ \t]*\r?\n(.*?)\r?\n(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S
)
HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
FENCE = re.compile(r"^\s*(```|~~~)")

# Markup that carries no readable text: comments (LiaScript keeps its macros and
# CSS there), style and script blocks, inline SVG.
NOISE_BLOCKS = re.compile(
    r"<!--.*?-->|<style\b.*?</style>|<script\b.*?</script>|<svg\b.*?</svg>",
    re.S | re.I,
)
CONFLICT_MARKER = re.compile(r"^(<{7}|={7}|>{7})( .*)?$")
MDX_IMPORT = re.compile(r"^import\s+.+\s+from\s+['\"].+['\"];?\s*$")
IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")
EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")
CITATION_KEY = re.compile(r"\[@[^\]]+\]")


class FrontMatterError(ValueError):
    """The YAML front matter could not be parsed."""


@dataclass
class Section:
    heading_path: list[str]
    text: str


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Return the front matter mapping and the body that follows it."""
    match = FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        raise FrontMatterError(f"invalid YAML front matter: {error}") from error
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter is not a mapping of field: value")
    return data, text[match.end() :]


def clean_inline(line: str) -> str:
    """Strip Markdown and HTML markup from one line, keeping its words."""
    line = IMAGE.sub("", line)
    line = LINK.sub(r"\1", line)
    line = CITATION_KEY.sub("", line)
    line = HTML_TAG.sub(" ", line)
    line = EMPHASIS.sub(r"\2", line)
    return line.replace("&nbsp;", " ").rstrip()


def split_sections(body: str) -> list[Section]:
    """Split Markdown into sections at headings, outside code fences."""
    body = NOISE_BLOCKS.sub("", body)
    sections: list[Section] = []
    path: list[tuple[int, str]] = []
    lines: list[str] = []
    in_fence = False

    def flush() -> None:
        text = "\n".join(lines).strip()
        text = re.sub(r"\n{3,}", "\n\n", text)
        if text:
            sections.append(Section([title for _, title in path], text))
        lines.clear()

    for raw in body.splitlines():
        if FENCE.match(raw):
            in_fence = not in_fence
            continue
        if CONFLICT_MARKER.match(raw) or MDX_IMPORT.match(raw):
            continue
        heading = None if in_fence else HEADING.match(raw)
        if heading:
            flush()
            level = len(heading.group(1))
            title = clean_inline(heading.group(2)).strip()
            path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
            lines.append(title)
            continue
        lines.append(clean_inline(raw))
    flush()
    return sections


def format_heading_path(path: list[str]) -> str | None:
    """Join a heading path as `Top > Sub > Leaf`; None before the first heading."""
    return " > ".join(part for part in path if part) or None
