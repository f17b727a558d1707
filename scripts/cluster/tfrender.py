"""Render terraform/templates/bootstrap.sh.tftpl exactly as `terraform apply` would, with Terraform itself.

main.tf passes the template to `templatefile()` in the `user_data` of `aws_instance.server` and
`aws_instance.client`. This module reads that call from main.tf (python-hcl2), replaces what only
exists after an apply with plausible values, and asks `terraform console` (in an empty temporary
directory: no providers, no state) to evaluate the very same expression:

- `var.X`: terraform.tfvars.example, else the variable's default in variables.tf (or an override);
- `local.X`: the local's own expression from main.tf, substituted the same way;
- `count.index`: the node index; `path.module`: the terraform/ directory;
- resource attributes known only after apply (the KMS key id, the servers' Elastic IPs): values
  from COMPUTED; any other resource reference is an error naming it, so a new input to the
  template cannot slip past the render.

`config_files()` then lists the files the rendered script writes with heredocs (agent configs,
systemd units and drop-ins), which tests/infra/test_terraform_render.py parses and checks.

    python -m scripts.cluster.tfrender --role server --server-count 3
    python -m scripts.cluster.tfrender --role client --show files
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
TF = REPO / "terraform"
MAIN_TF = TF / "main.tf"
VARIABLES_TF = TF / "variables.tf"
TFVARS_EXAMPLE = TF / "terraform.tfvars.example"
ROLES = ("server", "client")

# Values that exist only after `terraform apply`, as HCL literals; {index} is the node index.
# Documentation addresses (RFC 5737) and an obviously made-up key id.
COMPUTED: dict[str, str] = {
    r"aws_kms_key\.cluster\.key_id": '"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"',
    r"aws_kms_key\.cluster\.arn": '"arn:aws:kms:eu-central-1:111122223333:key/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"',
    r"aws_eip\.server\[count\.index\]\.public_ip": '"198.51.100.{index}"',
}

_OPTIONS = SerializationOptions(
    with_comments=False, explicit_blocks=False, strip_string_quotes=True, preserve_heredocs=False
)
_REFERENCE = re.compile(r"\b(?:data\.)?[a-z][a-z0-9]*_[a-z0-9_]+\.[a-z_][a-z0-9_]*\b")


class RenderError(Exception):
    """main.tf or the template is not what the renderer understands, or terraform failed."""


@dataclass(frozen=True, slots=True)
class Node:
    role: str
    server_count: int = 3
    index: int = 0

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise RenderError(f"role must be one of {ROLES}, not {self.role!r}")


@dataclass(frozen=True, slots=True)
class Rendered:
    node: Node
    variables: dict[str, Any]  # what templatefile() received, as Terraform computed it
    script: str


# --- reading main.tf ----------------------------------------------------------------------------------


def _load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = hcl2.load(handle, serialization_options=_OPTIONS)
    return data


def _interpolation(value: str) -> str | None:
    """The expression of a string that is one whole `${...}` interpolation, else None."""
    if not (value.startswith("${") and value.endswith("}")):
        return None
    depth = 0
    for i, ch in enumerate(value):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0 and i != len(value) - 1:
                return None
    return value[2:-1]


def to_hcl(value: Any) -> str:
    """A python-hcl2 value (expressions kept as `${...}` strings) back as an HCL expression."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, str):
        inner = _interpolation(value)
        if inner is not None:
            return f"({inner})"
        # A template: keep ${...} parts as they are, escape the literal text between them.
        out, i = [], 0
        while i < len(value):
            if value.startswith("${", i):
                depth, j = 0, i
                while j < len(value):
                    depth += value[j] == "{"
                    depth -= value[j] == "}"
                    if depth == 0 and value[j] == "}":
                        break
                    j += 1
                out.append(value[i : j + 1])
                i = j + 1
            else:
                out.append(json.dumps(value[i])[1:-1])
                i += 1
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "[" + ", ".join(to_hcl(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {to_hcl(v)}" for k, v in value.items()) + "}"
    raise RenderError(f"cannot write {value!r} as HCL")


def literal(value: Any) -> str:
    """A plain Python value (from tfvars or a default) as an HCL literal: no interpolation."""
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    if isinstance(value, list):
        return "[" + ", ".join(literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {literal(v)}" for k, v in value.items()) + "}"
    return to_hcl(value)


@cache
def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for block in _load(MAIN_TF).get("locals", []):
        merged.update(block)
    return merged


@cache
def input_values() -> dict[str, Any]:
    """Variable values: terraform.tfvars.example over the defaults of variables.tf."""
    values: dict[str, Any] = {}
    for block in _load(VARIABLES_TF).get("variable", []):
        for name, body in block.items():
            if "default" in body:
                values[name] = body["default"]
    values.update(_load(TFVARS_EXAMPLE))
    return values


def user_data_call(role: str) -> str:
    """The `templatefile(...)` expression of aws_instance.<role>.user_data in main.tf."""
    for block in _load(MAIN_TF).get("resource", []):
        instance = block.get("aws_instance", {}).get(role)
        if instance is not None:
            expression = _interpolation(str(instance.get("user_data", "")))
            if expression is None or not expression.startswith("templatefile("):
                raise RenderError(f"aws_instance.{role}.user_data is not a templatefile(...) call")
            return expression
    raise RenderError(f"main.tf has no aws_instance.{role}")


def substitute(expression: str, node: Node, overrides: Mapping[str, Any], depth: int = 0) -> str:
    """``expression`` with every reference replaced by a value Terraform can evaluate with no state."""
    if depth > 10:
        raise RenderError("locals refer to each other too deeply")
    for pattern, value in COMPUTED.items():
        expression = re.sub(pattern, value.replace("{index}", str(10 + node.index)), expression)
    values = {**input_values(), **overrides}

    def local(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in _locals():
            raise RenderError(f"local.{name} is not defined in main.tf")
        return substitute(to_hcl(_locals()[name]), node, overrides, depth + 1)

    def variable(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise RenderError(f"var.{name} has no default and is not in terraform.tfvars.example")
        return f"({literal(values[name])})"

    expression = re.sub(r"\blocal\.([a-z_][a-z0-9_]*)", local, expression)
    expression = re.sub(r"\bvar\.([a-z_][a-z0-9_]*)", variable, expression)
    expression = re.sub(r"\bcount\.index\b", str(node.index), expression)
    expression = re.sub(r"\bpath\.module\b", json.dumps(str(TF)), expression)
    leftover = [m.group(0) for m in _REFERENCE.finditer(_without_strings(expression))]
    if leftover:
        raise RenderError(f"no plausible value for {', '.join(sorted(set(leftover)))}: add it to COMPUTED")
    return expression


def _without_strings(expression: str) -> str:
    return re.sub(r'"(?:[^"\\$]|\\.|\$(?!\{))*"', '""', expression)


def _arguments(call: str) -> list[str]:
    """Top-level arguments of `name(a, b, ...)` (HCL: brackets, quoted strings with ${} inside)."""
    open_at = call.index("(")
    parts: list[str] = []
    depth, start, i, quoted = 0, open_at + 1, open_at + 1, False
    while i < len(call):
        ch = call[i]
        if quoted:
            if ch == "\\":
                i += 2
                continue
            if ch == '"':
                quoted = False
            elif call.startswith("${", i):
                depth += 1
                quoted = False  # inside an interpolation; the closing } resumes the string
                i += 2
                continue
        elif ch == '"':
            quoted = True
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            if depth == 0:
                parts.append(call[start:i].strip())
                return parts
            depth -= 1
            if ch == "}" and _resumes_string(call, i):
                quoted = True
        elif ch == "," and depth == 0:
            parts.append(call[start:i].strip())
            start = i + 1
        i += 1
    raise RenderError(f"unbalanced call: {call[:60]}...")


def _resumes_string(text: str, close: int) -> bool:
    """Whether the `}` at ``close`` ends an interpolation (so a string continues after it)."""
    depth = 0
    for i in range(close, -1, -1):
        if text[i] == "}":
            depth += 1
        elif text[i] == "{":
            depth -= 1
            if depth == 0:
                return i > 0 and text[i - 1] == "$"
    return False


# --- asking Terraform ------------------------------------------------------------------------------------


def terraform_binary() -> str | None:
    return shutil.which("terraform")


def console(expression: str, timeout: float = 60) -> str:
    """Evaluate one expression with `terraform console` in an empty directory; its printed value."""
    binary = terraform_binary()
    if binary is None:
        raise RenderError("terraform is not installed")
    with tempfile.TemporaryDirectory(prefix="tfrender-") as work:
        cli_config = Path(work) / "terraformrc"
        cli_config.write_text("")
        env = {
            **os.environ,
            "CHECKPOINT_DISABLE": "1",  # no version check call home
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "TF_IN_AUTOMATION": "1",
        }
        result = subprocess.run(
            [binary, "console"],
            input=expression + "\n",
            capture_output=True,
            text=True,
            cwd=work,
            env=env,
            timeout=timeout,
            check=False,
        )
    if result.returncode != 0:
        raise RenderError(f"terraform console failed:\n{result.stderr.strip() or result.stdout.strip()}")
    return result.stdout.strip()


def render_many(nodes: Sequence[Node], overrides: Mapping[str, Any] | None = None) -> list[Rendered]:
    """Render the bootstrap script for each node in one `terraform console` run."""
    entries = []
    for node in nodes:
        values = {"server_count": node.server_count, **(overrides or {})}
        call = substitute(user_data_call(node.role), node, values)
        arguments = _arguments(call)
        if len(arguments) != 2:
            raise RenderError(f"templatefile() takes a path and a variables object, got {len(arguments)} arguments")
        entries.append(f"{{script = {call}, vars = {arguments[1]}}}")
    printed = console(f"base64encode(jsonencode([{', '.join(entries)}]))")
    match = re.fullmatch(r'"([A-Za-z0-9+/=]*)"', printed)
    if match is None:
        raise RenderError(f"unexpected terraform console output: {printed[:200]}")
    decoded = json.loads(base64.b64decode(match.group(1)))
    return [Rendered(node, item["vars"], item["script"]) for node, item in zip(nodes, decoded, strict=True)]


def render(node: Node, overrides: Mapping[str, Any] | None = None) -> Rendered:
    return render_many([node], overrides)[0]


# --- what the rendered script writes ---------------------------------------------------------------------

_HEREDOC = re.compile(r"""^\s*cat\s+(>>?)\s*("?)([^"\s<]+)\2\s*<<-?\s*(['"]?)(\w+)\4\s*$""")


@dataclass(frozen=True, slots=True)
class WrittenFile:
    path: str  # as written in the script (may contain shell variables)
    content: str  # heredoc body; unquoted delimiters leave $VARS for the shell to expand
    expands: bool  # whether the shell expands variables in it (unquoted delimiter)


def config_files(script: str) -> dict[str, WrittenFile]:
    """Files the script writes with `cat > path <<TAG` (appends with `>>` joined), by path."""
    files: dict[str, WrittenFile] = {}
    lines = script.splitlines()
    i = 0
    while i < len(lines):
        match = _HEREDOC.match(lines[i])
        i += 1
        if match is None:
            continue
        mode, _, path, quote, tag = match.groups()
        body: list[str] = []
        while i < len(lines) and lines[i] != tag:
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise RenderError(f"heredoc {tag} for {path} is never closed")
        i += 1
        content = "\n".join(body) + "\n"
        if mode == ">>" and path in files:
            content = files[path].content + content
        files[path] = WrittenFile(path, content, expands=not quote)
    return files


def shell_placeholders(text: str) -> str:
    """An unquoted heredoc body with `$VAR`/`${VAR}` replaced by `shell-VAR` (and `\\$` by `$`)."""
    text = re.sub(r"(?<!\\)\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", r"shell-\1", text)
    return text.replace("\\$", "$")


# --- command line -----------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.tfrender",
        description=(
            "Render terraform/templates/bootstrap.sh.tftpl through Terraform's own templatefile(), with the "
            "variables main.tf passes (values from terraform.tfvars.example and plausible computed ones)."
        ),
    )
    parser.add_argument("--role", choices=ROLES, required=True)
    parser.add_argument("--server-count", type=int, choices=(1, 3), default=input_values().get("server_count", 3))
    parser.add_argument("--index", type=int, default=0, help="node index (count.index); default 0")
    parser.add_argument(
        "--show",
        choices=("script", "vars", "files"),
        default="script",
        help="the rendered script (default), the variables templatefile() received, or the files it writes",
    )
    args = parser.parse_args(argv)
    try:
        rendered = render(Node(args.role, args.server_count, args.index))
    except RenderError as exc:
        print(f"tfrender: {exc}", file=sys.stderr)
        return 1
    if args.show == "vars":
        print(json.dumps(rendered.variables, indent=2, sort_keys=True))
    elif args.show == "files":
        for written in config_files(rendered.script).values():
            print(f"# --- {written.path}\n{written.content}")
    else:
        sys.stdout.write(rendered.script)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
