"""The customer-value compose stack on the real engine: up, wiring, data across down/up, faults, clean-up."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import docker
import pytest
import requests

from containerlab import config, engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

COMPOSE = config.SERVICE_DIR / "compose.yaml"
BROKEN = config.ROOT / "tests" / "fixtures" / "fails_api_exits.compose.yaml"
#: Made-up secrets; API_PORT=0 lets the engine pick a free host port.
ENV = {"API_TOKEN": "cl-sec-test-FAKE-token", "POSTGRES_PASSWORD": "cl-sec-test-FAKE-pw", "API_PORT": "0"}
AUTH = {"Authorization": f"Bearer {ENV['API_TOKEN']}"}
CUSTOMER = {"tenure_months": 24, "orders_last_year": 8, "avg_order_value": 55.5, "support_tickets": 1}


def leftovers(project: str) -> dict[str, list[str]]:
    """Containers, networks and volumes that compose labelled with ``project``."""
    c = docker.from_env()
    label = {"label": f"com.docker.compose.project={project}"}
    return {
        "containers": [x.name for x in c.containers.list(all=True, filters=label)],
        "networks": [x.name for x in c.networks.list(filters=label)],
        "volumes": [x.name for x in c.volumes.list(filters=label)],
    }


@pytest.fixture
def project() -> Iterator[str]:
    """A fresh compose project name; the stack, its volumes and its built image go afterwards, pass or fail."""
    name = f"cl-sec-test-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        engine.compose_down(None, project=name, volumes=True)
        engine.remove_image(f"{name}-api")


def api_url(project: str) -> str:
    return f"http://127.0.0.1:{engine.compose_port(COMPOSE, project=project, service='api', port=80, env=ENV)}"


def predictions(url: str) -> list[dict]:
    answer = requests.get(f"{url}/predictions", headers=AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def test_stack_comes_up_healthy_refuses_without_token_and_keeps_data_across_down_and_up(project):
    """Does the stack come up healthy, refuse calls without the token, keep predictions over down/up, and leave nothing after down -v?"""
    services = engine.compose_up(COMPOSE, project=project, env=ENV, echo=lambda line: None)
    assert {(s.service, s.state, s.health) for s in services} == {
        ("api", "running", "healthy"), ("db", "running", "healthy")}
    url = api_url(project)

    refused = requests.post(f"{url}/predict", json=CUSTOMER, timeout=10)
    assert refused.status_code == 401 and "token" in refused.json()["message"]
    values = [requests.post(f"{url}/predict", json={**CUSTOMER, "orders_last_year": n}, headers=AUTH,
                            timeout=10).json()["customer_value"] for n in (1, 5, 9)]
    before = predictions(url)
    assert [row["customer_value"] for row in reversed(before)] == values

    engine.compose_down(COMPOSE, project=project, env=ENV)
    left = leftovers(project)
    assert left["containers"] == [] and left["volumes"] == [f"{project}_db-data"]

    engine.compose_up(COMPOSE, project=project, env=ENV, echo=lambda line: None)
    assert predictions(api_url(project)) == before

    engine.compose_down(COMPOSE, project=project, volumes=True, env=ENV)
    assert leftovers(project) == {"containers": [], "networks": [], "volumes": []}


def test_api_answers_503_while_the_database_is_stopped_and_recovers(project):
    """With db stopped, does the API answer 503 with a clear message (no traceback), and work again once db is back?"""
    engine.compose_up(COMPOSE, project=project, env=ENV, echo=lambda line: None)
    url = api_url(project)
    assert requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10).status_code == 200

    assert engine.compose(["stop", "db"], file=COMPOSE, project=project, env=ENV).returncode == 0
    down = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=20)
    assert down.status_code == 503
    assert "database" in down.json()["message"] and "Traceback" not in down.text

    assert engine.compose(["start", "db"], file=COMPOSE, project=project, env=ENV).returncode == 0
    deadline = time.monotonic() + 90
    answer = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=20)
    while answer.status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=20)
    assert answer.status_code == 200
    assert len(predictions(url)) == 2


def test_missing_secret_is_refused_before_anything_starts(project):
    """Without API_TOKEN, does compose refuse the file with a message naming the variable, creating nothing?"""
    env = {key: value for key, value in ENV.items() if key != "API_TOKEN"}
    with pytest.raises(engine.ComposeFailed) as caught:
        engine.compose_up(COMPOSE, project=project, env={**env, "API_TOKEN": ""}, echo=lambda line: None)
    assert "API_TOKEN" in str(caught.value)
    assert leftovers(project) == {"containers": [], "networks": [], "volumes": []}


def test_failing_stack_shows_the_failing_service_logs_and_is_torn_down(project):
    """When a service exits at start, does compose_up print its last log lines, raise, and leave no container?"""
    shown: list[str] = []
    with pytest.raises(engine.ComposeFailed) as caught:
        engine.compose_up(BROKEN, project=project, build=False, wait_timeout=60, echo=shown.append)
    assert caught.value.services == ["api"]
    assert "gives up on purpose" in caught.value.logs["api"]
    printed = "\n".join(shown)
    assert "last 20 log lines of service api" in printed and "gives up on purpose" in printed
    assert leftovers(project)["containers"] == []
