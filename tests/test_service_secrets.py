"""The customer-value service with its run-time inputs: token, data directory and database.

Real containers on the real engine, real HTTP, a real PostgreSQL. Each test
starts what it needs on random host ports and removes it, pass or fail.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from containerlab import config, engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: Made up for the tests; nobody's credential.
TOKEN = "cl-sec-test-FAKE-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CUSTOMER = {"tenure_months": 24, "orders_last_year": 8, "avg_order_value": 55.5, "support_tickets": 1}
DATA = Path(__file__).parent / "fixtures" / "data"
LABELS = {"org.containerlab.test-run": "service-secrets"}


@pytest.fixture(scope="module")
def image() -> Iterator[str]:
    """The service image, built from docker/customer-value under a test tag (removed afterwards)."""
    tag = f"cl-sec-test-service-{uuid.uuid4().hex[:8]}:test"
    try:
        engine.build(config.SERVICE_DIR, tag=tag)
        yield tag
    finally:
        engine.remove_image(tag)


@contextlib.contextmanager
def service(image: str, env: dict[str, str], **kwargs: object) -> Iterator[str]:
    """Run the service with ``env`` on a random host port until /health answers; yield its base URL."""
    container = engine.run(image, ports={80: None}, environment=env, labels=LABELS,
                           name=f"cl-sec-test-api-{uuid.uuid4().hex[:8]}", **kwargs)
    try:
        url = f"http://127.0.0.1:{engine.host_port(container, 80)}"
        engine.wait_http(f"{url}/health", container=container, timeout=90)
        yield url
    finally:
        engine.remove_container(container)


def test_predict_needs_the_right_token(image):
    """Is /predict refused with 401 and a clear message without, with a malformed and with a wrong token, and answered with it?"""
    with service(image, {"API_TOKEN": TOKEN}) as url:
        missing = requests.post(f"{url}/predict", json=CUSTOMER, timeout=10)
        assert missing.status_code == 401
        assert "Missing API token" in missing.json()["message"]
        assert missing.headers["WWW-Authenticate"] == "Bearer"

        malformed = requests.post(f"{url}/predict", json=CUSTOMER, headers={"Authorization": TOKEN}, timeout=10)
        assert malformed.status_code == 401 and "Bearer <token>" in malformed.json()["message"]

        wrong = requests.post(f"{url}/predict", json=CUSTOMER, headers={"Authorization": "Bearer guess"}, timeout=10)
        assert wrong.status_code == 401 and wrong.json()["message"] == "Wrong API token."

        right = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10)
        assert right.status_code == 200
        assert set(right.json()) == {"customer_value"} and isinstance(right.json()["customer_value"], float)

        assert requests.get(f"{url}/health", timeout=10).status_code == 200  # healthchecks need no token


def test_token_can_come_from_a_file_and_stays_out_of_inspect(image, tmp_path):
    """Does API_TOKEN_FILE work, with only the file's path (not the token) visible in docker inspect?"""
    token_file = tmp_path / "api_token"
    token_file.write_text(TOKEN + "\n")
    env = {"API_TOKEN_FILE": "/run/secrets/api_token"}
    volumes = {str(token_file): {"bind": "/run/secrets/api_token", "mode": "ro"}}
    with service(image, env, volumes=volumes) as url:
        assert requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10).status_code == 200
        container = docker.from_env().containers.list(filters={"label": "org.containerlab.test-run=service-secrets"})[0]
        assert not any(TOKEN in item for item in container.attrs["Config"]["Env"])


def test_service_without_a_token_configured_refuses_with_503(image):
    """Does a service started without API_TOKEN answer 503 saying how to set it (and stay healthy)?"""
    with service(image, {}) as url:
        answer = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10)
        assert answer.status_code == 503
        assert "API_TOKEN" in answer.json()["message"]


def test_batch_scores_a_mounted_csv_and_explains_bad_files(image):
    """Does /predict/batch score a CSV from the bind-mounted /data and answer 400/404/422 with reasons for bad requests?"""
    volumes = {str(DATA): {"bind": "/data", "mode": "ro"}}
    with service(image, {"API_TOKEN": TOKEN}, volumes=volumes) as url:
        listing = requests.get(f"{url}/data", headers=AUTH, timeout=10).json()
        assert {f["name"] for f in listing["files"]} == {p.name for p in DATA.glob("*.csv")}

        batch = requests.post(f"{url}/predict/batch", json={"file": "customers_valid.csv"}, headers=AUTH, timeout=10)
        assert batch.status_code == 200
        body = batch.json()
        assert body["rows"] == 3
        assert [p["customer_id"] for p in body["predictions"]] == ["A1", "A2", "A3"]
        single = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10).json()
        assert body["predictions"][0]["customer_value"] == single["customer_value"]

        def ask(name: str) -> requests.Response:
            return requests.post(f"{url}/predict/batch", json={"file": name}, headers=AUTH, timeout=10)

        invalid = ask("customers_invalid_values.csv")
        assert invalid.status_code == 422
        assert "tenure_months" in invalid.json()["message"] and "line(s) 3" in invalid.json()["message"]
        assert "orders_last_year" in invalid.json()["message"] and "line(s) 4" in invalid.json()["message"]
        columns = ask("customers_missing_columns.csv")
        assert columns.status_code == 422 and "avg_order_value" in columns.json()["message"]
        missing = ask("customers_2099.csv")
        assert missing.status_code == 404 and "customers_valid.csv" in missing.json()["message"]
        escape = ask("../etc/passwd")
        assert escape.status_code == 400


def test_batch_without_a_mounted_directory_says_how_to_mount_one(image):
    """Without a mount at /data, does /predict/batch answer 503 explaining the -v option?"""
    with service(image, {"API_TOKEN": TOKEN}) as url:
        answer = requests.post(f"{url}/predict/batch", json={"file": "customers.csv"}, headers=AUTH, timeout=10)
        assert answer.status_code == 503
        assert "No data directory at /data" in answer.json()["message"] and "-v" in answer.json()["message"]


def test_without_database_url_predictions_work_and_listing_says_why_not(image):
    """Without DATABASE_URL, does /predict still answer and /predictions answer 503 naming DATABASE_URL?"""
    with service(image, {"API_TOKEN": TOKEN}) as url:
        assert requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10).status_code == 200
        listing = requests.get(f"{url}/predictions", headers=AUTH, timeout=10)
        assert listing.status_code == 503
        assert "DATABASE_URL is not set" in listing.json()["message"]


def test_malformed_database_url_is_reported_not_crashed_on(image):
    """Does a DATABASE_URL that is not a PostgreSQL address give 503 with the expected form?"""
    with service(image, {"API_TOKEN": TOKEN, "DATABASE_URL": "postgresql://a b c"}) as url:
        answer = requests.get(f"{url}/predictions", headers=AUTH, timeout=10)
        assert answer.status_code == 503
        assert "postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in answer.json()["message"]


def _poll_status(url: str, want: int, *, timeout: float = 90) -> requests.Response:
    """POST /predict until it answers ``want`` (deadline in seconds); return that answer."""
    deadline = time.monotonic() + timeout
    answer = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10)
    while answer.status_code != want and time.monotonic() < deadline:
        time.sleep(0.5)
        answer = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=10)
    return answer


def test_database_absent_then_started_then_killed(image):
    """With the database not there yet, killed, and back: does the API answer 503 with a reason, then recover each time?"""
    run = uuid.uuid4().hex[:8]
    sdk = docker.from_env()
    network = sdk.networks.create(f"cl-sec-test-net-{run}", labels=LABELS)
    db_name = f"cl-sec-test-db-{run}"
    db = None
    env = {"API_TOKEN": TOKEN, "DATABASE_URL": f"postgresql://cv:cl-sec-FAKE-pw@{db_name}:5432/cv"}
    try:
        with service(image, env, network=network.name) as url:
            early = requests.post(f"{url}/predict", json=CUSTOMER, headers=AUTH, timeout=20)
            assert early.status_code == 503
            assert "cannot be reached" in early.json()["message"] and "Traceback" not in early.text
            assert "cl-sec-FAKE-pw" not in early.text, "the password must not leak into answers"

            db = engine.run(config.POSTGRES_IMAGE, name=db_name, network=network.name, labels=LABELS,
                            environment={"POSTGRES_USER": "cv", "POSTGRES_DB": "cv",
                                         "POSTGRES_PASSWORD": "cl-sec-FAKE-pw"})
            assert _poll_status(url, 200).status_code == 200
            stored = requests.get(f"{url}/predictions", headers=AUTH, timeout=10).json()["predictions"]
            assert len(stored) == 1 and stored[0]["customer"] == CUSTOMER  # the refused call was not stored

            sdk.containers.get(db.id).kill()
            down = _poll_status(url, 503, timeout=30)
            assert down.status_code == 503 and "database" in down.json()["message"]

            sdk.containers.get(db.id).start()
            assert _poll_status(url, 200).status_code == 200
            assert len(requests.get(f"{url}/predictions", headers=AUTH, timeout=10).json()["predictions"]) >= 2
    finally:
        if db is not None:
            engine.remove_container(db)
        network.remove()
