"""Check job files against Nomad's real jobspec schema (jobs/.schema/nomad-<version>.json).

Parsing a job with python-hcl2 only proves it is HCL. This walks the parse tree with its block
structure and reports what Nomad's jobspec2 parser would refuse, using the schema that
``scripts.cluster.nomad_schema`` derived from Nomad's source: unknown attributes and blocks at their
nesting, attributes written as blocks and the reverse, single blocks given twice, label counts,
duration literals, and every function called in an expression that is not in Nomad's function table.

Expressions are HCL only inside ``${...}``/``%{...}`` and outside strings: Go-template text such as
``{{ with secret "..." }}`` in a template's ``data`` is consul-template's, and never checked.

    python -m scripts.cluster.jobspec_lint                # every jobs/*.nomad.hcl
    python -m scripts.cluster.jobspec_lint jobs/hello.nomad.hcl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
from lark import Token, Tree
from lark.exceptions import LarkError

from scripts.cluster.hcl_strings import closing_brace

REPO = Path(__file__).resolve().parents[2]
JOBS_DIR = REPO / "jobs"
SCHEMA_DIR = JOBS_DIR / ".schema"

_HEREDOCS = {"HEREDOC_TEMPLATE", "HEREDOC_TEMPLATE_TRIM"}
_TEMPLATE_MARK = re.compile(r"\$\$\{|%%\{|\$\{|%\{")
# Go's time.ParseDuration: "0", or one or more <number><unit>.
_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")


class LintError(Exception):
    """The schema is missing or unreadable."""


@dataclass(frozen=True, slots=True)
class Finding:
    file: str
    line: int
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.path}: {self.message}"


# --- the schema ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockRef:
    """A nested block as its parent allows it."""

    schema: str | None
    map_value: str | None
    repeated: bool
    labels: tuple[str, ...]
    label_values: tuple[str, ...] = ()
    as_attribute: bool = False
    required: bool = False

    @classmethod
    def of(cls, raw: dict[str, Any]) -> BlockRef:
        return cls(
            schema=raw.get("schema"),
            map_value=raw.get("map"),
            repeated=bool(raw["repeated"]),
            labels=tuple(raw.get("labels", ())),
            label_values=tuple(raw.get("label_values", ())),
            as_attribute=bool(raw.get("as_attribute", False)),
            required=bool(raw.get("required", False)),
        )


@dataclass(frozen=True, slots=True)
class BodySchema:
    name: str
    attributes: dict[str, str]
    blocks: dict[str, BlockRef]
    required: frozenset[str] = frozenset()
    any_attributes: bool = False
    any_blocks: bool = False
    type_expressions: frozenset[str] = frozenset()

    @classmethod
    def of(cls, name: str, raw: dict[str, Any]) -> BodySchema:
        return cls(
            name=name,
            attributes=dict(raw["attributes"]),
            blocks={k: BlockRef.of(v) for k, v in raw["blocks"].items()},
            required=frozenset(raw.get("required", ())),
            any_attributes=bool(raw.get("any_attributes", False)),
            type_expressions=frozenset(raw.get("type_expression_attributes", ())),
        )

    @classmethod
    def free(cls, value: str) -> BodySchema:
        """A free-form map block (meta, env, config): any attribute; nested blocks when values are ``any``."""
        return cls(name=f"map({value})", attributes={}, blocks={}, any_attributes=True, any_blocks=value == "any")


@dataclass(frozen=True, slots=True)
class Schema:
    version: str
    commit: str
    functions: frozenset[str]
    filesystem_functions: frozenset[str]
    bodies: dict[str, BodySchema]
    root: str
    drivers: dict[str, str]
    dynamic: BodySchema

    def body(self, ref: BlockRef) -> BodySchema:
        if ref.schema is None:
            return BodySchema.free(ref.map_value or "any")
        return self.bodies[ref.schema]


def schema_files(directory: Path = SCHEMA_DIR) -> list[Path]:
    def version_key(path: Path) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", path.stem))

    return sorted(directory.glob("nomad-v*.json"), key=version_key)


def load_schema(path: Path | None = None) -> Schema:
    """The schema at ``path``, or the newest jobs/.schema/nomad-v*.json."""
    if path is None:
        found = schema_files()
        if not found:
            raise LintError(f"no nomad-v*.json in {SCHEMA_DIR}: run python -m scripts.cluster.nomad_schema")
        path = found[-1]
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise LintError(f"cannot read the schema {path}: {exc}") from None
    dynamic = dict(raw["dynamic"])
    return Schema(
        version=raw["nomad_version"],
        commit=raw["nomad_commit"],
        functions=frozenset(raw["functions"]),
        filesystem_functions=frozenset(raw["filesystem_functions"]),
        bodies={name: BodySchema.of(name, body) for name, body in raw["schemas"].items()},
        root=raw["root"],
        drivers=dict(raw["drivers"]),
        dynamic=BodySchema(
            name="dynamic",
            attributes=dict(dynamic["attributes"]),
            blocks={"content": BlockRef(schema=None, map_value=None, repeated=False, labels=())},
            required=frozenset(dynamic["required"]),
        ),
    )


# --- the job file as blocks and attributes ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str
    line: int
    expr: Tree[Token] | Token


@dataclass(frozen=True, slots=True)
class Block:
    type: str
    labels: tuple[str, ...]
    line: int
    items: tuple[Attribute | Block, ...]

    @property
    def attributes(self) -> list[Attribute]:
        return [i for i in self.items if isinstance(i, Attribute)]

    @property
    def blocks(self) -> list[Block]:
        return [i for i in self.items if isinstance(i, Block)]


def _name(tree: Tree[Token]) -> str:
    return str(tree.children[0])


def _line(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.line or 0
    return node.meta.line if not node.meta.empty else 0


def _label(node: Tree[Token]) -> str:
    if node.data == "string":
        return "".join(str(part.children[0]) for part in node.children if isinstance(part, Tree))
    return _name(node)


def _items(body: Tree[Token]) -> tuple[Attribute | Block, ...]:
    items: list[Attribute | Block] = []
    for child in body.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            name_node, _, expr = child.children
            if isinstance(name_node, Tree):
                items.append(Attribute(_name(name_node), _line(child), expr))
        elif child.data == "block":
            items.append(_block(child))
    return tuple(items)


def _block(tree: Tree[Token]) -> Block:
    parts = [c for c in tree.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
    head, labels, body = parts[0], parts[1:-1], parts[-1]
    return Block(_name(head), tuple(_label(lbl) for lbl in labels), _line(tree), _items(body))


def parse_text(text: str) -> Block:
    """The file as one root block (type ``file``)."""
    tree = hcl2.parses_to_tree(text)
    return Block("file", (), 1, _items(tree.children[0]))


# --- function calls -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    line: int


def _directive_expression(inner: str) -> str | None:
    """The expression of ``%{ if X }`` or ``%{ for a in X }``; else/endif/endfor have none."""
    words = inner.strip().strip("~").strip()
    if words.startswith("if "):
        return words[3:]
    if words.startswith("for ") and " in " in words:
        return words.split(" in ", 1)[1]
    return None


def template_expressions(text: str) -> Iterator[tuple[int, str]]:
    """(offset, expression) of each ``${...}`` and ``%{...}`` in template text; ``$${``/``%%{`` are literal."""
    pos = 0
    while (mark := _TEMPLATE_MARK.search(text, pos)) is not None:
        pos = mark.end()
        if mark.group() in {"$${", "%%{"}:
            continue
        end = closing_brace(text, pos)
        if end < 0:
            return
        inner = text[pos:end]
        expr = inner.strip().strip("~") if mark.group() == "${" else _directive_expression(inner)
        if expr and expr.strip():
            yield mark.start(), expr
        pos = end + 1


def _heredoc_calls(token: Token) -> Iterator[Call | Finding]:
    text = str(token)
    body_start = text.index("\n") + 1
    body = text[body_start : text.rstrip("\n").rfind("\n") + 1]
    first_line = (token.line or 0) + 1
    for offset, expr in template_expressions(body):
        line = first_line + body[:offset].count("\n")
        try:
            tree = hcl2.parses_to_tree(f"x = {expr}\n")
        except LarkError:
            yield Finding("", line, "", f"cannot parse the template expression ${{{expr.strip()}}}")
            continue
        for item in calls_in(tree):
            yield Call(item.name, line + item.line - 1) if isinstance(item, Call) else item


def calls_in(expr: Tree[Token] | Token) -> Iterator[Call | Finding]:
    """Every function called in an expression, in ``${}`` of its strings and heredocs too."""
    if isinstance(expr, Token):
        if expr.type in _HEREDOCS:
            yield from _heredoc_calls(expr)
        return
    children: list[Tree[Token] | Token] = list(expr.children)
    if expr.data == "function_call":
        names = [str(c.children[0]) for c in children if isinstance(c, Tree) and c.data == "identifier"]
        yield Call("::".join(names), _line(expr))
        if names == ["convert"]:
            children = [*_first_argument(children)]
    for child in children:
        yield from calls_in(child)


def _first_argument(children: list[Tree[Token] | Token]) -> list[Tree[Token]]:
    """convert(value, type): the type is a type expression (``list(string)``), not function calls."""
    for child in children:
        if isinstance(child, Tree) and child.data == "arguments":
            return [c for c in child.children if isinstance(c, Tree) and c.data != "new_line_or_comment"][:1]
    return []


# --- checking -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checker:
    schema: Schema
    file: str

    def finding(self, line: int, path: str, message: str) -> Finding:
        return Finding(self.file, line, path or "(file)", message)

    def body(self, block: Block, body: BodySchema, path: str, dynamic_ok: bool) -> Iterator[Finding]:
        yield from self.duplicate_attributes(block, path)
        for attr in block.attributes:
            yield from self.attribute(attr, body, path)
        yield from self.single_blocks(block, body, path)
        yield from self.missing(block, body, path)
        for child in block.blocks:
            yield from self.child(block, child, body, path, dynamic_ok)

    def duplicate_attributes(self, block: Block, path: str) -> Iterator[Finding]:
        seen: set[str] = set()
        for attr in block.attributes:
            if attr.name in seen:
                yield self.finding(attr.line, path, f'attribute "{attr.name}" is defined twice')
            seen.add(attr.name)

    def attribute(self, attr: Attribute, body: BodySchema, path: str) -> Iterator[Finding]:
        ref = body.blocks.get(attr.name)
        if attr.name in body.attributes or body.any_attributes or (ref is not None and ref.as_attribute):
            if body.attributes.get(attr.name) == "duration":
                yield from self.duration(attr, path)
        elif ref is not None:
            yield self.finding(attr.line, path, f'"{attr.name}" is a block here, not an attribute')
        else:
            yield self.finding(attr.line, path, f'unknown attribute "{attr.name}"')
        if attr.name not in body.type_expressions:
            yield from self.functions(attr.expr, path)

    def duration(self, attr: Attribute, path: str) -> Iterator[Finding]:
        literal = _string_literal(attr.expr)
        if literal is not None and not _DURATION.fullmatch(literal):
            yield self.finding(attr.line, path, f'"{attr.name}" = "{literal}" is not a duration (such as "10s")')

    def functions(self, expr: Tree[Token] | Token, path: str) -> Iterator[Finding]:
        for item in calls_in(expr):
            if isinstance(item, Finding):
                yield self.finding(item.line, path, item.message)
            elif item.name not in self.schema.functions:
                yield self.finding(
                    item.line, path, f'function "{item.name}" is not in Nomad {self.schema.version}\'s function table'
                )
            elif item.name in self.schema.filesystem_functions:
                yield self.finding(
                    item.line,
                    path,
                    f'function "{item.name}" reads the filesystem: disabled when Nomad parses over its HTTP API '
                    "(/v1/jobs/parse, as make deploy does)",
                )

    def single_blocks(self, block: Block, body: BodySchema, path: str) -> Iterator[Finding]:
        seen: set[str] = set()
        for child in block.blocks:
            ref = body.blocks.get(child.type)
            if ref is None or ref.repeated:
                continue
            if child.type in seen:
                yield self.finding(child.line, path, f'block "{child.type}" may appear only once here')
            seen.add(child.type)
            if ref.as_attribute and any(a.name == child.type for a in block.attributes):
                yield self.finding(child.line, path, f'"{child.type}" is given both as an attribute and as a block')

    def missing(self, block: Block, body: BodySchema, path: str) -> Iterator[Finding]:
        present = {a.name for a in block.attributes} | {b.type for b in block.blocks}
        for name in sorted(body.required - present):
            yield self.finding(block.line, path, f'missing required attribute "{name}"')
        for name, ref in sorted(body.blocks.items()):
            if ref.required and name not in present:
                yield self.finding(block.line, path, f'missing required block "{name}"')

    def child(self, parent: Block, child: Block, body: BodySchema, path: str, dynamic_ok: bool) -> Iterator[Finding]:
        here = _join(path, child)
        ref = body.blocks.get(child.type)
        if child.type == "dynamic" and dynamic_ok and not body.any_blocks:
            yield from self.dynamic(child, body, here)
        elif ref is not None:
            yield from self.labels(child, ref, here)
            target = self.config_body(parent, child, ref) or self.schema.body(ref)
            yield from self.body(child, target, here, dynamic_ok or target.name == "Job")
        elif body.any_blocks:
            yield from self.body(child, body, here, dynamic_ok=False)
        elif child.type in body.attributes:
            yield self.finding(child.line, path, f'"{child.type}" is an attribute here, not a block')
            yield from self.body(child, BodySchema.free("any"), here, dynamic_ok=False)
        else:
            yield self.finding(child.line, path, f'unknown block "{child.type}"')
            yield from self.body(child, BodySchema.free("any"), here, dynamic_ok=False)

    def labels(self, block: Block, ref: BlockRef, path: str) -> Iterator[Finding]:
        if len(block.labels) != len(ref.labels):
            wanted = f"{len(ref.labels)} label{'s' if len(ref.labels) != 1 else ''}"
            named = f" ({', '.join(ref.labels)})" if ref.labels else ""
            yield self.finding(
                block.line, path, f'block "{block.type}" takes {wanted}{named}, found {len(block.labels)}'
            )
        elif ref.label_values and block.labels[0].lower() not in ref.label_values:
            yield self.finding(
                block.line, path, f'label "{block.labels[0]}" must be one of {", ".join(ref.label_values)}'
            )

    def config_body(self, parent: Block, child: Block, ref: BlockRef) -> BodySchema | None:
        """A driver's own config schema, when the driver is a literal one the schema knows (docker)."""
        if child.type != "config" or ref.schema is not None:
            return None
        driver = next((_string_literal(a.expr) for a in parent.attributes if a.name == "driver"), None)
        name = self.schema.drivers.get(driver or "")
        return self.schema.bodies[name] if name else None

    def dynamic(self, block: Block, body: BodySchema, path: str) -> Iterator[Finding]:
        if len(block.labels) != 1:
            yield self.finding(block.line, path, f'block "dynamic" takes 1 label (type), found {len(block.labels)}')
            return
        ref = body.blocks.get(block.labels[0])
        if ref is None:
            yield self.finding(block.line, path, f'unknown block "{block.labels[0]}" (dynamic)')
            return
        yield from self.dynamic_header(block, ref, path)
        for content in block.blocks:
            if content.type != "content":
                yield self.finding(content.line, path, f'unknown block "{content.type}"')
                continue
            yield from self.body(content, self.schema.body(ref), f"{path}/content", dynamic_ok=True)

    def dynamic_header(self, block: Block, ref: BlockRef, path: str) -> Iterator[Finding]:
        allowed = set(self.schema.dynamic.attributes) - (set() if ref.labels else {"labels"})
        required = set(self.schema.dynamic.required) | ({"labels"} if ref.labels else set())
        names = {a.name for a in block.attributes}
        for attr in block.attributes:
            if attr.name not in allowed:
                yield self.finding(attr.line, path, f'unknown attribute "{attr.name}"')
            yield from self.functions(attr.expr, path)
        for name in sorted(required - names):
            yield self.finding(block.line, path, f'missing required attribute "{name}"')
        contents = [b for b in block.blocks if b.type == "content"]
        if len(contents) != 1:
            yield self.finding(
                block.line, path, f'a dynamic block needs exactly one "content" block, found {len(contents)}'
            )


def _join(path: str, block: Block) -> str:
    step = ".".join((block.type, *block.labels))
    return f"{path}/{step}" if path else step


def _string_literal(expr: Tree[Token] | Token) -> str | None:
    """The value of a plain quoted string with no interpolation, else None."""
    if not isinstance(expr, Tree) or expr.data != "expr_term" or len(expr.children) != 1:
        return None
    string = expr.children[0]
    if not isinstance(string, Tree) or string.data != "string":
        return None
    parts = [p.children[0] for p in string.children if isinstance(p, Tree)]
    if not all(isinstance(p, Token) and p.type == "STRING_CHARS" for p in parts):
        return None
    return "".join(str(p) for p in parts)


# --- API and CLI --------------------------------------------------------------------------------------


def check_text(text: str, schema: Schema, file: str = "<text>") -> list[Finding]:
    try:
        root = parse_text(text)
    except LarkError as exc:
        line = getattr(exc, "line", 0) or 0
        return [Finding(file, line, "(file)", f"not valid HCL: {str(exc).splitlines()[0]}")]
    checker = Checker(schema, file)
    findings = checker.body(root, schema.bodies[schema.root], "", dynamic_ok=False)
    return sorted(findings, key=lambda f: f.line)


def check_job_file(path: Path, schema: Schema) -> list[Finding]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return [Finding(str(path), 0, "(file)", f"cannot read: {exc.strerror}")]
    return check_text(text, schema, _display(path))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def check_files(paths: Iterable[Path], schema: Schema) -> list[Finding]:
    return [finding for path in paths for finding in check_job_file(path, schema)]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.jobspec_lint",
        description="Check Nomad job files against the jobspec schema derived from Nomad's source "
        "(unknown attributes/blocks, single blocks twice, labels, durations, functions outside Nomad's table).",
        epilog="Exit status: 0 clean, 1 findings, 2 no schema.",
    )
    parser.add_argument("files", nargs="*", type=Path, help="job files (default: jobs/*.nomad.hcl)")
    parser.add_argument("--schema", type=Path, help="schema JSON (default: the newest jobs/.schema/nomad-v*.json)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        schema = load_schema(args.schema)
    except LintError as exc:
        print(f"jobspec_lint: {exc}", file=sys.stderr)
        return 2
    files = args.files or sorted(JOBS_DIR.glob("*.nomad.hcl"))
    findings = check_files(files, schema)
    for finding in findings:
        print(finding)
    print(f"{len(findings)} finding(s) in {len(files)} file(s), Nomad {schema.version} schema", file=sys.stderr)
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
