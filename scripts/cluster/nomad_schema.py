"""Derive Nomad's jobspec schema from Nomad's own source, pinned to one version.

Nomad cannot run here, so the job files are checked against facts read from a checkout of
hashicorp/nomad (``scripts.cluster.jobspec_lint``): the block and attribute names each jobspec block
accepts, from the ``hcl:"..."`` struct tags in ``api/*.go`` as gohcl reads them, adjusted for what
``jobspec2/`` decodes by hand (meta/env as attributes, job- and group-level vault, task-level scaling,
constraint/affinity specs, durations, variables and locals), the HCL function table of
``jobspec2/functions.go``, and the docker driver's ``config`` keys from ``drivers/docker/config.go``.

The output is names and flags only, sorted, with the version, commit and command that made it::

    git -C NOMAD_GIT_DIR tag -l 'v1.8.*'
    python -m scripts.cluster.nomad_schema --nomad-src NOMAD_GIT_DIR --ref v1.8.4 \\
        --out jobs/.schema/nomad-v1.8.4.json

Without ``--ref`` the files are read from the ``--nomad-src`` work tree and HEAD is the commit.
Every jobspec2 special case is located in the source by a pattern; when Nomad changes shape the
generator stops with the pattern it could not find instead of writing a wrong schema.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
REPOSITORY = "https://github.com/hashicorp/nomad"
GENERATOR = "scripts/cluster/nomad_schema.py"

# The dynamic block comes from hashicorp/hcl (ext/dynblock/schema.go), which is not in the Nomad tree:
# its two body schemas, for target blocks without and with labels. Nomad's go.mod pins the version.
DYNAMIC_SCHEMA: dict[str, Any] = {
    "source": "hashicorp/hcl ext/dynblock/schema.go (dynblock.Expand in jobspec2/types.config.go)",
    "labels": ["type"],
    "attributes": {"for_each": "any", "iterator": "identifier", "labels": "list(string)"},
    "required": ["for_each"],
    "required_if_target_has_labels": ["labels"],
    "forbidden_if_target_has_no_labels": ["labels"],
    "blocks": {"content": {"schema": "<target>", "repeated": False, "labels": []}},
}


class SchemaSourceError(Exception):
    """The Nomad source is missing or does not have the shape this generator was written against."""


# --- reading the checkout ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NomadSource:
    """Files of a Nomad checkout: from a git ref when given (bare or not), else from the work tree."""

    root: Path
    ref: str | None = None

    def _git(self, *args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(self.root), *args], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            raise SchemaSourceError("git is not installed") from None
        if done.returncode != 0:
            raise SchemaSourceError(f"git {' '.join(args)} failed in {self.root}: {done.stderr.strip()}")
        return done.stdout

    def read(self, path: str) -> str:
        if self.ref is not None:
            return self._git("show", f"{self.ref}:{path}")
        try:
            return (self.root / path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SchemaSourceError(f"cannot read {path} in {self.root}: {exc.strerror}") from None

    def go_files(self, directory: str) -> list[str]:
        """Non-test Go files directly in ``directory``, sorted."""
        if self.ref is not None:
            names = [
                line.rsplit("/", 1)[-1]
                for line in self._git("ls-tree", "--name-only", self.ref, directory + "/").split()
            ]
        else:
            names = [p.name for p in (self.root / directory).glob("*.go")]
        return sorted(f"{directory}/{n}" for n in names if n.endswith(".go") and not n.endswith("_test.go"))

    def commit(self) -> str:
        return self._git("rev-parse", f"{self.ref or 'HEAD'}^{{commit}}").strip()


def nomad_version(source: NomadSource) -> str:
    text = source.read("version/version.go")
    version = _search(r'^\s*Version\s*=\s*"([^"]+)"', text, "version/version.go Version")
    pre = _search(r'^\s*VersionPrerelease\s*=\s*"([^"]*)"', text, "version/version.go VersionPrerelease")
    return f"v{version}-{pre}" if pre else f"v{version}"


def _search(pattern: str, text: str, what: str, flags: int = re.M) -> str:
    found = re.search(pattern, text, flags)
    if not found:
        raise SchemaSourceError(f"cannot find {what} (pattern {pattern!r}): has the Nomad source changed shape?")
    return found.group(1)


# --- Go source, as far as this needs it ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tag:
    """One ``hcl:"name,kind"`` field tag, read the way gohcl's getFieldTags reads it."""

    field: str
    go_type: str
    name: str
    kind: str


@dataclass(slots=True)
class GoStruct:
    name: str
    file: str
    tags: list[Tag] = field(default_factory=list)


_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.M | re.S)
_FIELD = re.compile(r"^\s+(\w+)\s+(\S+)\s+`([^`]*)`", re.M)
_HCL_TAG = re.compile(r'hcl:"([^"]*)"')
_GOHCL_KINDS = {"attr", "block", "label", "remain", "body", "optional"}


def parse_tags(body: str) -> list[Tag]:
    tags = []
    for fld in _FIELD.finditer(body):
        tag = _HCL_TAG.search(fld.group(3))
        if tag is None:
            continue
        name, _, kind = tag.group(1).partition(",")
        tags.append(Tag(field=fld.group(1), go_type=fld.group(2), name=name, kind=kind or "attr"))
    return tags


def parse_structs(source: NomadSource, files: list[str]) -> dict[str, GoStruct]:
    structs: dict[str, GoStruct] = {}
    for path in files:
        for match in _STRUCT.finditer(source.read(path)):
            structs[match.group(1)] = GoStruct(match.group(1), path, parse_tags(match.group(2)))
    return structs


def go_functions(text: str) -> dict[str, str]:
    """Top-level function (and method) bodies by name."""
    found = re.finditer(r"^func (?:\([^)]*\) )?(\w+)\(.*?^\}", text, re.M | re.S)
    return {m.group(1): m.group(0) for m in found}


def string_constants(text: str) -> dict[str, str]:
    return dict(re.findall(r'^\s*(\w+)\s*=\s*"([^"]*)"\s*$', text, re.M))


@dataclass(frozen=True, slots=True)
class GoType:
    slice: bool
    pointer: bool
    map_value: str | None
    base: str

    @classmethod
    def parse(cls, text: str) -> GoType:
        slice_ = text.startswith("[]")
        rest = text.removeprefix("[]")
        pointer = rest.startswith("*")
        rest = rest.removeprefix("*")
        if rest.startswith("map["):
            return cls(slice_, pointer, rest.split("]", 1)[1], rest)
        return cls(slice_, pointer, None, rest.removeprefix("api."))


def attribute_type(go_type: str) -> str:
    """The attribute's value type in HCL terms; durations are special (jobspec2 decodeDuration)."""
    parsed = GoType.parse(go_type)
    base = parsed.base
    if base == "time.Duration":
        kind = "duration"
    elif base in {"string", "bool"}:
        kind = base
    elif re.fullmatch(r"u?int\d*|float\d+", base):
        kind = "number"
    elif parsed.map_value is not None:
        kind = f"map({parsed.map_value})"
    else:
        kind = base
    return f"list({kind})" if parsed.slice else kind


def _map_value(go_type: str) -> str:
    """A free-form block's value type; ``any`` ones also take nested blocks (jobspec2 BlocksAsAttrs)."""
    return "any" if go_type in {"interface{}", "any"} else attribute_type(go_type)


# --- the schema --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Builder:
    structs: dict[str, GoStruct]
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    decoders: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    hcldec_specs: dict[str, dict[str, str]] = field(default_factory=dict)
    extra_tags: dict[str, list[Tag]] = field(default_factory=dict)
    label_values: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def labels_of(self, struct: str) -> list[str]:
        return [t.name or "label" for t in self.structs[struct].tags if t.kind == "label"]

    def block_ref(self, tag: Tag) -> dict[str, Any]:
        parsed = GoType.parse(tag.go_type)
        if parsed.map_value is not None:
            value = GoType.parse(parsed.map_value)
            if value.base in self.structs:
                # A map of labelled structs: one block per label (gohcl's isMap case).
                return {"schema": value.base, "repeated": True, "labels": self.labels_of(value.base)}
            return {"map": _map_value(parsed.map_value), "repeated": False, "labels": []}
        if parsed.base not in self.structs:
            raise SchemaSourceError(f"block {tag.name!r} has type {tag.go_type} with no struct in api/")
        ref: dict[str, Any] = {"schema": parsed.base, "repeated": parsed.slice, "labels": self.labels_of(parsed.base)}
        if not parsed.slice and not parsed.pointer:
            ref["required"] = True
        return ref

    def struct_schema(self, name: str) -> dict[str, Any]:
        struct = self.structs[name]
        attributes: dict[str, str] = {}
        required: list[str] = []
        blocks: dict[str, dict[str, Any]] = {}
        for tag in struct.tags:
            if tag.kind not in _GOHCL_KINDS:
                raise SchemaSourceError(f"{struct.file} {name}.{tag.field}: tag kind {tag.kind!r} is not gohcl's")
            if tag.kind in {"attr", "optional"}:
                attributes[tag.name] = attribute_type(tag.go_type)
                if tag.kind == "attr" and not GoType.parse(tag.go_type).pointer:
                    required.append(tag.name)
            elif tag.kind == "block":
                blocks[tag.name] = self.block_ref(tag)
            elif tag.kind in {"remain", "body"}:
                raise SchemaSourceError(f"{struct.file} {name}.{tag.field}: ',{tag.kind}' is not handled")
        schema: dict[str, Any] = {"source": f"{struct.file} {name}", "attributes": attributes, "blocks": blocks}
        if required:
            schema["required"] = sorted(required)
        return schema

    def apply_decoder(self, name: str, schema: dict[str, Any]) -> None:
        """What the hand-written jobspec2 decoder of ``name`` changes in gohcl's reading of the struct."""
        func = self.decoders.get(name)
        if func is None:
            return
        body = self.functions[func]
        schema["decoder"] = f"jobspec2 {func}"
        spec = re.search(r"hcldec\.Decode\(body, (\w+), ctx\)", body)
        if spec:
            schema["attributes"] = self.hcldec_specs[spec.group(1)]
            schema["blocks"] = {}
            schema.pop("required", None)
            schema["source"] = f"jobspec2/hcl_conversions.go {spec.group(1)}"
        for attr_name in re.findall(r'decodeAsAttribute\(body, ctx, "(\w+)"\)', body):
            schema["blocks"][attr_name]["as_attribute"] = True
        for tag in self.extra_tags.get(func, []):
            schema["blocks"][tag.name] = self.block_ref(tag) | {"extra": f"jobspec2 {func}"}
        for block, labels in re.findall(r'\{Type: "(\w+)", LabelNames: \[\]string\{([^}]*)\}\}', body):
            ref = schema["blocks"][block]
            ref["labels"] = re.findall(r'"(\w+)"', labels)
            values = self.label_values.get((func, block))
            if values:
                ref["label_values"] = values

    def build(self, root: str) -> None:
        queue = [root]
        while queue:
            name = queue.pop()
            if name in self.schemas:
                continue
            schema = self.struct_schema(name)
            self.apply_decoder(name, schema)
            self.schemas[name] = schema
            queue.extend(ref["schema"] for ref in schema["blocks"].values() if "schema" in ref)


def hcldec_object_specs(text: str, constants: dict[str, str]) -> dict[str, dict[str, str]]:
    """``var x = hcldec.ObjectSpec{...}``: attribute name -> cty type, for each spec."""
    specs = {}
    for match in re.finditer(r"^var (\w+) = hcldec\.ObjectSpec\{\n(.*?)^\}", text, re.M | re.S):
        attrs = {}
        for name, kind in re.findall(r"&hcldec\.AttrSpec\{Name: ([\w.\"]+), Type: cty\.(\w+)", match.group(2)):
            key = name.strip('"') if name.startswith('"') else constants[name.removeprefix("api.")]
            attrs[key] = kind.lower()
        specs[match.group(1)] = dict(sorted(attrs.items()))
    if not specs:
        raise SchemaSourceError("no hcldec.ObjectSpec in jobspec2/hcl_conversions.go")
    return specs


def inline_block_tags(body: str) -> list[Tag]:
    """Block tags on anonymous structs inside a function (decodeTaskGroup's tgExtra)."""
    pattern = r'(\w+)\s+((?:\[\])?\*?api\.\w+)\s+`hcl:"(\w+),block"`'
    return [Tag(field=f, go_type=t, name=n, kind="block") for f, t, n in re.findall(pattern, body)]


def body_schema(text: str, var: str, constants: dict[str, str]) -> dict[str, Any]:
    """A literal ``var <var> = &hcl.BodySchema{...}``: attributes (and which are required) and blocks."""
    literal = _search(rf"^var {var} = &hcl\.BodySchema\{{\n(.*?)^\}}", text, f"hcl.BodySchema {var}", re.M | re.S)
    attrs_part, _, blocks_part = literal.partition("Blocks:")
    attributes = {}
    required = []
    for item in re.finditer(r"\{\s*Name:\s*\"(\w+)\",?(.*?)\}", attrs_part, re.S):
        attributes[item.group(1)] = "any"
        if re.search(r"Required:\s*true", item.group(2)):
            required.append(item.group(1))
    blocks = {}
    for item in re.finditer(r"\{\s*Type:\s*([\w\"]+),?\s*(?:LabelNames:\s*\[\]string\{([^}]*)\})?", blocks_part, re.S):
        type_name = item.group(1).strip('"') if item.group(1).startswith('"') else constants[item.group(1)]
        blocks[type_name] = re.findall(r'"(\w+)"', item.group(2) or "")
    return {"attributes": attributes, "required": sorted(required), "blocks": blocks}


def function_table(text: str) -> tuple[list[str], list[str]]:
    """All function names, and those behind guardFS (disabled unless the parse allows filesystem access)."""
    table = _search(r"funcs := map\[string\]function\.Function\{\n(.*?)^\t\}", text, "the function map", re.M | re.S)
    entries = re.findall(r'^\s*"([\w:]+)":\s*(\S+)', table, re.M)
    if len(entries) < 20:
        raise SchemaSourceError(f"jobspec2/functions.go: only {len(entries)} functions found")
    guarded = [name for name, value in entries if value.startswith("guardFS(")]
    return sorted(name for name, _ in entries), sorted(guarded)


# --- top level: file, variables, locals ---------------------------------------------------------------


def file_schemas(types_config: str, types_variables: str) -> dict[str, dict[str, Any]]:
    constants = string_constants(types_config)
    top = body_schema(types_config, "jobConfigSchema", constants)
    variable = body_schema(types_variables, "variableBlockSchema", {})
    validation = body_schema(types_variables, "variableValidationBlockSchema", {})
    decode_job = go_functions(types_config)["decodeJob"]
    single_job = "Only one block of type" in decode_job
    kinds = {"job": "Job", "variable": "variable", "variables": "free_attributes", "locals": "free_attributes"}
    if set(variable["blocks"]) != {"validation"}:
        raise SchemaSourceError(f"variableBlockSchema has blocks {sorted(variable['blocks'])}, expected validation")
    file_blocks = {}
    for name, labels in top["blocks"].items():
        if name not in kinds:
            raise SchemaSourceError(f"jobConfigSchema has a top-level block {name!r} this generator does not know")
        file_blocks[name] = {"schema": kinds[name], "repeated": not (name == "job" and single_job), "labels": labels}
    free = {"source": "jobspec2 JustAttributes", "attributes": {}, "blocks": {}, "any_attributes": True}
    return {
        "file": {"source": "jobspec2/types.config.go jobConfigSchema", "attributes": {}, "blocks": file_blocks},
        "variable": {
            "source": "jobspec2/types.variables.go variableBlockSchema",
            "attributes": variable["attributes"],
            # jobspec2 decodes every validation block of a variable.
            "blocks": {
                name: {"schema": name, "repeated": True, "labels": labels}
                for name, labels in variable["blocks"].items()
            },
            "type_expression_attributes": ["type"],
        },
        "validation": {
            "source": "jobspec2/types.variables.go variableValidationBlockSchema",
            "attributes": validation["attributes"],
            "blocks": {},
            "required": validation["required"],
        },
        "free_attributes": free,
    }


# --- docker driver config -----------------------------------------------------------------------------

_GO_TOKEN = re.compile(r'\s*(//[^\n]*|/\*.*?\*/|`[^`]*`|"(?:[^"\\]|\\.)*"|[\w.]+|[(){}\[\],:*+-])', re.S)


@dataclass(slots=True)
class GoExprParser:
    """A small reader of the Go expressions that build hclspec specs (calls, map literals, strings)."""

    tokens: list[str]
    pos: int = 0

    @classmethod
    def of(cls, text: str) -> GoExprParser:
        return cls([m.group(1) for m in _GO_TOKEN.finditer(text) if not m.group(1).startswith(("//", "/*"))])

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expect(self, token: str) -> None:
        got = self.take()
        if got != token:
            raise SchemaSourceError(f"docker config: expected {token!r}, got {got!r}")

    def expr(self) -> Any:
        word = self.take()
        if word == "map":
            while self.take() != "{":
                pass
            return self.composite()
        if word.startswith(('"', "`")):
            return ("str", word.strip('"`'))
        if self.tokens[self.pos] == "(":
            self.pos += 1
            args = []
            while self.tokens[self.pos] != ")":
                args.append(self.expr())
                if self.tokens[self.pos] == ",":
                    self.pos += 1
            self.pos += 1
            return ("call", word, args)
        return ("ref", word)

    def composite(self) -> Any:
        items = {}
        while self.tokens[self.pos] != "}":
            key = self.expr()
            self.expect(":")
            items[key[1]] = self.expr()
            if self.tokens[self.pos] == ",":
                self.pos += 1
        self.pos += 1
        return ("map", items)


def _go_assignments(text: str) -> dict[str, Any]:
    """``name = hclspec.New...(...)`` assignments in the file's var blocks, parsed."""
    found = {}
    for match in re.finditer(r"^\t(\w+) = (hclspec\.\w+\()", text, re.M):
        parser = GoExprParser.of(text[match.start(2) :])
        found[match.group(1)] = parser.expr()
    return found


@dataclass(slots=True)
class HclSpecReader:
    """Turns a parsed hclspec tree into schemas named ``docker.config``, ``docker.config/mount``..."""

    refs: dict[str, Any]
    schemas: dict[str, dict[str, Any]] = field(default_factory=dict)
    built: dict[str, str] = field(default_factory=dict)

    def resolve(self, node: Any) -> Any:
        while node[0] == "ref":
            node = self.refs[node[1]]
        return node

    def obj(self, name: str, node: Any) -> str:
        if node[0] == "ref":
            # A spec shared through a Go variable (mountBodySpec) becomes one schema.
            if node[1] in self.built:
                return self.built[node[1]]
            self.built[node[1]] = name
        node = self.resolve(node)
        if node[0] != "call" or node[1] != "hclspec.NewObject":
            raise SchemaSourceError(f"docker config: {name} is not an hclspec.NewObject")
        schema: dict[str, Any] = {"source": "drivers/docker/config.go", "attributes": {}, "blocks": {}}
        for entry in node[2][0][1].values():
            self.entry(name, self.resolve(entry), schema)
        schema["attributes"] = dict(sorted(schema["attributes"].items()))
        schema["blocks"] = dict(sorted(schema["blocks"].items()))
        self.schemas[name] = schema
        return name

    def entry(self, parent: str, node: Any, schema: dict[str, Any]) -> None:
        _, func, args = node
        kind = func.removeprefix("hclspec.")
        if kind == "NewDefault":
            self.entry(parent, self.resolve(args[0]), schema)
            return
        hcl_name = args[0][1]
        if kind == "NewAttr":
            schema["attributes"][hcl_name] = args[1][1]
            if args[2] == ("ref", "true"):
                schema.setdefault("required", []).append(hcl_name)
        elif kind in {"NewBlock", "NewBlockList", "NewBlockSet"}:
            target = self.obj(f"{parent}/{hcl_name}", args[-1])
            # jobspec2 turns blocks inside config into attributes, so both spellings reach the driver.
            schema["blocks"][hcl_name] = {
                "schema": target,
                "repeated": kind != "NewBlock",
                "labels": [],
                "as_attribute": True,
            }
        elif kind == "NewBlockAttrs":
            schema["blocks"][hcl_name] = {"map": args[1][1], "repeated": False, "labels": [], "as_attribute": True}
        else:
            raise SchemaSourceError(f"docker config: hclspec.{kind} for {hcl_name!r} is not handled")


def docker_schemas(text: str) -> dict[str, dict[str, Any]]:
    refs = _go_assignments(text)
    if "taskConfigSpec" not in refs:
        raise SchemaSourceError("drivers/docker/config.go has no taskConfigSpec")
    reader = HclSpecReader(refs)
    reader.obj("docker.config", refs["taskConfigSpec"])
    return reader.schemas


# --- putting it together ------------------------------------------------------------------------------


def _decoder_functions(conversions: str) -> dict[str, str]:
    pairs = re.findall(r"RegisterBlockDecoder\(reflect\.TypeOf\(api\.(\w+)\{\}\), (\w+)\)", conversions)
    if not pairs:
        raise SchemaSourceError("jobspec2/hcl_conversions.go registers no block decoders")
    return dict(pairs)


def _check_durations(conversions: str) -> None:
    _search(r"RegisterExpressionDecoder\(reflect\.TypeOf\((d)\), decodeDuration\)", conversions, "decodeDuration")


def _scaling_labels(functions: dict[str, str]) -> list[str]:
    body = functions.get("decodeTaskScalingPolicies", "")
    values = re.findall(r'case "(\w+)":', body)
    if not values:
        raise SchemaSourceError("decodeTaskScalingPolicies: no scaling policy names found")
    return values


def jobspec_schemas(source: NomadSource) -> dict[str, dict[str, Any]]:
    structs = parse_structs(source, source.go_files("api"))
    conversions = source.read("jobspec2/hcl_conversions.go")
    types_config = source.read("jobspec2/types.config.go")
    _check_durations(conversions)
    functions = go_functions(conversions) | go_functions(types_config)
    job_config = parse_structs(source, ["jobspec2/types.config.go"]).get("jobConfig")
    if job_config is None:
        raise SchemaSourceError("jobspec2/types.config.go has no jobConfig struct")
    builder = Builder(
        structs=structs,
        decoders=_decoder_functions(conversions) | {"Job": "decodeJob"},
        functions=functions,
        hcldec_specs=hcldec_object_specs(conversions, string_constants(source.read("api/constraint.go"))),
        extra_tags={
            "decodeJob": [t for t in job_config.tags if t.kind == "block"],
            "decodeTaskGroup": inline_block_tags(functions["decodeTaskGroup"]),
        },
        label_values={("decodeTask", "scaling"): _scaling_labels(functions)},
    )
    builder.build("Job")
    return builder.schemas


def build_schema(source: NomadSource, command: str) -> dict[str, Any]:
    version = nomad_version(source)
    go_mod = source.read("go.mod")
    hcl_version = _search(r"^\s*github\.com/hashicorp/hcl/v2 (\S+)", go_mod, "hcl/v2 in go.mod")
    schemas = jobspec_schemas(source)
    schemas |= file_schemas(
        types_config=source.read("jobspec2/types.config.go"), types_variables=source.read("jobspec2/types.variables.go")
    )
    schemas |= docker_schemas(source.read("drivers/docker/config.go"))
    functions, filesystem = function_table(source.read("jobspec2/functions.go"))
    return {
        "_generated_by": {
            "command": command,
            "generator": GENERATOR,
            "repository": REPOSITORY,
            "nomad_version": version,
            "nomad_commit": source.commit(),
            "hcl_v2_version": hcl_version,
            "format": FORMAT,
        },
        "nomad_version": version,
        "nomad_commit": source.commit(),
        "root": "file",
        "functions": functions,
        # The HTTP API parses with AllowFS false (command/agent/job_endpoint.go): these fail there.
        "filesystem_functions": filesystem,
        "dynamic": DYNAMIC_SCHEMA,
        "drivers": {"docker": "docker.config"},
        "schemas": dict(sorted(schemas.items())),
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.nomad_schema",
        description="Write Nomad's jobspec schema (blocks, attributes, functions) derived from a Nomad checkout.",
    )
    parser.add_argument("--nomad-src", required=True, type=Path, help="hashicorp/nomad git dir or work tree")
    parser.add_argument("--ref", help="tag or commit to read with git (e.g. v1.8.4); default: the work tree at HEAD")
    parser.add_argument("--out", required=True, type=Path, help="where to write the JSON schema")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    command = shlex.join(["python", "-m", "scripts.cluster.nomad_schema", *(sys.argv[1:] if argv is None else argv)])
    try:
        schema = build_schema(NomadSource(args.nomad_src, args.ref), command)
    except SchemaSourceError as exc:
        print(f"nomad_schema: {exc}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(schema), encoding="utf-8")
    count = len(schema["schemas"])
    print(f"wrote {args.out}: Nomad {schema['nomad_version']} ({schema['nomad_commit'][:12]}), {count} block schemas")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
