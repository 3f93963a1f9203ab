"""HTTP API of the customer-value service (FastAPI).

Endpoints:
    GET  /health   -> {"status": "ok"} once the model is trained.
    POST /predict  -> {"customer_value": float} for one customer.

Run it with ``uvicorn src.customer_value.api:app --host 0.0.0.0 --port 80``.
"""

from __future__ import annotations

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from .model import FEATURES, train

app = FastAPI(title="customer-value", version="1.0")
model = train()


class Customer(BaseModel):
    """One customer to score; the bounds reject values the model never saw."""

    tenure_months: int = Field(ge=0, le=600, description="months since the first order")
    orders_last_year: int = Field(ge=0, le=1000, description="orders in the last 12 months")
    avg_order_value: float = Field(ge=0, le=100_000, description="average basket, currency units")
    support_tickets: int = Field(ge=0, le=1000, description="support tickets in the last 12 months")


class Prediction(BaseModel):
    """The model's answer: expected value of the customer over the next year."""

    customer_value: float


@app.exception_handler(RequestValidationError)
async def explain_invalid_input(request: Request, exc: RequestValidationError) -> JSONResponse:
    """Answer 422 with one readable sentence per problem, beside FastAPI's details."""
    problems = []
    for error in exc.errors():
        field = ".".join(str(part) for part in error["loc"] if part != "body") or "body"
        problems.append(f"{field}: {error['msg']}")
    return JSONResponse(
        status_code=422,
        content={"message": "Invalid customer. " + "; ".join(problems), "detail": exc.errors()},
    )


@app.get("/health")
def health() -> dict[str, str]:
    """Liveness and readiness: the model is loaded."""
    return {"status": "ok"}


@app.post("/predict", response_model=Prediction)
def predict(customer: Customer) -> Prediction:
    """Predict the value of one customer over the next year (currency units)."""
    row = pd.DataFrame([customer.model_dump()], columns=list(FEATURES))
    return Prediction(customer_value=round(float(model.predict(row)[0]), 2))
