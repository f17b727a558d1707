from __future__ import annotations

from scripts import gen_proto


def test_generated_code_is_up_to_date() -> None:
    stale = gen_proto.stale_files()
    assert stale == [], f"services/genproto is stale ({stale}); run `make proto`"


def test_generated_code_imports_as_a_package() -> None:
    from services.genproto import auth_pb2, movie_pb2, movie_pb2_grpc

    assert movie_pb2.MovieDetails().HasField("rating") is False  # "no rating yet" is representable
    assert hasattr(movie_pb2_grpc, "MovieServiceStub")
    assert auth_pb2.DESCRIPTOR.services_by_name["AuthService"]
