"""Run metadata: ``python -m services.metadata`` (configuration from FIREDRILL_* variables)."""

from services.common.grpc_service import run_grpc_service
from services.metadata.app import build
from services.metadata.config import MetadataConfig


def main() -> None:
    run_grpc_service("metadata", MetadataConfig.from_env, build)


if __name__ == "__main__":
    main()
