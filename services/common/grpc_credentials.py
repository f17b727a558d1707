"""gRPC credentials from a service's ``TlsMaterial``: servers follow rotations, channels pin names."""

from __future__ import annotations

import grpc

from services.common.tls import Snapshot, TlsMaterial


def _server_configuration(snapshot: Snapshot) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(snapshot.key_pem, snapshot.cert_pem)], root_certificates=snapshot.ca_pem
    )


def server_credentials(material: TlsMaterial) -> grpc.ServerCredentials:
    """Server credentials that require client certificates and follow the material's reloads."""
    served = material.generation

    def fetch() -> grpc.ServerCertificateConfiguration | None:
        # gRPC asks before each handshake; None keeps the configuration it already has.
        nonlocal served
        if material.generation == served:
            return None
        served = material.generation
        return _server_configuration(material.snapshot)

    return grpc.dynamic_ssl_server_credentials(
        _server_configuration(material.snapshot), fetch, require_client_authentication=True
    )


def channel_credentials(material: TlsMaterial) -> grpc.ChannelCredentials:
    """Channel credentials from the current files (rebuild the channel in an ``on_reload`` callback)."""
    snapshot = material.snapshot
    return grpc.ssl_channel_credentials(
        root_certificates=snapshot.ca_pem, private_key=snapshot.key_pem, certificate_chain=snapshot.cert_pem
    )


def channel_options(server_name: str) -> list[tuple[str, str]]:
    """Pin the name the server's certificate must carry, whatever address is dialled (every
    certificate has the IP SAN 127.0.0.1, so the address proves nothing)."""
    return [("grpc.ssl_target_name_override", server_name)]
