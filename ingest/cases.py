"""The schema of case descriptions: Markdown files with `type: case` front matter."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

Technology = Literal[
    "AI", "VR", "AR", "MR", "XR", "simulator", "chatbot", "learning analytics"
]
UseCase = Literal[
    "personalised learning",
    "study counselling",
    "immersive training",
    "assessment",
    "teacher training",
    "content creation",
    "accessibility and inclusion",
    "career guidance",
    "collaboration",
]


def _as_list(value: Any) -> Any:
    """Accept a single value where a list is expected."""
    if isinstance(value, str | int | float):
        return [value]
    return value


NonEmptyText = Annotated[str, Field(min_length=1)]


class CaseDescription(BaseModel):
    """One practice of AI or XR in vocational education and training."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    type: Literal["case"]
    title: str = Field(min_length=5, max_length=120)
    institution: NonEmptyText
    country: Annotated[list[NonEmptyText], BeforeValidator(_as_list)] = Field(
        min_length=1
    )
    technology: Annotated[list[Technology], BeforeValidator(_as_list)] = Field(
        min_length=1
    )
    use_case: Annotated[list[UseCase], BeforeValidator(_as_list)] = Field(min_length=1)
    sector: NonEmptyText
    target_group: NonEmptyText
    language: str = Field(pattern=r"^[a-z]{2}$")
    year: int = Field(ge=1990, le=2100)
    source: NonEmptyText
    licence: NonEmptyText
    summary: str | None = None


def is_case_description(front_matter: dict[str, Any]) -> bool:
    return front_matter.get("type") == "case"


def validate_case(front_matter: dict[str, Any]) -> dict[str, Any]:
    """Validate case front matter; raise ValueError naming each bad field and why."""
    try:
        case = CaseDescription.model_validate(front_matter)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "front matter"
            problems.append(f"field {field!r}: {item['msg']}")
        raise ValueError(
            "invalid case description front matter: " + "; ".join(problems)
        ) from error
    return case.model_dump(exclude_none=True)
