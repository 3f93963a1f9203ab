"""The customer-value service image: does it build, start, answer and clean up?"""

from __future__ import annotations

import re

import pytest
import requests

from containerlab import config, engine

pytestmark = [pytest.mark.docker, pytest.mark.slow]

#: A made-up token: the service answers /predict only with it (header below).
TOKEN = "test-FAKE-token-not-a-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
VALID_CUSTOMER = {"tenure_months": 24, "orders_last_year": 8, "avg_order_value": 55.5, "support_tickets": 1}


@pytest.fixture(scope="module")
def service_url():
    """Build the service image under a test tag, run it on a free port, yield its base URL."""
    tag = "containerlab-test-service:pytest"
    built = engine.build(config.SERVICE_DIR, tag=tag)
    container = engine.run(built.image.id, ports={80: None}, environment={"API_TOKEN": TOKEN},
                           labels={"org.containerlab.test": "service"})
    try:
        url = f"http://127.0.0.1:{engine.host_port(container, 80)}"
        engine.wait_http(f"{url}/health", container=container, timeout=90)
        yield url
    finally:
        engine.remove_container(container)
        engine.remove_image(tag)


def test_health_reports_ok(service_url):
    """Does /health answer 200 with status ok once the container is up?"""
    response = requests.get(f"{service_url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_predict_returns_a_number_for_a_valid_customer(service_url):
    """Does /predict give a positive customer value for a plausible customer?"""
    response = requests.post(f"{service_url}/predict", json=VALID_CUSTOMER, headers=AUTH, timeout=10)
    assert response.status_code == 200
    value = response.json()["customer_value"]
    assert isinstance(value, float)
    assert value > 0


def test_predict_is_deterministic_and_grows_with_orders(service_url):
    """Do two identical requests agree, and does a customer who orders more score higher?"""
    first = requests.post(f"{service_url}/predict", json=VALID_CUSTOMER, headers=AUTH, timeout=10).json()
    again = requests.post(f"{service_url}/predict", json=VALID_CUSTOMER, headers=AUTH, timeout=10).json()
    bigger = requests.post(
        f"{service_url}/predict", json={**VALID_CUSTOMER, "orders_last_year": 20}, headers=AUTH, timeout=10
    ).json()
    assert first == again
    assert bigger["customer_value"] > first["customer_value"]


def test_invalid_customer_gets_422_with_a_clear_message(service_url):
    """Does a negative tenure and a missing field get a 422 naming both problems?"""
    bad = {"tenure_months": -3, "orders_last_year": 8, "avg_order_value": 55.5}
    response = requests.post(f"{service_url}/predict", json=bad, headers=AUTH, timeout=10)
    assert response.status_code == 422
    message = response.json()["message"]
    assert "tenure_months" in message and "greater than or equal to 0" in message
    assert "support_tickets" in message and "required" in message.lower()


def test_image_runs_the_taught_command():
    """Does the Dockerfile use the slim base, WORKDIR /app, and uvicorn on 0.0.0.0:80 in exec form?"""
    # Instructions as the builder reads them: a backslash at a line's end continues it on the next.
    text = re.sub(r"\\\n\s*", "", (config.SERVICE_DIR / "Dockerfile").read_text())
    assert f"ARG BASE_IMAGE={config.PYTHON_SLIM_IMAGE}" in text
    assert "WORKDIR /app" in text
    assert text.index("COPY requirements.txt") < text.index("pip install --no-cache-dir") < text.index("COPY src/")
    assert 'CMD ["uvicorn", "src.customer_value.api:app", "--host", "0.0.0.0", "--port", "80"]' in text
