"""Seed the movie application with a handful of movies and ratings through its real gRPC APIs.

Idempotent: metadata is put by id (replaced, not duplicated) and each rating is keyed by
(user, movie), so running it twice leaves the same data. Services are found through discovery and
called over mTLS with the operator certificate when the state directory has one (the local
platform), in plaintext otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import grpc.aio

from scripts.movie.client import connect, default_password_file, get_token, read_password
from scripts.vault.local import operator_identity
from services.common.config import TlsFiles, state_dir
from services.common.grpc_auth import bearer_metadata
from services.genproto import movie_pb2, movie_pb2_grpc

MOVIES = (
    ("tt0133093", "The Matrix", "A hacker learns what the world really is.", "Lana and Lilly Wachowski"),
    ("tt0062622", "2001: A Space Odyssey", "A voyage to Jupiter with a very calm computer.", "Stanley Kubrick"),
    ("tt0245429", "Spirited Away", "A girl works in a bathhouse for spirits to free her parents.", "Hayao Miyazaki"),
    ("tt0114709", "Toy Story", "Toys come alive when nobody is looking.", "John Lasseter"),
    ("tt0050083", "12 Angry Men", "One juror doubts, and the room changes its mind.", "Sidney Lumet"),
)
# (rater, movie id, rating): ratings are stored per rater, so reruns replace, never add.
RATINGS = (
    ("seed-alice", "tt0133093", 5),
    ("seed-bob", "tt0133093", 4),
    ("seed-alice", "tt0062622", 4),
    ("seed-carol", "tt0062622", 5),
    ("seed-bob", "tt0245429", 5),
    ("seed-carol", "tt0114709", 4),
)


async def seed(token: str, *, identity: TlsFiles | None, timeout_s: float) -> tuple[int, int]:
    metadata = bearer_metadata(token)
    metadata_stub: Any = movie_pb2_grpc.MetadataServiceStub
    rating_stub: Any = movie_pb2_grpc.RatingServiceStub
    async with await connect("metadata", identity) as channel:
        stub = metadata_stub(channel)
        for movie_id, title, description, director in MOVIES:
            record = movie_pb2.Metadata(id=movie_id, title=title, description=description, director=director)
            await stub.PutMetadata(movie_pb2.PutMetadataRequest(metadata=record), metadata=metadata, timeout=timeout_s)
    async with await connect("rating", identity) as channel:
        stub = rating_stub(channel)
        for user, movie_id, value in RATINGS:
            request = movie_pb2.PutRatingRequest(
                user_id=user, record_id=movie_id, record_type=movie_pb2.RECORD_TYPE_MOVIE, rating_value=value
            )
            await stub.PutRating(request, metadata=metadata, timeout=timeout_s)
    return len(MOVIES), len(RATINGS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.movie.seed", description=__doc__.splitlines()[0])
    parser.add_argument("--user", default="demo", help="user to get a token for (default: demo)")
    parser.add_argument(
        "--password-file",
        type=Path,
        default=None,
        help="file holding the password (default: $FIREDRILL_STATE_DIR/secrets/auth/demo-password for demo)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per call (default 10)")
    args = parser.parse_args(argv)
    password_file = args.password_file
    state = state_dir()
    if password_file is None and args.user == "demo":
        password_file = default_password_file(state)
    identity = operator_identity(state)

    async def run() -> tuple[int, int]:
        password = read_password(password_file, args.user)
        token = await get_token(args.user, password, identity=identity, timeout_s=args.timeout)
        return await seed(token, identity=identity, timeout_s=args.timeout)

    try:
        movies, ratings = asyncio.run(run())
    except grpc.aio.AioRpcError as exc:
        print(f"seed failed: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"seed failed: {exc}", file=sys.stderr)
        return 1
    print(f"seeded {movies} movies and {ratings} ratings")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
