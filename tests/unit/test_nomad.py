"""Deploy tooling and the Nomad Platform against a Nomad HTTP API on loopback.

``FakeNomad`` (aiohttp, in a thread with its own loop) keeps jobs, versions, deployments and
allocations the way Nomad reports them; python-nomad is the real client. A deployment advances
one step per poll, so the deploy tool's following, promotion and failure reporting run for real.
"""

from __future__ import annotations

import asyncio
import copy
import io
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest
import yaml
from aiohttp import web

from scripts.cluster import deploy as deploy_mod
from scripts.cluster import status as status_mod
from scripts.cluster.client import ClusterError, make_client
from scripts.cluster.jobspec import JOBS_DIR, JobSpecError, encode_var_file, job_files, read_job
from scripts.deploy_target.interface import PlatformError
from scripts.deploy_target.nomad import NomadPlatform


@dataclass
class FakeNomad:
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    allocs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    parsed_variables: dict[str, str] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    # job id -> "ok" | "fail" | "canary" | "rolling"; how its next deployment behaves. "rolling" places
    # one instance at a time (max_parallel = 1), none while the deployment is paused.
    behaviour: dict[str, str] = field(default_factory=dict)
    steps_to_healthy: int = 2

    def app(self) -> web.Application:
        app = web.Application()

        @web.middleware
        async def record(request: web.Request, handler: Any) -> web.StreamResponse:
            self.calls.append(f"{request.method} {request.path}")
            return await handler(request)  # type: ignore[no-any-return]

        app.middlewares.append(record)
        r = app.router
        r.add_post("/v1/jobs/parse", self.parse)
        r.add_get("/v1/job/{id}", self.get_job)
        r.add_post("/v1/job/{id}", self.register)
        r.add_delete("/v1/job/{id}", self.deregister)
        r.add_get("/v1/job/{id}/deployment", self.latest_deployment)
        r.add_get("/v1/job/{id}/summary", self.summary)
        r.add_get("/v1/job/{id}/allocations", self.job_allocs)
        r.add_get("/v1/job/{id}/versions", self.get_versions)
        r.add_post("/v1/job/{id}/scale", self.scale)
        r.add_post("/v1/job/{id}/revert", self.revert)
        r.add_get("/v1/deployment/allocations/{id}", self.deployment_allocs)
        r.add_post("/v1/deployment/promote/{id}", self.promote)
        r.add_post("/v1/deployment/fail/{id}", self.fail)
        r.add_post("/v1/deployment/pause/{id}", self.pause)
        r.add_post("/v1/client/allocation/{id}/restart", self.alloc_restart)
        r.add_post("/v1/client/allocation/{id}/signal", self.alloc_signal)
        return app

    # --- jobs -------------------------------------------------------------------------------

    async def parse(self, request: web.Request) -> web.Response:
        body = await request.json()
        data = hcl2.loads(body["JobHCL"])
        [job_block] = data["job"]
        [(label, job_body)] = job_block.items()
        name = label.strip('"')
        self.parsed_variables[name] = body.get("Variables", "")
        groups = []
        for group in job_body.get("group", []):
            for glabel, gbody in group.items():
                tasks = [
                    {
                        "Name": tlabel.strip('"'),
                        "Env": {k: str(v).strip('"') for e in tbody.get("env", []) for k, v in e.items()},
                    }
                    for task in gbody.get("task", [])
                    for tlabel, tbody in task.items()
                ]
                groups.append({"Name": glabel.strip('"'), "Count": 1, "Update": {"Canary": 1}, "Tasks": tasks})
        return web.json_response({"ID": name, "Name": name, "Type": "service", "TaskGroups": groups})

    async def get_job(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404, text="job not found")
        return web.json_response(job)

    def _allocs_for(self, job: dict[str, Any], healthy: bool | None) -> list[dict[str, Any]]:
        out = []
        for tg in job["TaskGroups"]:
            for _ in range(int(tg["Count"])):
                out.append(
                    {
                        "ID": str(uuid.uuid4()),
                        "TaskGroup": tg["Name"],
                        "NodeName": "client-1",
                        "ClientStatus": "running",
                        "DesiredStatus": "run",
                        "JobVersion": job["Version"],
                        "DeploymentStatus": {"Healthy": healthy},
                        "TaskStates": {
                            tg["Name"]: {
                                "Events": [
                                    {"Type": "Started", "DisplayMessage": "Task started by client"},
                                    {"Type": "Restarting", "DisplayMessage": "health check /health failed"},
                                ]
                            }
                        },
                    }
                )
        return out

    def _store(self, job: dict[str, Any]) -> None:
        job_id = job["ID"]
        previous = self.jobs.get(job_id)
        job["Version"] = 0 if previous is None else previous["Version"] + 1
        job["Status"] = "running"
        job.setdefault("Stop", False)
        self.jobs[job_id] = job
        self.versions.setdefault(job_id, []).insert(0, copy.deepcopy(job))
        canary = self.behaviour.get(job_id) == "canary"
        self.deployments[job_id] = {
            "ID": str(uuid.uuid4()),
            "JobID": job_id,
            "JobVersion": job["Version"],
            "Status": "running",
            "StatusDescription": "Deployment is running",
            "steps": 0,
            "TaskGroups": {
                tg["Name"]: {
                    "DesiredTotal": tg["Count"],
                    "PlacedAllocs": 0,
                    "HealthyAllocs": 0,
                    "UnhealthyAllocs": 0,
                    "DesiredCanaries": 1 if canary else 0,
                    "PlacedCanaries": [],
                    "Promoted": False,
                }
                for tg in job["TaskGroups"]
            },
        }
        self.allocs[job_id] = self._allocs_for(job, None)
        if self.behaviour.get(job_id) == "rolling":
            # The plan that creates the deployment also places its first instance.
            for state in self.deployments[job_id]["TaskGroups"].values():
                state["PlacedAllocs"] = 1
            self.deployments[job_id]["_ages"] = [0]

    async def register(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._store(body["Job"])
        return web.json_response({"EvalID": str(uuid.uuid4()), "JobModifyIndex": 10})

    async def deregister(self, request: web.Request) -> web.Response:
        job = self.jobs.get(request.match_info["id"])
        if job is None:
            return web.Response(status=404, text="job not found")
        job["Stop"] = True
        job["Status"] = "dead"
        self.allocs[job["ID"]] = []
        return web.json_response({"EvalID": str(uuid.uuid4())})

    async def get_versions(self, request: web.Request) -> web.Response:
        return web.json_response({"Versions": self.versions.get(request.match_info["id"], [])})

    async def scale(self, request: web.Request) -> web.Response:
        job = self.jobs[request.match_info["id"]]
        body = await request.json()
        for tg in job["TaskGroups"]:
            if tg["Name"] == body["Target"]["Group"]:
                tg["Count"] = body["Count"]
        self._store(job)
        return web.json_response({"EvalID": str(uuid.uuid4())})

    async def revert(self, request: web.Request) -> web.Response:
        """Nomad's revert: the chosen version again, as a new version (check-and-set on the current one)."""
        job_id = request.match_info["id"]
        body = await request.json()
        if body["JobID"] != job_id:
            return web.Response(status=400, text="Job ID does not match")
        current = self.jobs[job_id]["Version"]
        if body.get("EnforcePriorVersion") is not None and body["EnforcePriorVersion"] != current:
            return web.Response(status=400, text=f"enforcing version {body['EnforcePriorVersion']} failed")
        if body["JobVersion"] == current:
            return web.Response(status=400, text="can't revert to current version")
        self._revert_to(job_id, int(body["JobVersion"]))
        return web.json_response({"EvalID": str(uuid.uuid4()), "JobModifyIndex": 11})

    async def summary(self, request: web.Request) -> web.Response:
        job = self.jobs[request.match_info["id"]]
        allocs = self.allocs.get(job["ID"], [])
        out = {
            tg["Name"]: {
                "Queued": 0,
                "Starting": 0,
                "Running": sum(1 for a in allocs if a["TaskGroup"] == tg["Name"] and a["ClientStatus"] == "running"),
                "Failed": 0,
                "Lost": 0,
            }
            for tg in job["TaskGroups"]
        }
        return web.json_response({"JobID": job["ID"], "Summary": out})

    async def job_allocs(self, request: web.Request) -> web.Response:
        return web.json_response(self.allocs.get(request.match_info["id"], []))

    # --- deployments ---------------------------------------------------------------------------

    async def latest_deployment(self, request: web.Request) -> web.Response:
        job_id = request.match_info["id"]
        dep = self.deployments.get(job_id)
        if dep is None:
            return web.json_response(None)
        self._advance(job_id, dep)
        return web.json_response({k: v for k, v in dep.items() if k not in ("steps", "_ages")})

    def _advance_rolling(self, dep: dict[str, Any]) -> None:
        """Nomad's reconciler with max_parallel = 1: the next instance is placed once the last one is
        healthy, never while the deployment is paused; placed instances turn healthy either way."""
        ages = [age + 1 for age in dep["_ages"]]
        dep["_ages"] = [age for age in ages if age < self.steps_to_healthy]
        for state in dep["TaskGroups"].values():
            state["HealthyAllocs"] += len(ages) - len(dep["_ages"])
            if dep["Status"] == "running" and not dep["_ages"] and state["PlacedAllocs"] < state["DesiredTotal"]:
                state["PlacedAllocs"] += 1
                dep["_ages"].append(0)
            if state["HealthyAllocs"] == state["DesiredTotal"]:
                dep["Status"] = "successful"
                dep["StatusDescription"] = "Deployment completed successfully"

    def _advance(self, job_id: str, dep: dict[str, Any]) -> None:
        if self.behaviour.get(job_id) == "rolling" and dep["Status"] in ("running", "paused"):
            self._advance_rolling(dep)
            return
        if dep["Status"] != "running":
            return
        dep["steps"] += 1
        mode = self.behaviour.get(job_id, "ok")
        for state in dep["TaskGroups"].values():
            state["PlacedAllocs"] = state["DesiredTotal"]
            if state["DesiredCanaries"]:
                state["PlacedCanaries"] = ["c1"]
        if dep["steps"] < self.steps_to_healthy:
            return
        if mode == "fail":
            for state in dep["TaskGroups"].values():
                state["UnhealthyAllocs"] = state["DesiredTotal"]
            dep["Status"] = "failed"
            dep["StatusDescription"] = "Failed due to unhealthy allocations - rolling back to job version 0"
            for alloc in self.allocs[job_id]:
                alloc["DeploymentStatus"] = {"Healthy": False}
            return
        for state in dep["TaskGroups"].values():
            state["HealthyAllocs"] = state["DesiredCanaries"] or state["DesiredTotal"]
        if mode == "canary" and not all(s["Promoted"] for s in dep["TaskGroups"].values()):
            return  # waits for promotion
        for state in dep["TaskGroups"].values():
            state["HealthyAllocs"] = state["DesiredTotal"]
        for alloc in self.allocs[job_id]:
            alloc["DeploymentStatus"] = {"Healthy": True}
        dep["Status"] = "successful"
        dep["StatusDescription"] = "Deployment completed successfully"

    async def deployment_allocs(self, request: web.Request) -> web.Response:
        dep_id = request.match_info["id"]
        for job_id, dep in self.deployments.items():
            if dep["ID"] == dep_id:
                return web.json_response(self.allocs[job_id])
        return web.Response(status=404, text="deployment not found")

    async def promote(self, request: web.Request) -> web.Response:
        for dep in self.deployments.values():
            if dep["ID"] == request.match_info["id"]:
                for state in dep["TaskGroups"].values():
                    state["Promoted"] = True
        return web.json_response({"EvalID": str(uuid.uuid4())})

    def _revert_to(self, job_id: str, version: int) -> None:
        """What auto_revert and the revert endpoint do: register an earlier version again (a new version)."""
        [old] = [v for v in self.versions[job_id] if v["Version"] == version]
        self._store(copy.deepcopy(old))

    async def fail(self, request: web.Request) -> web.Response:
        for job_id, dep in self.deployments.items():
            if dep["ID"] == request.match_info["id"]:
                dep["Status"] = "failed"
                dep["StatusDescription"] = "Deployment marked as failed"
                self._revert_to(job_id, dep["JobVersion"] - 1)  # the jobs carry auto_revert = true
                return web.json_response({"EvalID": str(uuid.uuid4())})
        return web.Response(status=404, text="deployment not found")

    async def pause(self, request: web.Request) -> web.Response:
        """``POST /v1/deployment/pause/<id>`` as command/agent/deployment_endpoint.go (v1.8.4) checks it."""
        body = await request.json()
        if not body.get("DeploymentID"):
            return web.Response(status=400, text="DeploymentID must be specified")
        if body["DeploymentID"] != request.match_info["id"]:
            return web.Response(status=400, text="Deployment ID does not match")
        for dep in self.deployments.values():
            if dep["ID"] == body["DeploymentID"]:
                if dep["Status"] not in ("running", "paused"):
                    return web.Response(status=500, text="can't pause terminal deployment")
                dep["Status"] = "paused" if body.get("Pause") else "running"
                dep["StatusDescription"] = "Deployment is paused" if body.get("Pause") else "Deployment is running"
                return web.json_response({"EvalID": "" if body.get("Pause") else str(uuid.uuid4())})
        return web.Response(status=404, text="deployment not found")

    async def alloc_restart(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def alloc_signal(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(f"signal {request.match_info['id']} {body['Signal']} {body.get('Task')}")
        return web.json_response({})


@pytest.fixture
def fake_nomad() -> Iterator[tuple[FakeNomad, str]]:
    """The fake API in a thread with its own event loop (the deploy tooling is synchronous)."""
    fake = FakeNomad()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def start() -> None:
        runner = web.AppRunner(fake.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()), daemon=True)
    thread.start()
    assert ready.wait(10), "fake Nomad did not start"
    try:
        yield fake, f"http://127.0.0.1:{holder['port']}"
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with generated monitoring files, as the monitoring generator leaves them."""
    (tmp_path / "prometheus/generated/production/rules").mkdir(parents=True)
    (tmp_path / "prometheus/generated/production/prometheus.yml").write_text("# file discovery: stays home\n")
    (tmp_path / "prometheus/generated/production/prometheus-consul.yml").write_text("global: {scrape_interval: 15s}\n")
    (tmp_path / "prometheus/generated/production/tests").mkdir()
    (tmp_path / "prometheus/generated/production/tests/x.test.yml").write_text("tests: []\n")
    (tmp_path / "prometheus/generated/production/rules/service.yml").write_text(
        "groups: [{name: x, rules: [{alert: Down, expr: 'up == 0',"
        ' annotations: {summary: "{{ $labels.service }}"}}]}]\n'
    )
    (tmp_path / "alertmanager/generated/production").mkdir(parents=True)
    (tmp_path / "alertmanager/generated/production/alertmanager.yml").write_text(
        "templates: [../../templates/*.tmpl]\nroute: {receiver: incidents}\n"
        "receivers: [{name: incidents, webhook_configs: [{url: 'http://incidents.service.consul:5001/alerts'}]}]\n"
    )
    (tmp_path / "alertmanager/templates").mkdir()
    (tmp_path / "alertmanager/templates/firedrill.tmpl").write_text('{{ define "x" }}y{{ end }}\n')
    (tmp_path / "grafana/dashboards").mkdir(parents=True)
    (tmp_path / "grafana/dashboards/overview.json").write_text('{"title": "Overview", "legend": "${x}"}')
    return tmp_path


def _client(addr: str) -> Any:
    return make_client({"NOMAD_ADDR": addr})


def _options(repo: Path, jobs: list[str] | None = None, **kw: Any) -> deploy_mod.Options:
    base: dict[str, Any] = {
        "jobs": jobs or [],
        "jobs_dir": JOBS_DIR,
        "profile": "production",
        "image": "registry.example/firedrill/services:1.2.3",
        "overrides": {},
        "promote": True,
        "follow": True,
        "timeout_s": 10.0,
        "poll_s": 0.01,
        "repo": repo,
    }
    base.update(kw)
    return deploy_mod.Options(**base)


# --- deploy ---------------------------------------------------------------------------------------------


def test_deploys_every_job_in_dependency_order(fake_nomad: tuple[FakeNomad, str], repo: Path) -> None:
    fake, addr = fake_nomad
    out = io.StringIO()
    results = deploy_mod.deploy(_client(addr), _options(repo), out)
    assert [name for name, _ in results] == ["tracing", "monitoring", "incidents", "response", "hello", "movie"]
    assert all(status == "successful" for _, status in results)
    text = out.getvalue()
    assert "==> movie: registered version 0" in text
    assert "movie/metadata: placed 1/1, healthy 1, unhealthy 0" in text
    # Only declared variables are sent: the image goes to service jobs, not to tracing.
    assert 'image = "registry.example/firedrill/services:1.2.3"' in fake.parsed_variables["hello"]
    assert "image =" not in fake.parsed_variables["tracing"]
    # Nothing deploy sends turns TLS verification off.
    assert set(fake.parsed_variables) == set(job_files(JOBS_DIR))
    for name, sent in fake.parsed_variables.items():
        assert "insecure_skip_verify" not in sent, f"{name}: deploy sent insecure_skip_verify"


def test_monitoring_gets_the_generated_files_verbatim(fake_nomad: tuple[FakeNomad, str], repo: Path) -> None:
    fake, addr = fake_nomad
    deploy_mod.deploy(_client(addr), _options(repo, ["monitoring"]), io.StringIO())
    sent = fake.parsed_variables["monitoring"]
    assert 'profile = "production"' in sent
    # The variables file round-trips to the exact file contents (HCL escapes undone).
    parsed = hcl2.loads(sent)
    rules = parsed["prometheus_files"]['"rules/service.yml"']
    assert "{{ $labels.service }}" in rules
    assert set(parsed["prometheus_files"]) == {'"prometheus-consul.yml"', '"rules/service.yml"'}
    am = parsed["alertmanager_files"]
    assert set(am) == {'"alertmanager.yml"', '"templates/firedrill.tmpl"'}
    assert '[[ with service \\"incidents\\" ]]' in am['"alertmanager.yml"']
    assert "https://[[ .Address ]]:[[ .Port ]][[ end ]]" in am['"alertmanager.yml"']
    # Valid while incidents is not registered yet: its Consul name on the catalog port.
    assert "[[ else ]]https://incidents.service.consul:5001[[ end ]]/alerts" in am['"alertmanager.yml"']
    assert "templates/*.tmpl" in am['"alertmanager.yml"']
    # The incidents webhook is on mutual TLS, verified by name, straight from jobspec: no override.
    alertmanager_yml = json.loads(am['"alertmanager.yml"'])  # the HCL string literal is JSON-escaped
    hook = yaml.safe_load(alertmanager_yml)["receivers"][0]["webhook_configs"][0]
    assert hook["http_config"] == {
        "tls_config": {
            "ca_file": "/secrets/tls/ca.pem",
            "cert_file": "/secrets/tls/cert.pem",
            "key_file": "/secrets/tls/key.pem",
            "server_name": "incidents.service.consul",
        }
    }
    assert "insecure_skip_verify" not in sent
    dashboards = parsed["grafana_dashboards"]
    assert '"overview.json"' in dashboards
    assert "$${x}" in dashboards['"overview.json"']  # ${ escaped for HCL, restored by Nomad


def test_missing_generated_files_are_named(fake_nomad: tuple[FakeNomad, str], tmp_path: Path) -> None:
    _fake, addr = fake_nomad
    with pytest.raises(Exception, match=r"prometheus/generated/production/prometheus-consul\.yml"):
        deploy_mod.deploy(_client(addr), _options(tmp_path, ["monitoring"]), io.StringIO())


def test_alertmanager_config_without_an_incidents_webhook_is_refused(
    fake_nomad: tuple[FakeNomad, str], repo: Path
) -> None:
    fake, addr = fake_nomad
    (repo / "alertmanager/generated/production/alertmanager.yml").write_text(
        "route: {receiver: incidents}\nreceivers: [{name: incidents, webhook_configs: []}]\n"
    )
    with pytest.raises(JobSpecError, match="no webhook to the incidents service"):
        deploy_mod.deploy(_client(addr), _options(repo, ["monitoring"]), io.StringIO())
    assert "monitoring" not in fake.jobs
    assert not any(call.startswith("POST /v1/job") for call in fake.calls)


def test_healthy_canaries_are_promoted(fake_nomad: tuple[FakeNomad, str], repo: Path) -> None:
    fake, addr = fake_nomad
    fake.behaviour["hello"] = "canary"
    out = io.StringIO()
    [(name, status)] = deploy_mod.deploy(_client(addr), _options(repo, ["hello"]), out)
    assert (name, status) == ("hello", "successful")
    assert "canaries of hello healthy: promoting" in out.getvalue()
    assert any(c.startswith("POST /v1/deployment/promote/") for c in fake.calls)


def test_no_promote_leaves_canaries_waiting(fake_nomad: tuple[FakeNomad, str], repo: Path) -> None:
    fake, addr = fake_nomad
    fake.behaviour["hello"] = "canary"
    [(_, status)] = deploy_mod.deploy(_client(addr), _options(repo, ["hello"], promote=False), io.StringIO())
    assert status == "awaiting-promotion"
    assert not any(c.startswith("POST /v1/deployment/promote/") for c in fake.calls)


def test_failed_deployment_names_the_unhealthy_allocations(
    fake_nomad: tuple[FakeNomad, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fake, addr = fake_nomad
    fake.behaviour["response"] = "fail"
    code = deploy_mod.main(["--job", "response", "--poll", "0.01"], client=_client(addr))
    assert code == 1
    err = capsys.readouterr().err
    assert "deployment of response v0 failed" in err
    assert "rolling back" in err
    assert "UNHEALTHY" not in err  # that word belongs to the status CLI
    assert "health check /health failed" in err
    assert "(healthy=False)" in err


def test_unknown_job_is_refused(fake_nomad: tuple[FakeNomad, str], repo: Path) -> None:
    _fake, addr = fake_nomad
    with pytest.raises(deploy_mod.DeployError, match="no job file for nope"):
        deploy_mod.deploy(_client(addr), _options(repo, ["nope"]), io.StringIO())


def test_deadline_is_reported(fake_nomad: tuple[FakeNomad, str], repo: Path) -> None:
    fake, addr = fake_nomad
    fake.steps_to_healthy = 10**6
    with pytest.raises(deploy_mod.DeployError, match="did not finish within"):
        deploy_mod.deploy(_client(addr), _options(repo, ["hello"], timeout_s=0.2), io.StringIO())


def test_write_var_files_for_the_cli(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "vars"
    options = _options(repo, ["monitoring", "hello"])
    deploy_mod.write_var_files(options, out_dir, io.StringIO())
    assert sorted(p.name for p in out_dir.iterdir()) == ["hello.vars.hcl", "monitoring.vars.hcl"]
    hello = hcl2.loads((out_dir / "hello.vars.hcl").read_text())
    assert hello["image"] == '"registry.example/firedrill/services:1.2.3"'


def test_var_overrides_are_typed() -> None:
    job = read_job(JOBS_DIR / "hello.nomad.hcl")
    from scripts.cluster.jobspec import variables_for

    got = variables_for(
        job,
        profile="drill",
        image=None,
        overrides={"hello_count": "3", "auto_promote": "true", "datacenters": '["eu-1"]', "undeclared": "x"},
    )
    assert got == {"profile": "drill", "hello_count": 3, "auto_promote": True, "datacenters": ["eu-1"]}
    assert encode_var_file(got).splitlines() == [
        "auto_promote = true",
        'datacenters = ["eu-1"]',
        "hello_count = 3",
        'profile = "drill"',
    ]


def test_missing_nomad_addr_is_explained() -> None:
    with pytest.raises(ClusterError, match="NOMAD_ADDR is not set"):
        make_client({})


def test_unreachable_nomad_is_a_clear_error(capsys: pytest.CaptureFixture[str], repo: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = deploy_mod.main(["--job", "hello"], client=_client(f"http://127.0.0.1:{port}"))
    assert code == 1
    assert "parsing hello.nomad.hcl failed" in capsys.readouterr().err


# --- status -------------------------------------------------------------------------------------------------


def test_status_cli(fake_nomad: tuple[FakeNomad, str], repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake, addr = fake_nomad
    deploy_mod.deploy(_client(addr), _options(repo, ["hello"]), io.StringIO())
    code = status_mod.main(["--job", "hello", "--job", "movie"], client=_client(addr))
    out = capsys.readouterr().out
    assert code == 0
    assert "hello: running  (version 0)" in out
    assert "group hello: running 1" in out
    assert ": successful - Deployment completed successfully" in out
    assert "movie: not registered" in out


# --- platform ------------------------------------------------------------------------------------------------


@pytest.fixture
def platform(fake_nomad: tuple[FakeNomad, str], repo: Path) -> tuple[FakeNomad, NomadPlatform]:
    fake, addr = fake_nomad
    client = _client(addr)
    deploy_mod.deploy(client, _options(repo, ["hello", "movie"]), io.StringIO())
    return fake, NomadPlatform(client, jobs=("hello", "movie"), environ={})


def test_stop_and_start_a_whole_job(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    fake, nomad_platform = platform
    nomad_platform.stop("hello")
    assert fake.jobs["hello"]["Stop"] is True
    assert [u.state for u in nomad_platform.status() if u.name == "hello"] == ["STOPPED"]
    nomad_platform.start("hello")
    assert fake.jobs["hello"]["Stop"] is False
    assert fake.jobs["hello"]["Version"] == 1


def test_stop_and_start_one_group_restores_its_count(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    fake, nomad_platform = platform
    nomad_platform.scale("metadata", 3)
    nomad_platform.stop("metadata")
    groups = {tg["Name"]: tg["Count"] for tg in fake.jobs["movie"]["TaskGroups"]}
    assert groups["metadata"] == 0
    assert groups["rating"] == 1  # other groups untouched
    nomad_platform.start("metadata")
    groups = {tg["Name"]: tg["Count"] for tg in fake.jobs["movie"]["TaskGroups"]}
    assert groups["metadata"] == 3


def test_scale_needs_a_group_for_multi_group_jobs(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    _fake, nomad_platform = platform
    nomad_platform.scale("hello", 4)
    with pytest.raises(PlatformError, match="scale one of them"):
        nomad_platform.scale("movie", 2)
    with pytest.raises(PlatformError, match="unknown unit"):
        nomad_platform.scale("nope", 1)


def test_restart_and_signal_allocations(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    fake, nomad_platform = platform
    nomad_platform.restart("rating")
    restarts = [c for c in fake.calls if c.endswith("/restart")]
    assert len(restarts) == 1
    rating_alloc = next(a for a in fake.allocs["movie"] if a["TaskGroup"] == "rating")
    assert restarts[0] == f"POST /v1/client/allocation/{rating_alloc['ID']}/restart"
    assert nomad_platform.signal("auth", "SIGHUP", task="auth") == 1
    assert any(c.startswith("signal ") and c.endswith("SIGHUP auth") for c in fake.calls)


def test_restart_without_running_allocations_is_an_error(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    _fake, nomad_platform = platform
    nomad_platform.stop("hello")
    with pytest.raises(PlatformError, match="no running allocation"):
        nomad_platform.restart("hello")


def test_status_lists_groups_as_units(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    _fake, nomad_platform = platform
    units = {u.name: u for u in nomad_platform.status()}
    assert set(units) == {"hello", "metadata", "rating", "movie", "auth"}
    assert units["metadata"].state == "RUNNING"
    assert units["metadata"].healthy is True
    assert "1/1 running" in units["metadata"].detail


def test_endpoints_need_consul(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    _fake, nomad_platform = platform
    with pytest.raises(PlatformError, match="CONSUL_HTTP_ADDR is not set"):
        nomad_platform.endpoints()


def test_var_file_encoding_escapes_hcl_templates() -> None:
    text = encode_var_file({"files": {"a.yml": 'x: "${y}" %{z}\n'}})
    assert text == 'files = {"a.yml" = "x: \\"$${y}\\" %%{z}\\n"}\n'


# --- drill faults: start-up (crash loop) and partition -------------------------------------------------


def _env(fake: FakeNomad, job: str, task: str) -> dict[str, str]:
    [found] = [t for tg in fake.jobs[job]["TaskGroups"] for t in tg["Tasks"] if t["Name"] == task]
    return dict(found["Env"])


def test_break_startup_registers_a_version_with_the_fault_and_restore_reverts_it(
    platform: tuple[FakeNomad, NomadPlatform],
) -> None:
    from scripts.deploy_target.startup_fault import VALUE, VARIABLE

    fake, nomad_platform = platform
    before = fake.jobs["movie"]["Version"]
    assert _env(fake, "movie", "rating")[VARIABLE] == "${var.log_level}"
    nomad_platform.break_startup("rating")
    assert fake.jobs["movie"]["Version"] == before + 1
    assert _env(fake, "movie", "rating")[VARIABLE] == VALUE
    assert _env(fake, "movie", "metadata")[VARIABLE] != VALUE  # only the broken service's task
    nomad_platform.break_startup("rating")  # idempotent: no second broken version
    assert fake.jobs["movie"]["Version"] == before + 1

    nomad_platform.restore_startup("rating")
    assert "POST /v1/job/movie/revert" in fake.calls
    assert fake.jobs["movie"]["Version"] == before + 2  # a revert is a new version, as Nomad makes it
    assert _env(fake, "movie", "rating")[VARIABLE] != VALUE
    nomad_platform.restore_startup("rating")  # nothing left to revert: no call
    assert fake.calls.count("POST /v1/job/movie/revert") == 1


def test_restore_after_nomads_own_auto_revert_changes_nothing(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    fake, nomad_platform = platform
    nomad_platform.break_startup("hello")
    broken = fake.jobs["hello"]["Version"]
    # auto_revert: the failed deployment went back to the previous version by itself.
    fake._store(copy.deepcopy(next(v for v in fake.versions["hello"] if v["Version"] == broken - 1)))
    nomad_platform.restore_startup("hello")
    assert "POST /v1/job/hello/revert" not in fake.calls


def test_the_start_up_fault_only_breaks_firedrill_services(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    _fake, nomad_platform = platform
    with pytest.raises(PlatformError, match="not a Firedrill service"):
        nomad_platform.break_startup("prometheus")


def test_the_partition_drill_is_refused_on_nomad_with_its_reason(platform: tuple[FakeNomad, NomadPlatform]) -> None:
    fake, nomad_platform = platform
    reason = nomad_platform.partition_refusal("hello", "response")
    assert reason is not None
    assert "run the partition drill on the local platform" in reason
    calls = len(fake.calls)
    with pytest.raises(PlatformError, match="cannot partition hello from response on Nomad"):
        nomad_platform.partition("hello", "response")
    nomad_platform.heal_partition("hello", "response")
    assert len(fake.calls) == calls  # nothing asked of the cluster


@pytest.mark.parametrize("unit", ["vault", "registry"])
def test_vault_and_the_registry_are_not_nomad_jobs_so_stopping_them_is_refused(
    platform: tuple[FakeNomad, NomadPlatform], unit: str
) -> None:
    fake, nomad_platform = platform
    before = list(fake.calls)
    assert "not as a Nomad job" in (nomad_platform.refuses(unit) or "")
    with pytest.raises(PlatformError, match=f"cannot stop {unit}: .*not as a Nomad job"):
        nomad_platform.stop(unit)
    nomad_platform.start(unit)  # the rollback: nothing was stopped, nothing to start
    assert fake.calls == before
    assert nomad_platform.refuses("hello") is None
