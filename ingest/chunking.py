"""Split units into chunks that fit the embedding model, with llama-index's splitter."""

from __future__ import annotations

from collections.abc import Callable

from llama_index.core.node_parser import SentenceSplitter

from ingest.documents import Chunk, Unit

Tokenizer = Callable[[str], list]


def _common_section(sections: list[str | None]) -> str | None:
    paths = [s.split(" > ") for s in sections if s]
    if not paths:
        return None
    prefix = []
    for parts in zip(*paths, strict=False):
        if len(set(parts)) != 1:
            break
        prefix.append(parts[0])
    if prefix:
        return " > ".join(prefix)
    return f"{' > '.join(paths[0])} … {paths[-1][-1]}"


def pack_sections(units: list[Unit], tokenizer: Tokenizer, budget: int) -> list[Unit]:
    """Merge neighbouring short sections (glossary entries, card fields) into one unit.

    Pages are never merged, so every PDF passage keeps exactly one page number.
    """
    packed: list[Unit] = []
    group: list[Unit] = []
    group_tokens = 0

    def flush() -> None:
        if group:
            text = "\n\n".join(unit.text for unit in group)
            section = _common_section([unit.section for unit in group])
            packed.append(Unit(text=text, page=group[0].page, section=section))
            group.clear()

    for unit in units:
        tokens = len(tokenizer(unit.text))
        if unit.page is not None or not unit.mergeable or tokens > budget:
            flush()
            group_tokens = 0
            packed.append(unit)
            continue
        if group and group_tokens + tokens > budget:
            flush()
            group_tokens = 0
        group.append(unit)
        group_tokens += tokens
    flush()
    return packed


def _locate(text: str, chunk: str, start_hint: int) -> int:
    """Find where a chunk starts in its unit; the splitter may trim whitespace."""
    for probe in (chunk, chunk[:80], chunk[:30]):
        position = text.find(probe, start_hint)
        if position < 0:
            position = text.find(probe)
        if position >= 0:
            return position
    return start_hint


def split_units(
    units: list[Unit], tokenizer: Tokenizer, chunk_size: int, chunk_overlap: int
) -> list[Chunk]:
    """Split each unit into chunks of at most `chunk_size` tokens."""
    splitter = SentenceSplitter(
        chunk_size=chunk_size,
        chunk_overlap=min(chunk_overlap, chunk_size // 4),
        tokenizer=tokenizer,
    )
    chunks: list[Chunk] = []
    for unit_index, unit in enumerate(units):
        position = 0
        for piece in splitter.split_text(unit.text):
            piece = piece.strip()
            if not piece:
                continue
            start = _locate(unit.text, piece, position)
            end = min(len(unit.text), start + len(piece))
            chunks.append(
                Chunk(
                    text=piece,
                    unit_index=unit_index,
                    chunk_index=len(chunks),
                    start_char=start,
                    end_char=end,
                    page=unit.page,
                    section=unit.section,
                )
            )
            position = start + 1
    return chunks
