"""The configuration keys Consul, Nomad and Vault agents accept, read from each product's Go source.

The bootstrap script (terraform/templates/bootstrap.sh.tftpl) writes HCL config files for the
three agents. A misspelt key, a key in the wrong block or a block written twice only shows up when
the agent starts on a real node. This module derives, from the product's own source at a pinned
release tag, the list of keys (with their nesting) its agent configuration decodes, and writes it
as JSON under terraform/.schema/; tests/infra/test_terraform_render.py checks the rendered files
against those lists with `unknown_keys` and `repeated_blocks`.

How keys are found: the agent configuration structs are parsed (field names, types and struct
tags: `mapstructure` for Consul, `hcl` for Nomad and Vault, with the tag the product's decoder
uses for blocks it decodes by hand), and each field becomes a path with a kind:

    attr       a value (string, number, bool, list of values)
    block      a block that may appear once (a struct field)
    blocks     a block that may repeat (a slice of structs)
    labelled   a labelled block (`plugin "docker" {}`), each label at most once; its labels are
               the next path segment, `*` when any label is accepted
    labelled-once   a labelled block written once in all (Vault's `storage "raft" {}`)
    labelled-many   a labelled block that may repeat, even with the same label (`listener "tcp"`)
    label      one accepted label of a labelled block (its body follows)
    map        free-form keys below this path (a map, interface{}, or a backend's own config
               that this generator does not read)

Blocks that a product parses by hand rather than through its structs (Nomad's `vault`/`consul`,
Vault's `listener`/`storage`/`seal`/`service_registration`, the raft storage keys, the docker
driver's plugin config) are declared per product below, each with a piece of source text that
must still be present, so a change upstream fails the generator instead of silently drifting.
Only names are written out; no product code is copied.

    python -m scripts.cluster.agent_schema --product nomad --git-dir <clone>/.git --ref v1.8.4
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO / "terraform" / ".schema"

KINDS = ("attr", "block", "blocks", "labelled", "labelled-once", "labelled-many", "label", "map")
# Blocks that must not appear twice in one file: Consul refuses them (a repeated block decodes
# into a list where a map is expected), Vault refuses a second storage/telemetry, and Nomad
# silently merges them, which hides mistakes.
SINGLE = {"block", "labelled-once"}
LABELLED = {"labelled", "labelled-once", "labelled-many"}

# Go types that decode from one scalar value.
_SCALARS = {
    "string",
    "bool",
    "int",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float32",
    "float64",
    "byte",
    "rune",
    "time.Duration",
    "time.Time",
    "json.Number",
}
_FREE = {"interface{}", "any"}


class SchemaError(Exception):
    """The source does not look like what this generator expects (a changed release)."""


# --- reading a source tree -------------------------------------------------------------------------


class GitSource:
    """Files of one commit of a git repository, read with `git show` (no work tree needed)."""

    def __init__(self, git_dir: Path, ref: str) -> None:
        self.git_dir = git_dir
        self.ref = ref
        self.commit = self._git("rev-parse", f"{ref}^{{commit}}").strip()
        self._cache: dict[str, str] = {}

    def _git(self, *args: str) -> str:
        result = subprocess.run(
            ["git", f"--git-dir={self.git_dir}", *args], capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise SchemaError(f"git {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def read(self, path: str) -> str:
        if path not in self._cache:
            self._cache[path] = self._git("show", f"{self.commit}:{path}")
        return self._cache[path]

    def go_files(self, directory: str) -> list[str]:
        listing = self._git("ls-tree", "--name-only", f"{self.commit}:{directory}")
        names = [line for line in listing.splitlines() if line.endswith(".go") and not line.endswith("_test.go")]
        return [f"{directory}/{name}" for name in names]


# --- a small reader of Go declarations --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GoField:
    name: str  # empty for an embedded field
    type: str
    tags: Mapping[str, str]
    inline: GoStruct | None = None  # an anonymous `struct { ... }` type


@dataclass(frozen=True, slots=True)
class GoStruct:
    fields: tuple[GoField, ...]


@dataclass(slots=True)
class GoPackage:
    directory: str
    imports: dict[str, str] = field(default_factory=dict)  # alias -> import path
    structs: dict[str, GoStruct] = field(default_factory=dict)
    others: set[str] = field(default_factory=set)  # named non-struct types (type X string)


_COMMENTS = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_TAG = re.compile(r'(\w+):"([^"]*)"')


def _strip_comments(text: str) -> str:
    # Comments first, but not inside strings or struct tags: blank string contents out of the way.
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'`":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if ch != "`" and text[end] == "\\" else 1
            out.append(text[i : end + 1])
            i = end + 1
        elif text.startswith("//", i) or text.startswith("/*", i):
            match = _COMMENTS.match(text, i)
            assert match is not None
            out.append("\n" * match.group(0).count("\n"))
            i = match.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _after_go_string(text: str, start: int) -> int:
    """Index just past the Go string literal (interpreted "..." or raw `...`) opening at ``start``."""
    quote = text[start]
    end = start + 1
    while end < len(text) and text[end] != quote:
        end += 2 if quote == '"' and text[end] == "\\" else 1
    return end + 1


def _matching(text: str, start: int, open_ch: str = "{", close_ch: str = "}") -> int:
    """Index of the bracket closing the one at ``start`` (strings and raw strings skipped)."""
    depth = 0
    i = start
    while i < len(text):
        ch = text[i]
        if ch in '"`':
            i = _after_go_string(text, i)
            continue
        if ch == open_ch:
            depth += 1
        elif ch == close_ch:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise SchemaError(f"unbalanced {open_ch}{close_ch} in Go source")


def _parse_struct_body(body: str) -> GoStruct:
    fields: list[GoField] = []
    i = 0
    while i < len(body):
        end = body.find("\n", i)
        end = len(body) if end == -1 else end
        line = body[i:end].strip()
        if line.endswith("struct {") or line.endswith("struct{"):
            brace = body.index("{", i)
            close = _matching(body, brace)
            inline = _parse_struct_body(body[brace + 1 : close])
            rest_end = body.find("\n", close)
            rest_end = len(body) if rest_end == -1 else rest_end
            tag_text = body[close + 1 : rest_end]
            name = line.split()[0]
            fields.append(GoField(name, "struct", dict(_TAG.findall(tag_text)), inline))
            i = rest_end + 1
            continue
        i = end + 1
        if not line:
            continue
        tag_match = re.search(r"`([^`]*)`", line)
        tags = dict(_TAG.findall(tag_match.group(1))) if tag_match else {}
        decl = line[: tag_match.start()].strip() if tag_match else line
        parts = decl.split(None, 1)
        if len(parts) == 1:
            fields.append(GoField("", parts[0], tags))  # embedded
        else:
            for name in parts[0].rstrip(",").split(","):
                fields.append(GoField(name.strip(), parts[1].strip(), tags))
    return GoStruct(tuple(fields))


def parse_go(text: str, package: GoPackage) -> None:
    text = _strip_comments(text)
    for block in re.finditer(r"^import\s*\((.*?)^\)", text, re.M | re.S):
        for alias, path in re.findall(r'^\s*(\w+)?\s*"([^"]+)"', block.group(1), re.M):
            package.imports[alias or path.rsplit("/", 1)[-1]] = path
    for alias, path in re.findall(r'^import\s+(\w+)?\s*"([^"]+)"', text, re.M):
        package.imports[alias or path.rsplit("/", 1)[-1]] = path
    for decl in re.finditer(r"^(?:type\s+|\t)(\w+)\s+(struct\s*\{|[^\s=][^\n]*)", text, re.M):
        name, kind = decl.group(1), decl.group(2)
        if not decl.group(0).startswith("type") and not _in_type_group(text, decl.start()):
            continue
        if kind.startswith("struct"):
            brace = text.index("{", decl.start(2))
            close = _matching(text, brace)
            package.structs[name] = _parse_struct_body(text[brace + 1 : close])
        else:
            package.others.add(name)


def _in_type_group(text: str, pos: int) -> bool:
    """Whether ``pos`` is inside a `type ( ... )` group."""
    start = text.rfind("\ntype (", 0, pos)
    return start != -1 and text.find("\n)", start, pos) == -1


class Resolver:
    """Go packages of one module, loaded directory by directory when a type refers to them."""

    def __init__(self, source: GitSource, module: str) -> None:
        self.source = source
        self.module = module
        self.packages: dict[str, GoPackage] = {}
        self.unresolved: set[str] = set()
        self.skipped: set[str] = set()

    def package(self, directory: str) -> GoPackage:
        if directory not in self.packages:
            package = GoPackage(directory)
            for path in self.source.go_files(directory):
                try:
                    text = self.source.read(path)
                except SchemaError:
                    # A file listed but absent from a partial clone (generated assets): recorded.
                    self.skipped.add(path)
                    continue
                if re.search(r"^//go:build\s+(?:enterprise|consulent)\b", text, re.M):
                    continue  # enterprise-only files are not in the community binaries
                parse_go(text, package)
            self.packages[directory] = package
        return self.packages[directory]

    def resolve(self, type_name: str, home: str) -> tuple[str, GoStruct | None]:
        """(package directory, struct or None for a named non-struct type)."""
        if "." in type_name:
            alias, name = type_name.split(".", 1)
            import_path = self.package(home).imports.get(alias, "")
            if not import_path.startswith(self.module + "/"):
                raise KeyError(type_name)
            directory = import_path[len(self.module) + 1 :]
        else:
            directory, name = home, type_name
        package = self.package(directory)
        if name in package.structs:
            return directory, package.structs[name]
        if name in package.others:
            return directory, None
        raise KeyError(type_name)


# --- walking structs into key paths -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Walk:
    resolver: Resolver
    tags: tuple[str, ...]  # struct tags to read a key from, in order of preference
    keys: dict[str, str]

    def add(self, path: str, kind: str) -> None:
        previous = self.keys.get(path)
        if previous is not None and previous != kind:
            # A key that is both a value and a block in different places (aliases): the wider wins.
            order = ["attr", "block", "blocks", "label", "labelled-once", "labelled", "labelled-many", "map"]
            kind = max(previous, kind, key=order.index)
        self.keys[path] = kind

    def struct(self, struct: GoStruct, home: str, prefix: str, seen: frozenset[str] = frozenset()) -> None:
        for go_field in struct.fields:
            key, options = self._key(go_field)
            if key == "-":
                continue
            if "squash" in options or (not go_field.name and not key):
                self._embedded(go_field, home, prefix, seen)
                continue
            if not key:
                if options or not go_field.name[:1].isupper():
                    continue  # ,key / ,unusedKeys / ,decodedFields / unexported
                key = go_field.name.lower()
            path = f"{prefix}.{key}" if prefix else key
            self.value(go_field, home, path, seen)
            alias = go_field.tags.get("alias", "")
            if alias and "," not in alias:
                self.value(go_field, home, f"{prefix}.{alias}" if prefix else alias, seen)
            for option in options:
                if option.startswith("alias:"):
                    name = option.removeprefix("alias:").lower()
                    if name != key and re.fullmatch(r"[a-z0-9_]+", name):
                        self.value(go_field, home, f"{prefix}.{name}" if prefix else name, seen)

    def _key(self, go_field: GoField) -> tuple[str, list[str]]:
        for tag in self.tags:
            if tag in go_field.tags:
                name, *options = go_field.tags[tag].split(",")
                return name, options
        return "", []

    def _embedded(self, go_field: GoField, home: str, prefix: str, seen: frozenset[str]) -> None:
        type_name = go_field.type.lstrip("*")
        try:
            directory, struct = self.resolver.resolve(type_name, home)
        except KeyError:
            self.resolver.unresolved.add(type_name)
            return
        if struct is not None:
            self.struct(struct, directory, prefix, seen)

    def value(self, go_field: GoField, home: str, path: str, seen: frozenset[str]) -> None:
        if go_field.inline is not None:
            self.add(path, "block")
            self.struct(go_field.inline, home, path, seen)
            return
        type_name = go_field.type
        repeated = False
        while True:
            if type_name.startswith("*"):
                type_name = type_name[1:]
            elif type_name.startswith("[]"):
                repeated = True
                type_name = type_name[2:]
            else:
                break
        if type_name.startswith("map[") or type_name in _FREE:
            self.add(path, "map")
            return
        if type_name in _SCALARS or type_name.startswith(("func", "chan ")):
            self.add(path, "attr")
            return
        try:
            directory, struct = self.resolver.resolve(type_name, home)
        except KeyError:
            self.resolver.unresolved.add(type_name)
            self.add(path, "map")
            return
        if struct is None:
            self.add(path, "attr")
            return
        label = next((f for f in struct.fields if any(",key" in f.tags.get(t, "") for t in self.tags)), None)
        if label is not None:
            self.add(path, "labelled")
            self.add(f"{path}.*", "label")
            path = f"{path}.*"
        else:
            self.add(path, "blocks" if repeated else "block")
        marker = f"{directory}.{type_name}"
        if marker in seen:
            return
        self.struct(struct, directory, path, seen | {marker})


# --- what each product parses by hand ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Evidence:
    """Source text that must be present for a hand-declared part of the schema to hold."""

    path: str
    needle: str

    def check(self, source: GitSource) -> None:
        if self.needle not in source.read(self.path):
            raise SchemaError(f"{self.path} no longer contains {self.needle!r}: review the {type(self).__name__}")


@dataclass(frozen=True, slots=True)
class StructAt:
    """Keys of a Go struct, mounted at ``path`` with ``kind``."""

    path: str
    directory: str
    struct: str
    kind: str
    tags: tuple[str, ...]
    evidence: Evidence | None = None


@dataclass(frozen=True, slots=True)
class ConfKeys:
    """Keys a backend reads from its string map (`conf["x"]`), mounted as attributes under ``path``."""

    path: str
    files: tuple[str, ...]
    pattern: str = r'\b(?:conf|m)\["([a-z0-9_]+)"\]'
    extra_pattern: str = r'\w+ConfigKey\s*=\s*"([a-z0-9_]+)"'


@dataclass(frozen=True, slots=True)
class HclSpec:
    """Keys of a plugin's `hclspec` object literal (Nomad task drivers), mounted under ``path``."""

    path: str
    file: str
    variable: str


@dataclass(frozen=True, slots=True)
class Fixed:
    path: str
    kind: str
    evidence: Evidence | None = None


Part = StructAt | ConfKeys | HclSpec | Fixed


@dataclass(frozen=True, slots=True)
class Product:
    name: str
    upstream: str
    module: str
    version_file: str
    roots: tuple[tuple[str, str], ...]  # (directory, struct) decoded at the top level
    tags: tuple[str, ...]
    parts: tuple[Part, ...] = ()


PRODUCTS: dict[str, Product] = {
    "consul": Product(
        name="consul",
        upstream="https://github.com/hashicorp/consul",
        module="github.com/hashicorp/consul",
        version_file="version/VERSION",
        # FileSource.Parse decodes every file into decodeTarget (Config plus DeprecatedConfig).
        roots=(("agent/config", "decodeTarget"),),
        tags=("mapstructure",),
    ),
    "nomad": Product(
        name="nomad",
        upstream="https://github.com/hashicorp/nomad",
        module="github.com/hashicorp/nomad",
        version_file="version/version.go",
        roots=(("command/agent", "Config"),),
        tags=("hcl", "mapstructure"),
        parts=(
            # ParseConfigFile decodes `vault` and `consul` blocks by hand (mapstructure), several allowed.
            StructAt(
                "vault",
                "nomad/structs/config",
                "VaultConfig",
                "blocks",
                ("mapstructure",),
                Evidence("command/agent/config_parse.go", 'list.Filter("vault")'),
            ),
            StructAt(
                "consul",
                "nomad/structs/config",
                "ConsulConfig",
                "blocks",
                ("mapstructure",),
                Evidence("command/agent/config_parse.go", 'list.Filter("consul")'),
            ),
            HclSpec("plugin.docker.config", "drivers/docker/config.go", "configSpec"),
        ),
    ),
    "vault": Product(
        name="vault",
        upstream="https://github.com/hashicorp/vault",
        module="github.com/hashicorp/vault",
        version_file="version/VERSION",
        # ParseConfig decodes the file into Config, then configutil.ParseConfig into SharedConfig.
        roots=(("command/server", "Config"), ("internalshared/configutil", "SharedConfig")),
        tags=("hcl",),
        parts=(
            Fixed(
                "listener", "labelled-many", Evidence("internalshared/configutil/config.go", 'list.Filter("listener")')
            ),
            StructAt("listener.*", "internalshared/configutil", "Listener", "label", ("hcl",)),
            Fixed("seal", "labelled-many", Evidence("internalshared/configutil/config.go", 'list.Filter("seal")')),
            Fixed("seal.*", "label"),
            Fixed("seal.*.*", "map"),  # each wrapper's own keys (go-kms-wrapping, another module)
            Fixed("storage", "labelled-once", Evidence("command/server/config.go", "only one %q block is permitted")),
            Fixed("storage.*", "label"),
            Fixed("storage.*.*", "map"),  # backends other than raft are not read here
            Fixed("storage.raft", "label"),
            ConfKeys("storage.raft", ("physical/raft/config.go", "physical/raft/raft.go", "command/server/config.go")),
            StructAt("storage.raft.retry_join", "physical/raft", "LeaderJoinInfo", "blocks", ("json",)),
            Fixed("ha_storage", "labelled-once", Evidence("command/server/config.go", 'list.Filter("ha_storage")')),
            Fixed("ha_storage.*", "label"),
            Fixed("ha_storage.*.*", "map"),
            Fixed(
                "service_registration",
                "labelled-once",
                Evidence("command/server/config.go", 'list.Filter("service_registration")'),
            ),
            Fixed("service_registration.*", "label"),
            Fixed("service_registration.*.*", "map"),
            Fixed("service_registration.consul", "label"),
            ConfKeys("service_registration.consul", ("serviceregistration/consul/consul_service_registration.go",)),
            Fixed(
                "user_lockout",
                "labelled",
                Evidence("internalshared/configutil/config.go", 'list.Filter("user_lockout")'),
            ),
            Fixed("user_lockout.*", "label"),
            Fixed("user_lockout.*.*", "map"),
            Fixed(
                "entropy", "labelled-once", Evidence("internalshared/configutil/config.go", 'list.Filter("entropy")')
            ),
            Fixed("entropy.*", "label"),
            Fixed("entropy.*.*", "map"),
        ),
    ),
}


# --- Nomad hclspec literals -----------------------------------------------------------------------------


def _split_args(text: str) -> list[str]:
    """Top-level comma-separated parts of a Go argument list or composite literal body."""
    parts: list[str] = []
    depth = 0
    start = 0
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in '"`':
            i = _after_go_string(text, i)
            continue
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
        i += 1
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _call(expr: str) -> tuple[str, list[str]]:
    match = re.match(r"\s*([\w.]+)\s*\(", expr)
    if match is None:
        return expr.strip(), []
    open_at = match.end() - 1
    close = _matching(expr, open_at, "(", ")")
    return match.group(1), _split_args(expr[open_at + 1 : close])


def hclspec_keys(text: str, variable: str, prefix: str, keys: dict[str, str]) -> None:
    """Walk `variable = hclspec.NewObject(map[string]*hclspec.Spec{...})` into ``keys``."""
    code = _strip_comments(text)
    assignments: dict[str, str] = {}
    for match in re.finditer(r"^\s*(\w+)\s*=\s*(hclspec\.New\w+\()", code, re.M):
        open_at = match.end(2) - 1
        assignments[match.group(1)] = code[match.start(2) : _matching(code, open_at, "(", ")") + 1]
    if variable not in assignments:
        raise SchemaError(f"no `{variable} = hclspec.New...(...)` in the driver source")

    def spec(expr: str, path: str) -> None:
        expr = expr.strip()
        if re.fullmatch(r"\w+", expr) and expr in assignments:
            expr = assignments[expr]
        name, args = _call(expr)
        if name == "hclspec.NewDefault":
            spec(args[0], path)
        elif name == "hclspec.NewObject":
            body = args[0]
            brace = body.index("{")
            for entry in _split_args(body[brace + 1 : _matching(body, brace)]):
                key, _, inner = entry.partition(":")
                spec(inner, f"{path}.{json.loads(key.strip())}")
        elif name == "hclspec.NewAttr":
            keys[path] = "attr"
        elif name == "hclspec.NewBlockAttrs":
            keys[path] = "map"
        elif name == "hclspec.NewBlock":
            keys[path] = "block"
            spec(args[2], path)
        elif name in {"hclspec.NewBlockList", "hclspec.NewBlockSet"}:
            keys[path] = "blocks"
            spec(args[1], path)
        elif name == "hclspec.NewBlockMap":
            keys[path] = "labelled"
            keys[f"{path}.*"] = "label"
            spec(args[2], f"{path}.*")
        else:
            keys[path] = "map"

    spec(assignments[variable], prefix)


# --- generating ------------------------------------------------------------------------------------------


def _version(product: Product, source: GitSource) -> str:
    text = source.read(product.version_file)
    if product.version_file.endswith(".go"):
        match = re.search(r'\bVersion\s*=\s*"([^"]+)"', text)
        if match is None:
            raise SchemaError(f"no Version in {product.version_file}")
        return match.group(1)
    return text.strip()


def generate(product: Product, source: GitSource, command: str) -> dict[str, Any]:
    resolver = Resolver(source, product.module)
    keys: dict[str, str] = {}
    walk = Walk(resolver, product.tags, keys)
    for directory, struct_name in product.roots:
        home, struct = resolver.resolve(struct_name, directory)
        if struct is None:
            raise SchemaError(f"{directory}.{struct_name} is not a struct")
        walk.struct(struct, home, "")
    for part in product.parts:
        if isinstance(part, StructAt):
            if part.evidence:
                part.evidence.check(source)
            home, struct = resolver.resolve(part.struct, part.directory)
            if struct is None:
                raise SchemaError(f"{part.directory}.{part.struct} is not a struct")
            keys[part.path] = part.kind
            Walk(resolver, part.tags, keys).struct(struct, home, part.path)
        elif isinstance(part, ConfKeys):
            found: set[str] = set()
            for path in part.files:
                text = _strip_comments(source.read(path))
                found.update(re.findall(part.pattern, text))
                found.update(re.findall(part.extra_pattern, text))
            if not found:
                raise SchemaError(f"no conf[...] keys in {part.files}")
            for key in found:
                keys.setdefault(f"{part.path}.{key}", "attr")
        elif isinstance(part, HclSpec):
            keys[part.path.rsplit(".", 1)[0]] = "label"
            hclspec_keys(source.read(part.file), part.variable, part.path, keys)
            keys[part.path] = "block"
        else:
            if part.evidence:
                part.evidence.check(source)
            keys[part.path] = part.kind
    return {
        "product": product.name,
        "version": _version(product, source),
        "ref": source.ref,
        "commit": source.commit,
        "upstream": product.upstream,
        "generated_by": command,
        "kinds": {
            "attr": "a value",
            "block": "a block, at most once per file",
            "blocks": "a block that may repeat",
            "labelled": "a labelled block, each label at most once; the next path segment is its label (* = any)",
            "labelled-once": "a labelled block written once in all",
            "labelled-many": "a labelled block that may repeat, also with the same label",
            "label": "one accepted label of a labelled block",
            "map": "free-form keys below (not checked)",
        },
        "unresolved_types": sorted(resolver.unresolved),
        "unreadable_files": sorted(resolver.skipped),
        "keys": dict(sorted(keys.items())),
    }


# --- checking a parsed config file (python-hcl2, explicit_blocks=True) --------------------------------


@dataclass(frozen=True, slots=True)
class Schema:
    product: str
    version: str
    keys: Mapping[str, str]

    def kind(self, path: Sequence[str]) -> str | None:
        """The kind of ``path``: exact match first, then `*` in place of label segments, then maps above."""
        found = self._direct(path)
        if found is not None:
            return found
        for cut in range(len(path) - 1, 0, -1):
            if self._direct(path[:cut]) == "map":
                return "map"
        return None

    def _direct(self, path: Sequence[str]) -> str | None:
        for candidate in _candidates(path):
            found = self.keys.get(".".join(candidate))
            if found is not None:
                return found
        return None


def _candidates(path: Sequence[str]) -> Iterable[tuple[str, ...]]:
    yield tuple(path)
    for i in range(len(path) - 1, -1, -1):
        yield (*path[:i], "*", *path[i + 1 :])
    if len(path) > 2:
        yield (*path[:-2], "*", "*")


def load_schema(product: str, directory: Path = SCHEMA_DIR) -> Schema:
    data = json.loads((directory / f"{product}.json").read_text())
    return Schema(product=data["product"], version=data["version"], keys=data["keys"])


def _is_block_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def check(schema: Schema, parsed: Mapping[str, Any]) -> list[str]:
    """Problems of one parsed file: unknown keys, blocks used as values, single blocks repeated."""
    problems: list[str] = []

    def walk(body: Mapping[str, Any], prefix: tuple[str, ...]) -> None:
        for key, value in body.items():
            if key == "__is_block__":
                continue
            path = (*prefix, key)
            dotted = ".".join(path)
            kind = schema.kind(path)
            if kind is None:
                problems.append(f"{dotted}: not a {schema.product} {schema.version} configuration key")
                continue
            if kind == "map":
                continue
            if not _is_block_list(value):
                if kind == "attr":
                    continue
                if isinstance(value, dict) and kind in {"block", "blocks"}:
                    walk(value, path)  # `key = { ... }` decodes like a block
                    continue
                problems.append(f"{dotted}: a {kind} written as a value")
                continue
            if kind == "attr":
                problems.append(f"{dotted}: a value written as a block")
                continue
            labelled = "__is_block__" not in value[0]
            if kind in LABELLED and not labelled:
                problems.append(f'{dotted}: needs a label (`{key} "<type>" {{ ... }}`)')
                continue
            if kind in {"block", "blocks"} and labelled:
                problems.append(f"{dotted}: takes no label")
                continue
            if kind in SINGLE and len(value) > 1:
                problems.append(f"{dotted}: block written {len(value)} times; {schema.product} accepts it once")
            if kind == "label":
                problems.append(f"{dotted}: a label used as a block name")
                continue
            if not labelled:
                for item in value:
                    walk(item, path)
                continue
            seen: dict[str, int] = {}
            for item in value:
                for label, inner in item.items():
                    label_path = (*path, label)
                    label_kind = schema.kind(label_path)
                    if label_kind not in {"label", "map"}:
                        problems.append(f'{dotted} "{label}": not a {key} type {schema.product} knows')
                        continue
                    seen[label] = seen.get(label, 0) + 1
                    if kind == "labelled" and label_kind == "label" and seen[label] == 2:
                        problems.append(f'{dotted} "{label}": written twice; {schema.product} accepts it once')
                    if isinstance(inner, dict) and label_kind == "label":
                        walk(inner, label_path)

    walk(parsed, ())
    return problems


# --- command line ----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.agent_schema",
        description=(
            "Derive the agent configuration keys of Consul, Nomad or Vault from the product's Go source "
            "at a release tag, and write them as JSON (terraform/.schema/<product>.json)."
        ),
    )
    parser.add_argument("--product", choices=sorted(PRODUCTS), required=True)
    parser.add_argument("--git-dir", type=Path, required=True, help="a clone (or bare mirror) of the product")
    parser.add_argument("--ref", required=True, help="release tag, e.g. v1.8.4")
    parser.add_argument("--out", type=Path, help=f"output file (default {SCHEMA_DIR.relative_to(REPO)}/<product>.json)")
    args = parser.parse_args(argv)

    product = PRODUCTS[args.product]
    command = (
        f"python -m scripts.cluster.agent_schema --product {args.product}"
        f" --git-dir <{args.product} clone> --ref {args.ref}"
    )
    try:
        source = GitSource(args.git_dir, args.ref)
        data = generate(product, source, command)
    except SchemaError as exc:
        print(f"agent_schema: {exc}", file=sys.stderr)
        return 1
    out: Path = args.out or SCHEMA_DIR / f"{product.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{out}: {product.name} {data['version']} ({data['commit'][:12]}), {len(data['keys'])} keys")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
