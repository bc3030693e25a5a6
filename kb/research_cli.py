"""The research subcommands of `kb`: facets, compare, cases and guidebook."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kb.compare import GROUP_FIELDS
from kb.facets import DEFAULT_DEPTH, MAX_DEPTH, RESEARCH_FILTER_FIELDS
from kb.settings import Settings

FILTER_HELP = (
    "keep documents whose FIELD has VALUE; repeatable (fields: "
    f"{', '.join(RESEARCH_FILTER_FIELDS)})"
)


def _knowledge_base(settings: Settings):
    from kb.service import KnowledgeBase  # heavy imports only once a command runs

    return KnowledgeBase(settings)


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _filters(args: argparse.Namespace) -> dict[str, list[str]]:
    from kb.facets import parse_research_filters

    return parse_research_filters(args.filter or [])


def cmd_facets(args: argparse.Namespace, settings: Settings) -> int:
    from kb.facets import FACET_LABELS, facet_counts, validate_depth

    filters = _filters(args)
    validate_depth(args.k)
    counts = facet_counts(
        _knowledge_base(settings), args.query, filters, depth=args.k, mode=args.mode
    )
    if args.json:
        _print_json(counts.to_dict())
        return 0
    scope = f"matching {counts.query!r}" if counts.query else "in the collection"
    print(f"{counts.documents} documents ({counts.cases} case descriptions) {scope}")
    for name, values in counts.facets.items():
        if not values:
            continue
        print(f"\n{FACET_LABELS[name]} ({name}): documents, case descriptions")
        for item in values:
            print(f"  {item.documents:5} {item.cases:5}  {item.value}")
    return 0


def cmd_compare(args: argparse.Namespace, settings: Settings) -> int:
    from kb.compare import compare, comparison_csv, validate_group_by
    from kb.facets import validate_depth

    filters = _filters(args)
    validate_group_by(args.group_by)
    validate_depth(args.k)
    comparison = compare(
        _knowledge_base(settings),
        args.topic,
        args.group_by,
        filters,
        depth=args.k,
        mode=args.mode,
        min_similarity=args.min_similarity,
    )
    if args.format == "csv":
        text = comparison_csv(comparison)
    elif args.format == "json":
        text = json.dumps(comparison.to_dict(), ensure_ascii=False, indent=2) + "\n"
    else:
        text = _comparison_text(comparison)
    if args.out:
        args.out.write_text(text, encoding="utf-8", newline="")
        print(f"wrote {len(comparison.rows)} groups to {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def _comparison_text(comparison) -> str:
    lines = [
        f"{len(comparison.rows)} groups by {comparison.group_by} for "
        f"{comparison.query!r} ({comparison.passages} passages searched, "
        f"{comparison.ungrouped} matched documents without a {comparison.group_by})"
    ]
    for row in comparison.rows:
        where = f"page {row.page}" if row.page else row.section or ""
        source = f"{row.title} ({row.file}{', ' + where if where else ''})"
        lines.append(
            f"\n{row.group}: similarity {row.similarity:.3f}, rank {row.rank}\n"
            f"    {source}\n    " + row.passage[:300].replace("\n", " ")
        )
    return "\n".join(lines) + "\n"


def cmd_cases(args: argparse.Namespace, settings: Settings) -> int:
    from kb.practices import case_detail, case_records, case_summary, validate_related

    kb = _knowledge_base(settings)
    if args.id:
        validate_related(args.related)
        detail = case_detail(kb, args.id, args.related)
        if args.json:
            _print_json(detail)
            return 0
        print(detail["title"])
        for name, value in detail["fields"].items():
            text = ", ".join(map(str, value)) if isinstance(value, list) else value
            print(f"  {name}: {text}")
        print(f"  files: {', '.join(detail['files'])}")
        for key, label in (
            ("related", "Related practices"),
            ("related_documents", "Related documents"),
        ):
            if detail[key]:
                print(f"\n{label}:")
            for item in detail[key]:
                print(f"  {item['similarity']:.3f}  {item['id']}  {item['title']}")
        return 0
    records = case_records(kb, _filters(args))
    if args.json:
        _print_json([case_summary(record) for record in records])
        return 0
    for record in records:
        summary = case_summary(record)
        countries = ", ".join(summary["country"])
        print(f"{record.id}  {summary['year'] or '':4}  {record.title}  ({countries})")
    return 0


def cmd_guidebook(args: argparse.Namespace, settings: Settings) -> int:
    from kb.guidebook import build_guidebook, write_guidebook

    filters = _filters(args)
    book = build_guidebook(_knowledge_base(settings), filters, args.base_url)
    html_path, markdown_path = write_guidebook(book, args.out)
    noun = "case description" if book.cases == 1 else "case descriptions"
    print(f"wrote {book.cases} {noun} to {html_path} and {markdown_path}")
    return 0


def _add_filter(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--filter", action="append", metavar="FIELD=VALUE", help=FILTER_HELP
    )


def _add_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-k",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"passages to search, 1 to {MAX_DEPTH} (default {DEFAULT_DEPTH})",
    )
    parser.add_argument(
        "--mode",
        choices=["dense", "keyword", "hybrid"],
        default=None,
        help="ranking mode (default KB_SEARCH_MODE, hybrid)",
    )


def add_research_commands(commands) -> None:
    """Add the facets, compare, cases and guidebook subcommands to `kb`."""
    facets = commands.add_parser(
        "facets", help="count documents and case descriptions per field value"
    )
    facets.add_argument("--query", help="count only the documents this query finds")
    _add_filter(facets)
    _add_search(facets)
    facets.add_argument("--json", action="store_true", help="print one JSON object")
    facets.set_defaults(func=cmd_facets)

    comparison = commands.add_parser(
        "compare", help="the best passage on a topic per country, technology, ..."
    )
    comparison.add_argument("topic", help='e.g. "assessment with VR simulators"')
    comparison.add_argument(
        "--group-by",
        default="country",
        help=f"field to group by: {', '.join(GROUP_FIELDS)} (default country)",
    )
    comparison.add_argument(
        "--format", choices=["text", "csv", "json"], default="text", help="output"
    )
    comparison.add_argument(
        "--min-similarity",
        type=float,
        default=0.0,
        help="lowest cosine similarity of a passage that counts as a match",
    )
    comparison.add_argument("--out", type=Path, help="write to this file")
    _add_filter(comparison)
    _add_search(comparison)
    comparison.set_defaults(func=cmd_compare)

    cases = commands.add_parser(
        "cases", help="list case descriptions, or show one with related practices"
    )
    cases.add_argument("id", nargs="?", help="document id of a case description")
    cases.add_argument(
        "--related", type=int, default=5, help="nearest practices to list (default 5)"
    )
    cases.add_argument("--json", action="store_true", help="print JSON")
    _add_filter(cases)
    cases.set_defaults(func=cmd_cases)

    guidebook = commands.add_parser(
        "guidebook", help="export case descriptions as guidebook.html and .md"
    )
    guidebook.add_argument(
        "--out", type=Path, required=True, help="folder to write both files to"
    )
    guidebook.add_argument(
        "--base-url",
        help="address of the server, e.g. http://127.0.0.1:8000, to link case files",
    )
    _add_filter(guidebook)
    guidebook.set_defaults(func=cmd_guidebook)
