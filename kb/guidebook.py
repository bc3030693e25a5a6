"""The guidebook: case descriptions exported as one static HTML page and as Markdown.

The HTML page is self-contained: styles are inline, and a Content-Security-Policy
meta tag stops the browser from loading any script, style sheet, image or font,
so the page makes no request when opened. Links to sources stay plain links.
Every string that comes from a document is escaped, in HTML and in Markdown.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import get_args

from ingest.cases import Technology, UseCase
from ingest.markdown import FrontMatterError, split_front_matter, split_sections
from kb.catalogue import DocumentRecord
from kb.facets import FACET_LABELS, FacetCounts, count_facets, record_values
from kb.filters import Filters
from kb.practices import case_records, file_url, source_links

TITLE = "Guidebook: AI and XR practices in vocational education and training"
# Facet fields listed under "Facts and figures", in this order.
GUIDEBOOK_FACETS = (
    "use_case",
    "technology",
    "country",
    "sector",
    "source_language",
    "year",
    "institution",
)
# Case description fields shown in each entry, with their labels.
ENTRY_FIELDS = (
    ("institution", "Institution"),
    ("country", "Country"),
    ("technology", "Technology"),
    ("use_case", "Use case"),
    ("sector", "Sector"),
    ("target_group", "Target group"),
    ("language", "Language of the source"),
    ("year", "Year"),
    ("licence", "Licence"),
)
HTML_FILE = "guidebook.html"
MARKDOWN_FILE = "guidebook.md"
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
    "font-src 'none'; script-src 'none'; base-uri 'none'; form-action 'none'"
)
STYLE = """
body {font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto;
  padding: 0 1rem; line-height: 1.5; color: #222;}
h1 {font-size: 1.8rem;} h2 {border-bottom: 2px solid #6b8afd; padding-bottom: .2rem;}
nav ol {padding-left: 1.2rem;} nav li {margin: .1rem 0;}
table {border-collapse: collapse; margin: .5rem 0 1rem;}
th, td {border: 1px solid #ccd; padding: .2rem .6rem; text-align: left;}
td.count {text-align: right;}
.facets {display: flex; flex-wrap: wrap; align-items: flex-start; gap: 0 2rem;}
.group li {margin: .3rem 0;} .meta {color: #555; font-size: .9em;}
article {border-left: 4px solid #6b8afd; padding: .2rem 1rem; margin: 1.5rem 0;}
dl {display: grid; grid-template-columns: max-content 1fr; gap: .1rem 1rem;}
dt {font-weight: 600;} dd {margin: 0;}
.summary {font-style: italic;} .note {color: #a05a00;}
"""
MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~])")
MARKDOWN_LINE_START = re.compile(r"^([#+\-=>]|\d+[.)])", re.M)
SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class DescriptionSection:
    """One section of a case description body: its heading and paragraphs."""

    heading: str
    paragraphs: list[str]


@dataclass
class GuidebookEntry:
    """One case description as the guidebook shows it."""

    record: DocumentRecord
    sections: list[DescriptionSection] = field(default_factory=list)
    readable: bool = True  # False when the case file could not be read


@dataclass
class Guidebook:
    """The guidebook in both formats, with the number of case descriptions."""

    html: str
    markdown: str
    cases: int


def slug(text: str) -> str:
    return SLUG.sub("-", text.casefold()).strip("-") or "item"


def markdown_text(text: str) -> str:
    """Escape text for Markdown so that it shows literally, HTML tags included."""
    escaped = MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return MARKDOWN_LINE_START.sub(r"\\\1", escaped)


def read_sections(record: DocumentRecord) -> list[DescriptionSection] | None:
    """Return the body sections of a case file, or None when it cannot be read."""
    try:
        text = Path(record.abs_path).read_text(encoding="utf-8-sig")
        _, body = split_front_matter(text)
    except (OSError, UnicodeDecodeError, FrontMatterError):
        return None
    sections = []
    for section in split_sections(body):
        if len(section.heading_path) < 2:
            continue  # the level-1 heading repeats the title
        heading = section.heading_path[-1]
        lines = section.text.split("\n")
        if lines and lines[0].strip() == heading:
            lines = lines[1:]
        paragraphs = [
            " ".join(part.split())
            for part in re.split(r"\n\s*\n", "\n".join(lines))
            if part.strip()
        ]
        if paragraphs:
            sections.append(DescriptionSection(heading, paragraphs))
    return sections


def _ordered(values: set[str], preferred: tuple[str, ...]) -> list[str]:
    """Return schema values in schema order, then any others alphabetically."""
    known = [value for value in preferred if value in values]
    rest = sorted(values - set(preferred), key=str.casefold)
    return known + rest


@dataclass
class Group:
    """The case descriptions that share one value of a field, with an anchor id."""

    value: str
    anchor: str
    members: list[GuidebookEntry]


def _groups(
    entries: list[GuidebookEntry], name: str, preferred: tuple[str, ...], prefix: str
) -> list[Group]:
    """Group entries by each value of a field; anchors are unique per grouping."""
    members: dict[str, list[GuidebookEntry]] = {}
    for entry in entries:
        for value in record_values(entry.record, name):
            members.setdefault(value, []).append(entry)
    groups = []
    used: set[str] = set()
    for value in _ordered(set(members), preferred):
        anchor = base = f"{prefix}-{slug(value)}"
        number = 1
        while anchor in used:  # values such as "VR" and "vr" share a slug
            number += 1
            anchor = f"{base}-{number}"
        used.add(anchor)
        groups.append(Group(value, anchor, members[value]))
    return groups


def _join(value) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def _scope_text(count: int, filters: Filters | None) -> str:
    """Describe the selection, e.g. `3 case descriptions with country = Spain`."""
    text = f"{count} case description{'' if count == 1 else 's'}"
    if filters:
        parts = [f"{name} = {' or '.join(values)}" for name, values in filters.items()]
        text += " with " + "; ".join(parts)
    return text


# -- HTML ---------------------------------------------------------------------


def _html_link(url: str, text: str | None = None) -> str:
    return f'<a href="{escape(url)}" rel="noopener">{escape(text or url)}</a>'


def _html_source(text: str) -> str:
    """Escape a source field and turn its http(s) URLs into links."""
    parts = []
    position = 0
    for url in source_links(text):
        index = text.find(url, position)
        if index < 0:
            continue
        parts.append(escape(text[position:index]))
        parts.append(_html_link(url))
        position = index + len(url)
    parts.append(escape(text[position:]))
    return "".join(parts)


def _html_facets(counts: FacetCounts) -> list[str]:
    parts = ['<section id="facts">', "<h2>Facts and figures</h2>"]
    parts.append(
        f"<p>{counts.cases} case descriptions. A case description counts once "
        "for each value it has in a field.</p>"
    )
    parts.append('<div class="facets">')
    for name in GUIDEBOOK_FACETS:
        values = counts.facets.get(name) or []
        if not values:
            continue
        parts.append(f'<table id="facet-{name}">')
        parts.append(f"<caption>{escape(FACET_LABELS[name])}</caption>")
        parts.append("<thead><tr><th>value</th><th>cases</th></tr></thead><tbody>")
        for item in values:
            parts.append(
                f'<tr><td>{escape(item.value)}</td><td class="count">'
                f"{item.cases}</td></tr>"
            )
        parts.append("</tbody></table>")
    parts.append("</div></section>")
    return parts


def _html_group_list(entries: list[GuidebookEntry]) -> list[str]:
    parts = ['<ul class="group">']
    for entry in entries:
        meta = entry.record.metadata
        details = " · ".join(
            text
            for text in (
                _join(meta.get("institution")),
                _join(meta.get("country")),
                _join(meta.get("technology")),
                _join(meta.get("year")),
            )
            if text
        )
        parts.append(
            f'<li><a href="#case-{escape(entry.record.id)}">'
            f"{escape(entry.record.title)}</a>"
            f' <span class="meta">{escape(details)}</span></li>'
        )
    parts.append("</ul>")
    return parts


def _html_grouping(
    section_id: str,
    heading: str,
    groups: list[Group],
) -> list[str]:
    parts = [f'<section id="{section_id}">', f"<h2>{escape(heading)}</h2>"]
    for group in groups:
        parts.append(f'<section id="{escape(group.anchor)}">')
        parts.append(f"<h3>{escape(group.value)} ({len(group.members)})</h3>")
        parts.extend(_html_group_list(group.members))
        parts.append("</section>")
    parts.append("</section>")
    return parts


def _html_entry(entry: GuidebookEntry, base_url: str | None) -> list[str]:
    record = entry.record
    meta = record.metadata
    parts = [f'<article id="case-{escape(record.id)}">']
    parts.append(f"<h3>{escape(record.title)}</h3>")
    parts.append("<dl>")
    for name, label in ENTRY_FIELDS:
        if meta.get(name) not in (None, "", []):
            parts.append(
                f"<dt>{escape(label)}</dt><dd>{escape(_join(meta[name]))}</dd>"
            )
    parts.append("</dl>")

    if meta.get("summary"):
        parts.append(f'<p class="summary">{escape(str(meta["summary"]))}</p>')
    for section in entry.sections:
        parts.append(f"<h4>{escape(section.heading)}</h4>")
        parts.extend(f"<p>{escape(paragraph)}</p>" for paragraph in section.paragraphs)
    if not entry.readable:
        parts.append(
            f'<p class="note">The case file {escape(record.file)} could not be '
            "read, so only its fields are shown.</p>"
        )

    if meta.get("source"):
        parts.append(f"<p><b>Source:</b> {_html_source(str(meta['source']))}</p>")
    file_text = escape(record.file)
    if base_url:
        file_text = _html_link(base_url + file_url(record.id), record.file)
    parts.append(
        f'<p class="meta">Case file: {file_text} · document id {escape(record.id)}</p>'
    )
    parts.append('<p class="meta"><a href="#contents">Back to contents</a></p>')
    parts.append("</article>")
    return parts


def _html_contents(
    entries: list[GuidebookEntry],
    use_cases: list[Group],
    technologies: list[Group],
) -> list[str]:
    def sublist(groups: list[Group]) -> str:
        items = "".join(
            f'<li><a href="#{escape(group.anchor)}">{escape(group.value)}</a> '
            f"({len(group.members)})</li>"
            for group in groups
        )
        return f"<ol>{items}</ol>" if items else ""

    cases = "".join(
        f'<li><a href="#case-{escape(entry.record.id)}">'
        f"{escape(entry.record.title)}</a></li>"
        for entry in entries
    )
    return [
        '<nav id="contents"><h2>Contents</h2><ol>',
        '<li><a href="#facts">Facts and figures</a></li>',
        '<li><a href="#by-use-case">Practices by use case</a>'
        f"{sublist(use_cases)}</li>",
        '<li><a href="#by-technology">Practices by technology</a>'
        f"{sublist(technologies)}</li>",
        f'<li><a href="#cases">Case descriptions</a>'
        f"{f'<ol>{cases}</ol>' if cases else ''}</li>",
        "</ol></nav>",
    ]


def render_html(
    entries: list[GuidebookEntry],
    counts: FacetCounts,
    filters: Filters | None,
    generated: str,
    base_url: str | None = None,
) -> str:
    """Render the guidebook as one HTML5 page with inline styles only."""
    use_cases = _groups(entries, "use_case", get_args(UseCase), "use-case")
    technologies = _groups(entries, "technology", get_args(Technology), "technology")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(TITLE)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<header><h1>{escape(TITLE)}</h1>",
        f'<p class="meta">{escape(_scope_text(len(entries), filters))}, '
        f"generated {escape(generated)}.</p></header>",
        *_html_contents(entries, use_cases, technologies),
        "<main>",
        *_html_facets(counts),
        *_html_grouping("by-use-case", "Practices by use case", use_cases),
        *_html_grouping("by-technology", "Practices by technology", technologies),
        '<section id="cases">',
        "<h2>Case descriptions</h2>",
    ]
    if not entries:
        parts.append("<p>No case description matches the filters.</p>")
    for entry in entries:
        parts.extend(_html_entry(entry, base_url))
    parts += ["</section>", "</main>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


# -- Markdown -----------------------------------------------------------------


def _md_anchor(anchor: str) -> str:
    return f'<a id="{anchor}"></a>'


def _md_source(text: str) -> str:
    parts = []
    position = 0
    for url in source_links(text):
        index = text.find(url, position)
        if index < 0:
            continue
        parts.append(markdown_text(text[position:index]))
        parts.append(f"<{url}>")
        position = index + len(url)
    parts.append(markdown_text(text[position:]))
    return "".join(parts)


def _md_grouping(
    anchor: str,
    heading: str,
    groups: list[Group],
) -> list[str]:
    lines = [_md_anchor(anchor), f"## {heading}", ""]
    for group in groups:
        lines += [
            _md_anchor(group.anchor),
            f"### {markdown_text(group.value)} ({len(group.members)})",
            "",
        ]
        for entry in group.members:
            meta = entry.record.metadata
            details = " · ".join(
                text
                for text in (
                    _join(meta.get("institution")),
                    _join(meta.get("country")),
                    _join(meta.get("year")),
                )
                if text
            )
            lines.append(
                f"- [{markdown_text(entry.record.title)}](#case-{entry.record.id})"
                f" ({markdown_text(details)})"
            )
        lines.append("")
    return lines


def _md_entry(entry: GuidebookEntry, base_url: str | None) -> list[str]:
    record = entry.record
    meta = record.metadata
    lines = [_md_anchor(f"case-{record.id}"), f"### {markdown_text(record.title)}", ""]
    for name, label in ENTRY_FIELDS:
        if meta.get(name) not in (None, "", []):
            lines.append(f"- **{label}:** {markdown_text(_join(meta[name]))}")
    lines.append("")
    if meta.get("summary"):
        lines += [f"*{markdown_text(str(meta['summary']))}*", ""]
    for section in entry.sections:
        lines += [f"#### {markdown_text(section.heading)}", ""]
        for paragraph in section.paragraphs:
            lines += [markdown_text(paragraph), ""]
    if not entry.readable:
        lines += [
            f"The case file {markdown_text(record.file)} could not be read, so "
            "only its fields are shown.",
            "",
        ]
    if meta.get("source"):
        lines += [f"**Source:** {_md_source(str(meta['source']))}", ""]
    file_text = f"`{record.file.replace('`', '')}`"
    if base_url:
        file_text = f"[{markdown_text(record.file)}]({base_url}{file_url(record.id)})"
    lines += [f"Case file: {file_text} · document id {record.id}", ""]
    return lines


def render_markdown(
    entries: list[GuidebookEntry],
    counts: FacetCounts,
    filters: Filters | None,
    generated: str,
    base_url: str | None = None,
) -> str:
    """Render the guidebook as Markdown with the same parts as the HTML page."""
    use_cases = _groups(entries, "use_case", get_args(UseCase), "use-case")
    technologies = _groups(entries, "technology", get_args(Technology), "technology")
    lines = [
        f"# {TITLE}",
        "",
        f"{markdown_text(_scope_text(len(entries), filters))}, generated {generated}.",
        "",
        "## Contents",
        "",
        "1. [Facts and figures](#facts)",
        "2. [Practices by use case](#by-use-case)",
        "3. [Practices by technology](#by-technology)",
        "4. [Case descriptions](#cases)",
    ]
    lines += [
        f"   - [{markdown_text(entry.record.title)}](#case-{entry.record.id})"
        for entry in entries
    ]

    lines += ["", _md_anchor("facts"), "## Facts and figures", ""]
    for name in GUIDEBOOK_FACETS:
        values = counts.facets.get(name) or []
        if not values:
            continue
        lines += [f"### {FACET_LABELS[name]}", "", "| value | cases |", "|---|---:|"]
        lines += [f"| {markdown_text(item.value)} | {item.cases} |" for item in values]
        lines.append("")

    lines += _md_grouping("by-use-case", "Practices by use case", use_cases)
    lines += _md_grouping("by-technology", "Practices by technology", technologies)

    lines += [_md_anchor("cases"), "## Case descriptions", ""]
    if not entries:
        lines += ["No case description matches the filters.", ""]
    for entry in entries:
        lines += _md_entry(entry, base_url)
    return "\n".join(lines).rstrip("\n") + "\n"


# -- building and writing -----------------------------------------------------


def build_guidebook(
    kb, filters: Filters | None = None, base_url: str | None = None
) -> Guidebook:
    """Build the guidebook of the ready case descriptions that pass the filters.

    `base_url` (such as `http://127.0.0.1:8000`) makes each case file a link to
    the server that stores it. Without it the file is named but not linked,
    because the page may be read where that server cannot be reached.
    """
    records = case_records(kb, filters)
    entries = []
    for record in records:
        sections = read_sections(record)
        entries.append(
            GuidebookEntry(record, sections or [], readable=sections is not None)
        )
    counts = count_facets(records)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    base = base_url.rstrip("/") if base_url else None
    return Guidebook(
        html=render_html(entries, counts, filters, generated, base),
        markdown=render_markdown(entries, counts, filters, generated, base),
        cases=len(entries),
    )


def write_guidebook(guidebook: Guidebook, out_dir: Path) -> tuple[Path, Path]:
    """Write guidebook.html and guidebook.md into `out_dir` and return both paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / HTML_FILE
    markdown_path = out_dir / MARKDOWN_FILE
    html_path.write_text(guidebook.html, encoding="utf-8")
    markdown_path.write_text(guidebook.markdown, encoding="utf-8")
    return html_path, markdown_path
