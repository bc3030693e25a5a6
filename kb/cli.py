"""The `kb` command line: ingest, ask, search, serve and list documents."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path

from kb.errors import ConfigError, KBError
from kb.research_cli import add_research_commands
from kb.settings import Settings
from kb.store_cli import add_store_commands

logger = logging.getLogger(__name__)


def _knowledge_base(settings: Settings):
    from kb.service import KnowledgeBase  # heavy imports only once a command runs

    return KnowledgeBase(settings)


def _print_json(value: object) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _source_label(item: dict) -> str:
    where = f"page {item['page']}" if item.get("page") else item.get("section") or ""
    label = f"{item['title']} ({item['file']}"
    return f"{label}, {where})" if where else f"{label})"


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from kb.service import collect_files

    kb = _knowledge_base(settings)
    if args.if_empty and kb.stats()["documents"]:
        stats = kb.stats()
        print(
            f"{stats['data_dir']} already holds {stats['documents']} documents and "
            f"{stats['chunks']} chunks; nothing ingested"
        )
        return 0
    files = collect_files(args.paths)
    report = None
    with tqdm(total=len(files), unit="file", desc="ingest", disable=args.json) as bar:

        def advance(outcome) -> None:
            bar.set_postfix_str(Path(outcome.file).name[:40])
            bar.update(1)

        report = kb.ingest(files, on_file=advance)
    if args.prune:
        from kb import curation

        for path in curation.prune(kb, [p for p in args.paths if p.is_dir()]):
            print(f"removed  {path}  (file no longer exists)")
    if args.json:
        _print_json(report.to_dict())
    else:
        for outcome in report.outcomes:
            detail = f"{outcome.chunks} chunks" if outcome.status == "indexed" else ""
            print(f"{outcome.status:8} {outcome.file}  {outcome.reason or detail}")
        totals = report.totals()
        print(
            f"\n{totals['indexed']} indexed, {totals['skipped']} skipped, "
            f"{totals['failed']} failed; {totals['chunks']} new chunks. "
            f"The store now holds {kb.stats()['documents']} documents "
            f"and {kb.stats()['chunks']} chunks in {settings.data_dir}"
        )
    return 1 if report.totals()["failed"] and args.strict else 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from kb.generate import AnswerGenerator

    generator = AnswerGenerator(_knowledge_base(settings))
    answer = generator.answer(
        args.question, top_k=args.k, filters=_filters(args), mode=args.mode
    )
    if args.json:
        _print_json(answer.to_dict())
        return 0
    print(answer.answer)
    if answer.notice:
        print(f"\nNote: {answer.notice}")
    for item in answer.unsupported:
        print(f"\nRemoved as unsupported ({item['reason']}): {item['sentence']}")
    for citation in answer.citations:
        item = citation.to_dict()
        print(f"\n[{item['n']}] {_source_label(item)}  score {item['score']:.3f}")
        print("    " + item["passage"][:400].replace("\n", " "))
    return 0


def _filters(args: argparse.Namespace) -> dict[str, list[str]]:
    from kb.filters import parse_filters

    return parse_filters(args.filter or [])


def _ranked(passages) -> list[dict]:
    return [{"n": n, **p.to_dict()} for n, p in enumerate(passages, start=1)]


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    if args.queries:
        return _batch_search(args, settings)
    if not args.query:
        raise KBError("give a query, or --queries FILE for a batch")
    kb = _knowledge_base(settings)
    items = _ranked(
        kb.search(args.query, top_k=args.k, filters=_filters(args), mode=args.mode)
    )
    if args.json:
        _print_json(items)
        return 0
    for item in items:
        print(f"{item['n']}. {_source_label(item)}  score {item['score']:.3f}")
        print("    " + item["passage"][:300].replace("\n", " ") + "\n")
    return 0


def _read_queries(path: Path) -> list[tuple[object, str]]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise KBError(f"cannot read --queries {path}: {error}") from error
    requests = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            requests.append((row["id"], str(row["query"])))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise KBError(
                f"{path}:{number}: expected a JSON object with id and query ({error})"
            ) from error
    return requests


def _batch_search(args: argparse.Namespace, settings: Settings) -> int:
    """Search a JSON-lines file of {"id", "query"}; write one JSON line per query."""
    from tqdm import tqdm

    requests = _read_queries(args.queries)
    kb = _knowledge_base(settings)
    filters = _filters(args)
    with contextlib.ExitStack() as stack:
        out = sys.stdout
        if args.out:
            out = stack.enter_context(open(args.out, "w", encoding="utf-8"))
        for query_id, query in tqdm(requests, unit="query", disable=not args.out):
            passages = kb.search(query, top_k=args.k, filters=filters, mode=args.mode)
            row = {"id": query_id, "results": _ranked(passages)}
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return 0


def cmd_documents(args: argparse.Namespace, settings: Settings) -> int:
    kb = _knowledge_base(settings)
    records = kb.documents()
    failures = kb.catalogue.failures()
    if args.json:
        _print_json([vars(record) for record in records])
        return 0
    for record in records:
        print(
            f"{record.id}  {record.status:8} {record.doc_type:8} {record.language:7} "
            f"{record.chunks:5} chunks  {record.title[:50]}  ({record.file})"
        )
    for failure in failures:
        print(f"{'-':16}  failed   {failure['file']}: {failure['reason']}")
    return 0


def cmd_token(args: argparse.Namespace, settings: Settings) -> int:
    from kb.auth import new_token

    token, digest = new_token()
    print(f"token:  {token}")
    print(f"sha256: {digest}")
    print(
        "\nGive the token to the curator; add the hash to KB_CURATOR_TOKEN_SHA256 "
        "(comma-separated) on the server. The token is not stored anywhere."
    )
    return 0


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from kb import curation

    report = curation.check(_knowledge_base(settings), repair=args.repair)
    _print_json(report.to_dict())
    return 0 if report.consistent or report.repaired else 1


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    kb = _knowledge_base(settings)
    for document_id in args.ids:
        kb.delete(document_id)
        print(f"deleted {document_id}")
    return 0


def cmd_stats(args: argparse.Namespace, settings: Settings) -> int:
    _print_json(_knowledge_base(settings).stats())
    return 0


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase

    kb = KnowledgeBase(settings, check_model=False)
    report = kb.reindex()
    totals = report.totals()
    print(f"re-indexed {totals['indexed']} documents, {totals['failed']} failed")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app

    settings = settings.model_copy(
        update={"host": args.host or settings.host, "port": args.port or settings.port}
    )
    if args.workers > 1:
        return _serve_workers(settings, args.workers)
    app = create_app(settings)
    stats = app.state.kb.stats()
    print(
        f"Serving {stats['documents']} documents ({stats['chunks']} chunks) from "
        f"{stats['data_dir']} on http://{settings.host}:{settings.port}/ "
        f"(API docs at /docs)",
        flush=True,
    )
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info")
    return 0


def _serve_workers(settings: Settings, workers: int) -> int:
    """Serve the JSON API from several processes over a Chroma server."""
    import uvicorn

    if not settings.chroma_url:
        raise ConfigError(
            f"--workers {workers} needs the vectors on a Chroma server "
            "(KB_CHROMA_URL): the embedded store in the data folder is opened by "
            "one process only. "
            "See 'Server mode' in README.md, or serve with one worker."
        )
    stats = _knowledge_base(settings).stats()
    print(
        f"Serving the API for {stats['documents']} documents ({stats['chunks']} "
        f"chunks) from {workers} processes on http://{settings.host}:{settings.port}/ "
        "(API docs at /docs). The web UI keeps its state in one process, so it is "
        "served only without --workers.",
        flush=True,
    )
    uvicorn.run(
        "api.app:api_from_environment",
        factory=True,
        workers=workers,
        host=settings.host,
        port=settings.port,
        log_level="info",
    )
    return 0


def _add_search_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--filter",
        action="append",
        metavar="FIELD=VALUE",
        help="keep documents whose FIELD has VALUE; repeatable (fields: "
        "technology, use_case, country, language, institution, doc_type, year, file)",
    )
    parser.add_argument(
        "--mode",
        choices=["dense", "keyword", "hybrid"],
        default=None,
        help="ranking mode (default KB_SEARCH_MODE, hybrid)",
    )


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from evals.runner import format_report, run_eval

    modes = [mode.strip() for mode in args.modes.split(",") if mode.strip()]
    unknown = sorted(set(modes) - {"dense", "keyword", "hybrid"})
    if unknown:
        raise KBError(
            f"unknown --modes {', '.join(unknown)}; use dense, keyword, hybrid"
        )
    if args.beir is None and args.gold is None:
        raise KBError("give --beir FOLDER, --gold FILE with --corpus PATHS, or both")
    if args.gold is not None and not args.corpus:
        raise KBError("--gold needs --corpus: the documents the questions are about")
    results = run_eval(args.out, args.beir, args.gold, args.corpus, modes)
    print(format_report(results))
    print(f"\nwrote {args.out / 'results.json'}, report.md and recall.png")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kb",
        description="Knowledge base of AI and XR practices in vocational education.",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log at INFO level"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    ingest = commands.add_parser("ingest", help="index files and folders")
    ingest.add_argument("paths", nargs="+", type=Path, help="files or folders")
    ingest.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest.add_argument(
        "--strict", action="store_true", help="exit with 1 when any file failed"
    )
    ingest.add_argument(
        "--prune",
        action="store_true",
        help="remove documents whose files under the given folders are gone",
    )
    ingest.add_argument(
        "--if-empty",
        action="store_true",
        help="ingest only when the store contains no document yet",
    )
    ingest.set_defaults(func=cmd_ingest)

    ask = commands.add_parser("ask", help="answer a question with cited sources")
    ask.add_argument("question")
    ask.add_argument("-k", type=int, default=None, help="passages to consider")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    _add_search_options(ask)
    ask.set_defaults(func=cmd_ask)

    search = commands.add_parser("search", help="print the best matching passages")
    search.add_argument("query", nargs="?", help="query text")
    search.add_argument("-k", type=int, default=None, help="number of passages")
    search.add_argument("--json", action="store_true", help="print a JSON list")
    search.add_argument(
        "--queries",
        type=Path,
        help='JSON lines of {"id": ..., "query": ...}; prints one JSON line each',
    )
    search.add_argument("--out", type=Path, help="write batch results to this file")
    _add_search_options(search)
    search.set_defaults(func=cmd_search)

    documents = commands.add_parser("documents", help="list the catalogue")
    documents.add_argument("--json", action="store_true")
    documents.set_defaults(func=cmd_documents)

    token = commands.add_parser("token", help="curator tokens")
    token.add_argument("action", choices=["new"], help="new: print a token and hash")
    token.set_defaults(func=cmd_token)

    check = commands.add_parser(
        "check", help="compare catalogue, vector store and keyword index"
    )
    check.add_argument("--repair", action="store_true", help="fix what is found")
    check.set_defaults(func=cmd_check)

    delete = commands.add_parser("delete", help="delete documents by id")
    delete.add_argument("ids", nargs="+", help="document ids (see `kb documents`)")
    delete.set_defaults(func=cmd_delete)

    stats = commands.add_parser("stats", help="print data folder and counts as JSON")
    stats.set_defaults(func=cmd_stats)

    reindex = commands.add_parser(
        "reindex",
        help="rebuild the index from the catalogued files (after a model change)",
    )
    reindex.set_defaults(func=cmd_reindex)

    evaluate = commands.add_parser(
        "eval", help="measure retrieval per ranking mode on BEIR and gold questions"
    )
    evaluate.add_argument(
        "--beir", type=Path, help="BEIR folder: corpus, queries, qrels"
    )
    evaluate.add_argument("--gold", type=Path, help="gold questions, JSON lines")
    evaluate.add_argument(
        "--corpus",
        type=Path,
        nargs="*",
        default=[],
        help="files and folders the gold questions are about",
    )
    evaluate.add_argument(
        "--out", type=Path, default=Path("evals/results"), help="output folder"
    )
    evaluate.add_argument(
        "--modes",
        default="dense,keyword,hybrid",
        help="comma-separated ranking modes to compare",
    )
    evaluate.set_defaults(func=cmd_eval)

    serve = commands.add_parser("serve", help="serve the API and the web UI")
    serve.add_argument("--host", default=None, help="address to bind (KB_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (KB_PORT)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the API; more than 1 needs KB_CHROMA_URL and "
        "serves no web UI",
    )
    serve.set_defaults(func=cmd_serve)

    add_research_commands(commands)
    add_store_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO
        if args.verbose or args.command == "serve"
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args, Settings())
    except KBError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
