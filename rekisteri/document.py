"""A small structured document (headings, paragraphs, bulleted lists), filled from a template
and rendered to Markdown or to a complete HTML page.

The template is a subset of Markdown, parsed into blocks before any fact is put in, so a fact
(a provider's name, say) is only ever text: it can neither add a heading or a list nor carry
markup, and each renderer escapes it for its format.

Template lines:
- `%% ...` a comment; `%key: text` a phrase the caller fills in itself (`Template.phrase`);
- `# text`, `## text`, `### text` a heading; `- text` an item of a bulleted list;
- other lines a paragraph, consecutive lines joined by a space (after an item: more of that
  item); a blank line ends a paragraph or a list.
`$name` in a block is a fact (`$$` a dollar sign). An item that is just `- $name`, where
`name` is a list of facts, becomes one item per fact, or, for an empty list, the phrase
`empty.name`. A block that names a fact given as "" is left out: an optional fact unset.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from string import Template as StringTemplate


@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Items:
    items: tuple[str, ...]


Block = Heading | Paragraph | Items


@dataclass(frozen=True)
class Document:
    language: str
    blocks: tuple[Block, ...]

    @property
    def title(self) -> str:
        return next(b.text for b in self.blocks if isinstance(b, Heading) and b.level == 1)


class TemplateError(Exception):
    """The template is wrong: a developer's mistake, named with the template and the line."""


_HEADING = re.compile(r"^(#{1,3}) +(\S.*)$")
_PHRASE = re.compile(r"^%([A-Za-z0-9_.-]+): ?(.*)$")
_LIST_PLACEHOLDER = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")


@dataclass(frozen=True)
class _Raw:
    kind: str  # "heading", "paragraph", "item"
    text: str
    line: int
    level: int = 0


class Template:
    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self._phrases: dict[str, str] = {}
        self._blocks: list[list[_Raw]] = []
        self._parse(source)

    def _parse(self, source: str) -> None:
        paragraph: list[str] = []
        items: list[_Raw] = []
        start = 0

        def close() -> None:
            nonlocal paragraph, items
            if paragraph:
                self._blocks.append([_Raw("paragraph", " ".join(paragraph), start)])
            if items:
                self._blocks.append(items)
            paragraph, items = [], []

        for number, raw_line in enumerate(source.splitlines(), start=1):
            line = raw_line.strip()
            if line.startswith("%%"):
                continue
            if phrase := _PHRASE.match(line):
                self._phrases[phrase[1]] = phrase[2]
                continue
            if not line:
                close()
            elif heading := _HEADING.match(line):
                close()
                self._blocks.append([_Raw("heading", heading[2], number, len(heading[1]))])
            elif line.startswith("- "):
                if paragraph:
                    close()
                items.append(_Raw("item", line[2:].strip(), number))
            elif items:
                # A line after an item, before a blank line, continues that item.
                last = items[-1]
                items[-1] = _Raw("item", f"{last.text} {line}", last.line)
            else:
                if not paragraph:
                    start = number
                paragraph.append(line)
        close()

    def phrase(self, key: str, **facts: str) -> str:
        """The phrase `%key:` with its `$facts` filled in."""
        if key not in self._phrases:
            raise TemplateError(f"template {self.name} has no phrase %{key}")
        return self._substitute(self._phrases[key], facts, f"phrase %{key}")

    def has_phrase(self, key: str) -> bool:
        return key in self._phrases

    def fill(
        self,
        language: str,
        facts: Mapping[str, str],
        lists: Mapping[str, Sequence[str]] | None = None,
    ) -> Document:
        """The document with `facts` (text) and `lists` (of texts) put in."""
        lists = lists or {}
        blocks: list[Block] = []
        for raw_block in self._blocks:
            first = raw_block[0]
            if first.kind == "item":
                texts = [t for raw in raw_block for t in self._item_texts(raw, facts, lists)]
                if texts:
                    blocks.append(Items(tuple(texts)))
                continue
            if self._names_an_unset_fact(first.text, facts):
                continue
            text = self._substitute(first.text, facts, f"line {first.line}")
            blocks.append(
                Heading(first.level, text) if first.kind == "heading" else Paragraph(text)
            )
        document = Document(language, tuple(blocks))
        if not blocks or [b for b in blocks if isinstance(b, Heading) and b.level == 1] != [
            blocks[0]
        ]:
            raise TemplateError(f"template {self.name} must begin with its one `# ` heading")
        return document

    def _item_texts(
        self, raw: _Raw, facts: Mapping[str, str], lists: Mapping[str, Sequence[str]]
    ) -> list[str]:
        if (whole := _LIST_PLACEHOLDER.match(raw.text)) and whole[1] in lists:
            values = list(lists[whole[1]])
            return values or [self.phrase(f"empty.{whole[1]}")]
        if self._names_an_unset_fact(raw.text, facts):
            return []
        return [self._substitute(raw.text, facts, f"line {raw.line}")]

    @staticmethod
    def _names_an_unset_fact(text: str, facts: Mapping[str, str]) -> bool:
        return any(facts.get(name) == "" for name in StringTemplate(text).get_identifiers())

    def _substitute(self, text: str, facts: Mapping[str, str], where: str) -> str:
        try:
            return StringTemplate(text).substitute(facts)
        except KeyError as missing:
            raise TemplateError(
                f"template {self.name}, {where}: ${missing.args[0]} is not a known fact"
            ) from None
        except ValueError as error:
            raise TemplateError(f"template {self.name}, {where}: {error}") from None


# --- Markdown --------------------------------------------------------------------------------

# Every character with a meaning somewhere in CommonMark inline syntax, backslash-escaped.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]{}<>#|!&~])")
# What would start a block of its own at the beginning of a line: an ordered list (`1. `), a
# bulleted list or a thematic break (`- `, `+ `, `---`), a setext underline (`===`).
_MARKDOWN_LINE_START = re.compile(r"^(\d{1,9})([.)])(?=\s|$)|^([-+=])")


def escape_markdown(text: str) -> str:
    escaped = _MARKDOWN_INLINE.sub(r"\\\1", text)
    return _MARKDOWN_LINE_START.sub(
        lambda m: f"{m[1]}\\{m[2]}" if m[1] is not None else f"\\{m[3]}", escaped
    )


def _render(
    document: Document,
    escape: Callable[[str], str],
    heading: Callable[[int, str], str],
    paragraph: Callable[[str], str],
    items: Callable[[list[str]], str],
) -> list[str]:
    """Each block of `document` in one markup. Every text is escaped here, before the markup
    gets it, so no markup can let a fact's value through as markup of its own."""
    rendered = []
    for block in document.blocks:
        if isinstance(block, Heading):
            rendered.append(heading(block.level, escape(block.text)))
        elif isinstance(block, Paragraph):
            rendered.append(paragraph(escape(block.text)))
        else:
            rendered.append(items([escape(item) for item in block.items]))
    return rendered


def to_markdown(document: Document) -> str:
    blocks = _render(
        document,
        escape_markdown,
        heading=lambda level, text: f"{'#' * level} {text}",
        paragraph=lambda text: text,
        items=lambda items: "\n".join(f"- {item}" for item in items),
    )
    return "\n\n".join(blocks) + "\n"


# --- HTML ------------------------------------------------------------------------------------

# Inline and minimal: the page loads nothing from anywhere else.
_STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.5;"
    "max-width:46rem;margin:0 auto;padding:1rem 1.25rem;color:#1a1a1a;background:#fff}"
    "h1{font-size:1.75rem}h2{font-size:1.3rem;margin-top:2rem}h3{font-size:1.1rem}"
    "li{margin:.25rem 0}"
)


def _text(value: str) -> str:
    return html.escape(value, quote=True)


def to_html(document: Document) -> str:
    body = _render(
        document,
        _text,
        heading=lambda level, text: f"<h{level}>{text}</h{level}>",
        paragraph=lambda text: f"<p>{text}</p>",
        items=lambda items: "\n".join(["<ul>", *(f"<li>{item}</li>" for item in items), "</ul>"]),
    )
    return "\n".join(
        [
            "<!DOCTYPE html>",
            f'<html lang="{_text(document.language)}">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_text(document.title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            "<main>",
            *body,
            "</main>",
            "</body>",
            "</html>",
            "",
        ]
    )
