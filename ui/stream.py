"""The Ask tab's handler when an LLM is configured: the answer streams in."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from kb.generate import AnswerGenerator, Delta
from ui.render import render_answer, render_partial


def streaming_ask(
    generator: AnswerGenerator, fields: list[str]
) -> Callable[..., Iterator[str]]:
    """Return a Gradio generator handler: partial text, then the checked answer.

    Each partial text is made of sentences that already passed the check, so
    the text shown while streaming is never withdrawn.
    """

    def ask(question: str, *selected: list[str]) -> Iterator[str]:
        question = (question or "").strip()
        if not question:
            yield "<p>Type a question first.</p>"
            return
        filters = {
            field: values
            for field, values in zip(fields, selected, strict=True)
            if values
        }
        text = ""
        for event in generator.start(question, filters=filters or None):
            if isinstance(event, Delta):
                text += event.text
                yield render_partial(text)
            else:
                yield render_answer(event)

    return ask
