"""Run auth: ``python -m services.auth`` (configuration from FIREDRILL_* variables)."""

from services.auth.app import build
from services.auth.config import AuthConfig
from services.common.grpc_service import run_grpc_service


def main() -> None:
    run_grpc_service("auth", AuthConfig.from_env, build)


if __name__ == "__main__":
    main()
