"""A small HCL writer for the generated Nomad jobs: blocks, attributes, comments, heredocs.

Values map to HCL as: ``str`` → a quoted template string (``${...}`` stays an interpolation, as
Nomad's runtime variables need), ``Literal`` → a quoted string whose ``${``/``%{`` are escaped,
``Heredoc`` → a ``<<EOT`` literal (escaped the same way), ``Expr`` → an expression written as is,
``bool``/``int`` → literals, lists and dicts → tuples and objects. Runs of one-line attributes
are aligned on ``=`` the way ``terraform fmt``/``nomad fmt`` align them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Expr:
    """An HCL expression written verbatim: ``var.image``, ``NOMAD_PORT_http`` is not one."""

    text: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A string whose content is never interpolated by HCL."""

    text: str


@dataclass(frozen=True, slots=True)
class Heredoc:
    """A multi-line literal string (``<<EOT``); HCL interpolation markers are escaped."""

    text: str
    marker: str = "EOT"


Value = str | int | bool | Expr | Literal | Heredoc | Sequence["Value"] | Mapping[str, "Value"]


@dataclass(frozen=True, slots=True)
class Comment:
    text: str


@dataclass(frozen=True, slots=True)
class Attr:
    name: str
    value: Value


@dataclass(slots=True)
class Block:
    kind: str
    labels: tuple[str, ...] = ()
    items: list[Item] = field(default_factory=list)

    def add(self, *items: Item | None) -> Block:
        self.items.extend(item for item in items if item is not None)
        return self


Item = Attr | Block | Comment


def block(
    kind: str, *labels: str, attrs: Mapping[str, Value] | None = None, items: Iterable[Item | None] = ()
) -> Block:
    """A block with attributes (in order) followed by items."""
    out = Block(kind, tuple(labels))
    out.add(*(Attr(k, v) for k, v in (attrs or {}).items()))
    out.add(*items)
    return out


def escape_template(text: str) -> str:
    return text.replace("${", "$${").replace("%{", "%%{")


def _quoted(text: str) -> str:
    # JSON string escapes are HCL's: \" \\ \n \t \uXXXX.
    return json.dumps(text, ensure_ascii=False)


def render_value(value: Value, indent: int) -> str:
    pad = "  " * indent
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Expr):
        return value.text
    if isinstance(value, Literal):
        return _quoted(escape_template(value.text))
    if isinstance(value, Heredoc):
        body = escape_template(value.text)
        if not body.endswith("\n"):
            body += "\n"
        if any(line.strip() == value.marker for line in body.splitlines()):
            raise ValueError(f"heredoc content contains its own end marker {value.marker}")
        return f"<<{value.marker}\n{body}{value.marker}"
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        inner = "  " * (indent + 1)
        width = max(len(_key(k)) for k in value)
        lines = [f"{inner}{_key(k).ljust(width)} = {render_value(v, indent + 1)}" for k, v in value.items()]
        return "{\n" + "\n".join(lines) + f"\n{pad}}}"
    items = [render_value(v, indent + 1) for v in value]
    one_line = "[" + ", ".join(items) + "]"
    if len(one_line) <= 100 and "\n" not in one_line:
        return one_line
    inner = "  " * (indent + 1)
    return "[\n" + "".join(f"{inner}{item},\n" for item in items) + f"{pad}]"


def _key(name: str) -> str:
    return name if name.replace("_", "").replace("-", "").isalnum() and not name[0].isdigit() else _quoted(name)


def render_block(node: Block, indent: int = 0) -> str:
    pad = "  " * indent
    head = " ".join([node.kind, *(_quoted(label) for label in node.labels)])
    if not node.items:
        return f"{pad}{head} {{}}\n"
    return f"{pad}{head} {{\n{render_items(node.items, indent + 1)}{pad}}}\n"


def render_items(items: Sequence[Item], indent: int) -> str:
    """Items of one body: aligned attribute runs, a blank line around blocks, comments on what follows."""
    pad = "  " * indent
    out: list[str] = []
    run: list[tuple[str, str]] = []

    def flush() -> None:
        width = max((len(name) for name, _ in run), default=0)
        out.extend(f"{pad}{name.ljust(width)} = {text}\n" for name, text in run)
        run.clear()

    previous: Item | None = None
    for item in items:
        if isinstance(item, Attr):
            text = render_value(item.value, indent)
            if isinstance(previous, Block):
                out.append("\n")
            run.append((item.name, text))
        else:
            flush()
            both_empty = (
                isinstance(item, Block) and not item.items and isinstance(previous, Block) and not previous.items
            )
            if previous is not None and not isinstance(previous, Comment) and not both_empty:
                out.append("\n")
            if isinstance(item, Comment):
                out.extend(f"{pad}# {line}".rstrip() + "\n" for line in item.text.splitlines())
            else:
                out.append(render_block(item, indent))
        previous = item
    flush()
    return "".join(out)


def render_file(header: str, items: Sequence[Item]) -> str:
    top = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
    parts = [render_block(item) if isinstance(item, Block) else render_items([item], 0) for item in items]
    return top + "\n" + "\n".join(parts)
