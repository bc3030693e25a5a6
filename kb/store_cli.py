"""`kb migrate` copies the chunk vectors to a Chroma server; `kb bench` measures."""

from __future__ import annotations

import argparse
from pathlib import Path

from tqdm import tqdm

from kb.settings import Settings


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from kb.service import KnowledgeBase
    from kb.vectors import VectorIndex

    kb = KnowledgeBase(settings)
    if settings.chroma_url and settings.chroma_url == args.to:
        print(f"error: the store is already on {args.to}")
        return 2
    collection = args.collection or settings.chroma_collection
    target = VectorIndex(url=args.to, collection=collection)
    if target.count() and not args.replace:
        print(
            f"error: collection {collection!r} on {args.to} already holds "
            f"{target.count()} chunks; pass --replace to overwrite it, or choose "
            "another --collection"
        )
        return 2
    if args.replace:
        target.reset()
    # Writers wait meanwhile, so the copy matches the catalogue.
    with kb.writing():
        total = kb.vectors.count()
        with tqdm(total=total, unit="chunk", desc="copying vectors") as bar:
            for rows in kb.vectors.export():
                target.import_rows(rows)
                bar.update(len(rows["ids"]))
    copied = target.count()
    print(
        f"copied {copied} of {total} chunks from {kb.vectors.location} to "
        f"{args.to} (collection {collection!r}). Now set "
        f"KB_CHROMA_URL={args.to} KB_CHROMA_COLLECTION={collection} with "
        f"KB_DATA_DIR={settings.data_dir} to use it."
    )
    return 0 if copied == total else 1


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from evals.bench import run_bench

    sizes = tuple(int(size) for size in args.sizes.split(","))
    run_bench(
        args.out,
        args.beir,
        args.corpus,
        scifact_documents=args.scifact_docs,
        sizes=sizes,
        http_requests=args.http_requests,
    )
    return 0


def add_store_commands(commands) -> None:
    migrate = commands.add_parser(
        "migrate",
        help="copy the vector store to a Chroma server, without re-embedding",
    )
    migrate.add_argument("--to", required=True, help="Chroma server URL")
    migrate.add_argument(
        "--collection", default=None, help="target collection (KB_CHROMA_COLLECTION)"
    )
    migrate.add_argument(
        "--replace", action="store_true", help="overwrite a non-empty collection"
    )
    migrate.set_defaults(func=cmd_migrate)

    bench = commands.add_parser(
        "bench", help="measure ingestion, search, HTTP load, memory and cold start"
    )
    bench.add_argument("--beir", type=Path, required=True, help="BEIR SciFact folder")
    bench.add_argument(
        "--corpus", type=Path, nargs="+", required=True, help="VET files and folders"
    )
    bench.add_argument("--out", type=Path, default=Path("bench-out"))
    bench.add_argument(
        "--scifact-docs", type=int, default=1000, help="SciFact abstracts to index"
    )
    bench.add_argument(
        "--sizes",
        default="5000,50000,200000",
        help="collection sizes in chunks for the search latency, comma-separated",
    )
    bench.add_argument("--http-requests", type=int, default=300)
    bench.set_defaults(func=cmd_bench)
