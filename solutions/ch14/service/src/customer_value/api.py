"""HTTP API of the customer-value service (FastAPI).

Endpoints (all but /health need the header ``Authorization: Bearer <API token>``):
    GET  /health          -> {"status": "ok"} once the model is trained (open: healthchecks call it).
    POST /predict         -> {"customer_value": float} for one customer; stored when a database is set.
    GET  /predictions     -> the most recent stored predictions (needs DATABASE_URL).
    GET  /data            -> the CSV files in the mounted data directory (DATA_DIR, default /data).
    POST /predict/batch   -> predictions for every customer of one CSV file in the data directory.

Configuration, read from the environment when the service starts:
    API_TOKEN or API_TOKEN_FILE  the token clients must send (the file form keeps it out of
                                 ``docker inspect``); without either, protected endpoints answer 503.
    DATABASE_URL                 postgresql://USER:PASSWORD@HOST:PORT/DBNAME; optional.
    DATA_DIR                     where the data directory is mounted; default /data.

Run it with ``uvicorn src.customer_value.api:app --host 0.0.0.0 --port 80``.
"""

from __future__ import annotations

import hmac
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from . import batch
from .model import FEATURES, train
from .store import PredictionStore, StoreError


def load_token() -> tuple[str | None, str | None]:
    """Read the API token from API_TOKEN, or from the file API_TOKEN_FILE names.

    Returns:
        ``(token, None)`` when a token is configured, ``(None, problem)`` otherwise,
        where ``problem`` tells the operator what to set.
    """
    value = os.environ.get("API_TOKEN", "")
    file_name = os.environ.get("API_TOKEN_FILE", "")
    if value and file_name:
        return None, "Both API_TOKEN and API_TOKEN_FILE are set; set only one of them."
    if file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            return None, f"API_TOKEN_FILE names {file_name}, which cannot be read ({exc.strerror})."
        if not value:
            return None, f"API_TOKEN_FILE names {file_name}, which is empty."
    if not value.strip():
        return None, ("The service has no API token configured. Start it with "
                      "`-e API_TOKEN=...` or mount a file and set API_TOKEN_FILE.")
    return value.strip(), None


class ApiProblem(Exception):
    """An answer other than 2xx, with a message for the caller."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


app = FastAPI(title="customer-value", version="1.1")
model = train()
TOKEN, TOKEN_PROBLEM = load_token()
STORE = PredictionStore.from_url(os.environ.get("DATABASE_URL"))
print(f"customer-value: API token {'configured' if TOKEN else 'MISSING: ' + str(TOKEN_PROBLEM)}; "
      f"database {STORE.where() if STORE.configured else 'not used: ' + str(STORE.problem)}",
      file=sys.stderr, flush=True)


class Customer(BaseModel):
    """One customer to score; the bounds reject values the model never saw."""

    tenure_months: int = Field(ge=0, le=600, description="months since the first order")
    orders_last_year: int = Field(ge=0, le=1000, description="orders in the last 12 months")
    avg_order_value: float = Field(ge=0, le=100_000, description="average basket, currency units")
    support_tickets: int = Field(ge=0, le=1000, description="support tickets in the last 12 months")


class Prediction(BaseModel):
    """The model's answer: expected value of the customer over the next year."""

    customer_value: float


class BatchRequest(BaseModel):
    """Which file of the data directory to score."""

    file: str = Field(description="a CSV file name inside the data directory, e.g. customers.csv")


def require_token(authorization: str | None = Header(default=None)) -> None:
    """Let the request through only with ``Authorization: Bearer <the configured token>``."""
    if TOKEN is None:
        raise ApiProblem(503, str(TOKEN_PROBLEM))
    challenge = {"WWW-Authenticate": "Bearer"}
    if not authorization:
        raise ApiProblem(401, "Missing API token: send the header 'Authorization: Bearer <token>'.", challenge)
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise ApiProblem(401, "Malformed Authorization header: expected 'Bearer <token>'.", challenge)
    if not hmac.compare_digest(given.strip().encode(), TOKEN.encode()):
        raise ApiProblem(401, "Wrong API token.", challenge)


@app.exception_handler(ApiProblem)
async def explain_problem(request: Request, exc: ApiProblem) -> JSONResponse:
    """Answer with the problem's status and its message."""
    return JSONResponse(status_code=exc.status, content={"message": exc.message}, headers=exc.headers)


@app.exception_handler(StoreError)
async def explain_store_problem(request: Request, exc: StoreError) -> JSONResponse:
    """The database is not set or does not answer: 503 with the reason, never a traceback."""
    return JSONResponse(status_code=503, content={"message": str(exc)})


@app.exception_handler(batch.DataProblem)
async def explain_data_problem(request: Request, exc: batch.DataProblem) -> JSONResponse:
    """A batch file is missing or invalid: its status and a message naming the problem."""
    return JSONResponse(status_code=exc.status, content={"message": str(exc)})


@app.exception_handler(RequestValidationError)
async def explain_invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer 422 with one readable sentence per problem, beside FastAPI's details."""
    what = "customer" if request.url.path == "/predict" else "request"
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
        problems.append(f"{field}: {error['msg']}")
    return JSONResponse(
        status_code=422,
        content={"message": f"Invalid {what}. " + "; ".join(problems), "detail": exc.errors()},
    )


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness and readiness: the model is loaded."""
    return {"status": "ok"}


@app.post("/predict", response_model=Prediction, dependencies=[Depends(require_token)])
def predict(customer: Customer) -> Prediction:
    """Predict the value of one customer over the next year (currency units).

    With a database configured the prediction is stored too, and a database that
    does not answer makes the request fail with 503 (nothing is lost silently).
    """
    features = customer.model_dump()
    row = pd.DataFrame([features], columns=list(FEATURES))
    value = round(float(model.predict(row)[0]), 2)
    if STORE.configured:
        STORE.save(features, value)
    return Prediction(customer_value=value)


@app.get("/predictions", dependencies=[Depends(require_token)])
def predictions(limit: int = Query(default=10, ge=1, le=1000)) -> dict[str, Any]:
    """The most recent stored predictions, newest first (needs DATABASE_URL)."""
    return {"predictions": STORE.recent(limit)}


@app.get("/data", dependencies=[Depends(require_token)])
def data_files() -> dict[str, Any]:
    """The CSV files the service can see in its mounted data directory."""
    return {"data_dir": str(batch.data_dir()), "files": batch.list_files()}


@app.post("/predict/batch", dependencies=[Depends(require_token)])
def predict_batch(request: BatchRequest) -> dict[str, Any]:
    """Score every customer of one CSV file of the data directory (not stored)."""
    frame = batch.read_customers(request.file)
    values = model.predict(frame[list(FEATURES)]).round(2)
    ids = frame["customer_id"].tolist() if "customer_id" in frame.columns else list(range(len(frame)))
    return {
        "file": request.file,
        "rows": len(frame),
        "mean_customer_value": round(float(values.mean()), 2) if len(frame) else None,
        "predictions": [{"customer_id": i, "customer_value": float(v)} for i, v in zip(ids, values)],
    }
