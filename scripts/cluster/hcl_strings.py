"""HCL string values of a Nomad job as Nomad's jobspec parser leaves them for the client.

python-hcl2 hands template data, destinations and env values over with their HCL interpolations
unevaluated. This module evaluates the few kinds the generated jobs use, the way jobspec2 does:

- ``$${`` and ``%%{`` are escapes for a literal ``${`` / ``%{``;
- ``${var.NAME}`` is the variable's default, ``${local.NAME}`` the local (itself evaluated);
- inside a ``dynamic`` block, ``${<iterator>.key}``/``.value`` and ``replace(<iterator>.key, "a", "b")``;
- Nomad runtime variables (``${NOMAD_...}``, ``${attr....}``, ``${node....}``, ``${meta....}``) stay as
  written: Nomad interpolates them on the client, and never inside template data.

Anything else (another function, a ``%{`` directive) raises ``HclEvalError``: a check that cannot
evaluate a value must say so rather than guess.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

RUNTIME_VARIABLE = re.compile(r"NOMAD_[A-Za-z0-9_]+|(?:attr|node|meta|device)\.[A-Za-z0-9_.\-]+")
_REFERENCE = re.compile(r"(var|local)\.([A-Za-z_][A-Za-z0-9_-]*)")
_REPLACE = re.compile(r'replace\(\s*([A-Za-z_][\w.]*)\s*,\s*"([^"\\]*)"\s*,\s*"([^"\\]*)"\s*\)')
# regex_replace(var.x, "pattern", "$1"): go-cty's RegexReplace (Go's regexp ReplaceAllString). Only
# patterns without backslashes and replacements of group references, which Python's re reads alike.
_REGEX_REPLACE = re.compile(r'regex_replace\(\s*(var\.[A-Za-z_][\w-]*)\s*,\s*"([^"\\]*)"\s*,\s*"([^"\\]*)"\s*\)')
_GO_GROUP = re.compile(r"\$\{?(\d+)\}?")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)\n")


class HclEvalError(ValueError):
    """A value this module does not evaluate; the message says where and what."""


def closing_brace(text: str, start: int) -> int:
    """Index of the ``}`` that closes a ``${``/``%{`` sequence whose body starts at ``start``, or -1.

    Braces inside quoted strings (with their backslash escapes) do not count.
    """
    depth, quoted, i = 0, False, start
    while i < len(text):
        char = text[i]
        if quoted:
            if char == "\\":
                i += 1
            elif char == '"':
                quoted = False
        elif char == '"':
            quoted = True
        elif char == "{":
            depth += 1
        elif char == "}":
            if depth == 0:
                return i
            depth -= 1
        i += 1
    return -1


def decode_heredoc(raw: str) -> str | None:
    """The string a raw heredoc (``<<EOT`` / ``<<-EOT`` ... ``EOT``) stands for; None when not a heredoc.

    As HCL does: every line keeps its newline; ``<<-`` removes the smallest leading whitespace of
    the non-blank lines (whitespace-only lines are neither counted nor changed).
    """
    match = _HEREDOC.match(raw)
    if match is None:
        return None
    lines = raw[match.end() :].split("\n")
    if not lines or lines[-1].strip() != match.group(2):
        raise HclEvalError(f"heredoc {match.group(2)} is not terminated")
    body = lines[:-1]
    if match.group(1):
        indents = [len(line) - len(line.lstrip()) for line in body if line.strip()]
        cut = min(indents, default=0)
        body = [line[cut:] if line.strip() else line for line in body]
    return "".join(line + "\n" for line in body)


def hcl_scalar(value: Any, where: str = "value") -> str:
    """A value as HCL writes it into a string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    raise HclEvalError(f"{where}: a {type(value).__name__} cannot be interpolated into a string")


@dataclass(frozen=True, slots=True)
class HclScope:
    """Variable defaults and locals of one job file, plus a dynamic block's current element."""

    variables: Mapping[str, Any] = field(default_factory=dict)
    locals: Mapping[str, Any] = field(default_factory=dict)
    bindings: Mapping[str, str] = field(default_factory=dict)

    def bound(self, bindings: Mapping[str, str]) -> HclScope:
        return HclScope(self.variables, self.locals, {**self.bindings, **bindings})

    def evaluate(self, value: Any, where: str) -> str:
        """A string value (a heredoc included) with its interpolations evaluated; a scalar as text."""
        return self._value(value, where, ())

    def _value(self, value: Any, where: str, stack: tuple[str, ...]) -> str:
        if not isinstance(value, str):
            return hcl_scalar(value, where)
        text = decode_heredoc(value)
        return self._interpolate(value if text is None else text, where, stack)

    def _interpolate(self, text: str, where: str, stack: tuple[str, ...]) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith(("$${", "%%{"), i):
                out.append(text[i + 1 : i + 3])
                i += 3
            elif text.startswith("%{", i):
                raise HclEvalError(f"{where}: HCL template directive {text[i : i + 40]!r} is not evaluated here")
            elif text.startswith("${", i):
                end = closing_brace(text, i + 2)
                if end < 0:
                    raise HclEvalError(f"{where}: unterminated HCL interpolation: {text[i : i + 40]!r}")
                out.append(self._expression(text[i + 2 : end].strip(), where, stack))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _expression(self, expression: str, where: str, stack: tuple[str, ...]) -> str:
        if expression in self.bindings:
            return self.bindings[expression]
        reference = _REFERENCE.fullmatch(expression)
        if reference and reference.group(1) == "var":
            name = reference.group(2)
            if name not in self.variables:
                raise HclEvalError(f"{where}: ${{var.{name}}}: no variable {name!r} with a default in the job file")
            return hcl_scalar(self.variables[name], f"{where}: ${{var.{name}}}")
        if reference:
            name = reference.group(2)
            if name in stack:
                raise HclEvalError(f"{where}: locals refer to each other in a loop: {' -> '.join((*stack, name))}")
            if name not in self.locals:
                raise HclEvalError(f"{where}: ${{local.{name}}}: no local {name!r} in the job file")
            return self._value(self.locals[name], where, (*stack, name))
        replace = _REPLACE.fullmatch(expression)
        if replace and replace.group(1) in self.bindings:
            old, new = replace.group(2), replace.group(3)
            if len(old) > 1 and old.startswith("/") and old.endswith("/"):
                raise HclEvalError(f"{where}: regular-expression replace() is not evaluated here: {expression}")
            return self.bindings[replace.group(1)].replace(old, new)
        regex_replace = _REGEX_REPLACE.fullmatch(expression)
        if regex_replace:
            value = self._expression(regex_replace.group(1), where, stack)
            replacement = regex_replace.group(3)
            if "$" in _GO_GROUP.sub("", replacement) or "\\" in replacement:
                raise HclEvalError(f"{where}: regex_replace() replacement {replacement!r} is not evaluated here")
            return re.sub(regex_replace.group(2), _GO_GROUP.sub(r"\\g<\1>", replacement), value)
        if RUNTIME_VARIABLE.fullmatch(expression):
            return "${" + expression + "}"
        raise HclEvalError(
            f"{where}: HCL interpolation ${{{expression}}} is not a job variable, a local or a Nomad runtime variable"
        )
