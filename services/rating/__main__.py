"""Run rating: ``python -m services.rating`` (configuration from FIREDRILL_* variables)."""

from services.common.grpc_service import run_grpc_service
from services.rating.app import build
from services.rating.config import RatingConfig


def main() -> None:
    run_grpc_service("rating", RatingConfig.from_env, build)


if __name__ == "__main__":
    main()
