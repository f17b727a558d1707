"""Fetch movie details from the gateway as the given user (pretty JSON on stdout).

The token comes from auth (user + password file, or a prompt); the gateway is found through
discovery. Both are called over mTLS with the operator certificate when the state directory has
one (the local platform), in plaintext otherwise. Exit status: 0 found, 1 error, 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import grpc.aio

from scripts.movie.client import connect, default_password_file, get_token, read_password
from scripts.vault.local import operator_identity
from services.common.config import TlsFiles, state_dir
from services.common.grpc_auth import bearer_metadata
from services.genproto import movie_pb2, movie_pb2_grpc


async def movie_details(movie_id: str, token: str, timeout_s: float, identity: TlsFiles | None) -> dict[str, Any]:
    stub_class: Any = movie_pb2_grpc.MovieServiceStub
    async with await connect("movie", identity) as channel:
        response = await stub_class(channel).GetMovieDetails(
            movie_pb2.GetMovieDetailsRequest(movie_id=movie_id), metadata=bearer_metadata(token), timeout=timeout_s
        )
    d = response.movie_details
    m = d.metadata
    return {
        "id": m.id,
        "title": m.title,
        "description": m.description,
        "director": m.director,
        "rating": d.rating if d.HasField("rating") else None,
        "rating_count": d.rating_count,
        "rating_available": d.rating_available,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.movie.cli", description=__doc__.splitlines()[0])
    parser.add_argument("movie_id", help="e.g. tt0133093 (see scripts.movie.seed)")
    parser.add_argument("--user", default="demo", help="user name (default: demo)")
    parser.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help="file holding the password; default for demo: $FIREDRILL_STATE_DIR/secrets/auth/demo-password; "
        "other users are prompted",
    )
    parser.add_argument("--timeout", type=float, default=5.0, help="deadline in seconds (default 5)")
    args = parser.parse_args(argv)
    password_file = args.password_file
    state = state_dir()
    if password_file is None and args.user == "demo":
        candidate = default_password_file(state)
        password_file = candidate if candidate.is_file() else None
    identity = operator_identity(state)

    async def run() -> dict[str, Any]:
        password = read_password(password_file, args.user)
        token = await get_token(args.user, password, identity=identity, timeout_s=args.timeout)
        return await movie_details(args.movie_id, token, args.timeout, identity)

    try:
        details = asyncio.run(run())
    except grpc.aio.AioRpcError as exc:
        print(f"error: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(details, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
