"""Set or take away the start-up fault in one program's section of the rendered supervisord.conf.

Only that program's ``environment=`` line changes, so reloading the configuration restarts that
program alone; ``make up`` renders the file afresh, which also takes the fault away.
"""

from __future__ import annotations

from scripts.deploy_target.interface import PlatformError
from scripts.deploy_target.startup_fault import VALUE, VARIABLE

FAULT_ITEM = f'{VARIABLE}="{VALUE}"'


def with_startup_fault(config: str, program: str, broken: bool) -> str:
    """``config`` with the fault added to (or removed from) ``program``'s environment."""
    lines = config.splitlines(keepends=True)
    header = f"[program:{program}]"
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == header)
    except StopIteration:
        raise PlatformError(f"no program {program!r} in the supervisord configuration") from None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")), len(lines))
    env_index = next((i for i in range(start + 1, end) if lines[i].startswith("environment=")), None)
    if env_index is None:
        if broken:
            lines.insert(start + 1, f"environment={FAULT_ITEM}\n")
        return "".join(lines)
    items = lines[env_index].rstrip("\n").removeprefix("environment=")
    kept = [item for item in _items(items) if item != FAULT_ITEM]
    if broken:
        if any(item.startswith(f"{VARIABLE}=") for item in kept):
            raise PlatformError(f"{program} already sets {VARIABLE}: the start-up fault would not be the only change")
        kept.append(FAULT_ITEM)
    lines[env_index] = "environment=" + ",".join(kept) + "\n"
    return "".join(lines)


def _items(environment: str) -> list[str]:
    """KEY="value" items of a supervisord environment line (values quoted, commas inside quotes kept)."""
    items, current, quoted, escaped = [], "", False, False
    for char in environment:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(current)
            current = ""
            continue
        current += char
    if current:
        items.append(current)
    return items
