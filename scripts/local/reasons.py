"""Why a local program is down or unhealthy, in one line, from what supervisord and the logs say.

`make status` shows it: supervisord's spawn error (a command that cannot run), the restarter's
next attempt, and the last log line of the program that explains something -- a warning or
error it logged (``waiting for the admin token: …/admin-token``) or what it printed outside its
JSON log (``configuration error: …``, the last line of a traceback).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

TAIL_BYTES = 64 * 1024
EXPLAINING_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})


def tail_lines(path: Path, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The last lines of a (possibly large) log file; empty when there is none."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return []
    lines = data.decode(errors="replace").splitlines()
    return lines[1:] if size > max_bytes else lines


def _json(line: str) -> dict[str, Any] | None:
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def explaining_line(lines: Iterable[str]) -> str | None:
    """The newest line that says what went wrong: a warning or error, or text outside the JSON log."""
    for line in reversed(list(lines)):
        text = line.strip()
        if not text:
            continue
        entry = _json(text)
        if entry is None:
            return text
        if entry.get("level") in EXPLAINING_LEVELS:
            return str(entry.get("message", text))
    return None


def restarter_plan(lines: Iterable[str], program: str) -> str | None:
    """The restarter's last word about ``program`` (its next attempt, or why it could not start it)."""
    for line in reversed(list(lines)):
        entry = _json(line.strip())
        if entry is not None and entry.get("program") == program:
            return f"restarter: {entry.get('message', '')}"
    return None


def reason(info: Mapping[str, Any], program_log: Path, restarter_log: Path) -> str:
    """One line for a program that is not running healthily (its state is shown beside it)."""
    parts = []
    if info.get("spawnerr"):
        parts.append(str(info["spawnerr"]))
    elif info.get("description"):
        parts.append(str(info["description"]))
    if info.get("statename") in {"FATAL", "EXITED"}:
        plan = restarter_plan(tail_lines(restarter_log), str(info.get("name", "")))
        if plan:
            parts.append(plan)
    explained = explaining_line(tail_lines(program_log))
    if explained:
        parts.append(f"log: {explained}")
    return "; ".join(parts)
