"""python -m scripts.cluster.jobgen {render,check}"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scripts.cluster.jobspec import JOBS_DIR

from . import infra_jobs, service_jobs


def generated() -> dict[str, str]:
    """Job name → file text, for every job in jobs/."""
    return {**infra_jobs.render_all(), **service_jobs.render_all()}


def stale(jobs_dir: Path = JOBS_DIR) -> list[str]:
    """Jobs whose committed file differs from what the generator writes, plus stray job files."""
    wanted = generated()
    out = [name for name, text in wanted.items() if _read(jobs_dir / f"{name}.nomad.hcl") != text]
    out += [p.name for p in jobs_dir.glob("*.nomad.hcl") if p.name.removesuffix(".nomad.hcl") not in wanted]
    return sorted(out)


def _read(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.cluster.jobgen",
        description="Generate jobs/*.nomad.hcl from the service catalog, the deployment table and the "
        "production profile's monitoring files (run `python -m scripts.monitoring render` first).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("render", help="rewrite jobs/*.nomad.hcl")
    commands.add_parser("check", help="exit 1 when a committed job file is stale")
    args = parser.parse_args(argv)
    if args.command == "render":
        for name, text in generated().items():
            (JOBS_DIR / f"{name}.nomad.hcl").write_text(text, encoding="utf-8")
            print(f"wrote jobs/{name}.nomad.hcl")
        return 0
    outdated = stale()
    if outdated:
        print(f"stale: {', '.join(outdated)} (run python -m scripts.cluster.jobgen render)", file=sys.stderr)
        return 1
    print("jobs/ is up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
