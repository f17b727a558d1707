"""A real Alertmanager on loopback with Firedrill's generated configuration, and amtool against it.

Used by the routing/inhibition tests (tests/infra) and by the tests that deliver to a real
incident receiver (tests/integration). The webhook URL is the caller's: a closed port when
delivery does not matter, a receiver process when it does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from scripts.monitoring.alertmanager_config import render_alertmanager_config
from scripts.monitoring.files import TEMPLATES_DIR
from scripts.monitoring.yamlio import dump
from scripts.ports import free_port
from scripts.processes import Spawned, http_ok, spawn
from services.common.profiles import DRILL
from services.common.waiting import wait_until
from tests.conftest import require_binary


class Alertmanager:
    def __init__(self, work_dir: Path, webhook_url: str) -> None:
        self.work_dir = work_dir
        self.webhook_url = webhook_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = work_dir / "alertmanager.log"
        self._process: Spawned | None = None

    def start(self) -> None:
        binary = shutil.which("prometheus-alertmanager") or require_binary("alertmanager")
        shutil.copytree(TEMPLATES_DIR, self.work_dir / "templates", dirs_exist_ok=True)
        config = render_alertmanager_config(DRILL, self.webhook_url, templates_dir=str(self.work_dir / "templates"))
        (self.work_dir / "alertmanager.yml").write_text(dump(config))
        self._process = spawn(
            "alertmanager",
            [
                binary,
                f"--config.file={self.work_dir / 'alertmanager.yml'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.path={self.work_dir / 'data'}",
                "--cluster.listen-address=",
            ],
            self._log_path,
        )
        wait_until(self._ready, timeout_s=20, what="alertmanager ready")

    def _ready(self) -> bool:
        if self._process is None or not self._process.running:
            raise AssertionError(f"alertmanager exited:\n{self.log()}")
        return http_ok(self.url + "/-/ready")

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.stop(timeout_s=10)
        self._process = None

    def log(self) -> str:
        return self._log_path.read_text() if self._log_path.exists() else ""

    def api(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 (loopback)
            self.url + path, data=data, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310 (loopback)
            raw = answer.read()
        return json.loads(raw) if raw else None

    def amtool(self, *args: str) -> str:
        command = [require_binary("amtool"), f"--alertmanager.url={self.url}", *args]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=30)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def webhook_failures(self) -> float:
        """Notifications to the webhook Alertmanager gave up on (4xx, or retries out of time)."""
        with urllib.request.urlopen(self.url + "/metrics", timeout=5) as answer:  # noqa: S310 (loopback)
            text = answer.read().decode()
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "alertmanager_notifications_failed_total"
            and sample.labels.get("integration") == "webhook"
        )
