"""A small customer-value model trained on synthetic customers.

The data is made here with a fixed seed (no download), so every container that
starts from the same image trains the same model and gives the same answers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import GradientBoostingRegressor

#: Model inputs, in the order the model expects them.
FEATURES = ("tenure_months", "orders_last_year", "avg_order_value", "support_tickets")


def make_customers(n: int = 2000, *, seed: int = 14) -> pd.DataFrame:
    """Return ``n`` synthetic customers with the features and their yearly value.

    Args:
        n: number of customers (rows).
        seed: random seed; the same seed gives the same rows.

    Returns:
        A DataFrame with the columns of ``FEATURES`` and ``value`` (currency units per year).
    """
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 120, n)
    orders = rng.poisson(6, n)
    basket = rng.gamma(4.0, 12.5, n)
    tickets = rng.poisson(1.0, n)
    value = orders * basket * (1 + tenure / 240) - 15 * tickets + rng.normal(0, 20, n)
    return pd.DataFrame(
        {
            "tenure_months": tenure,
            "orders_last_year": orders,
            "avg_order_value": basket.round(2),
            "support_tickets": tickets,
            "value": value.clip(min=0).round(2),
        }
    )


def train(customers: pd.DataFrame | None = None) -> GradientBoostingRegressor:
    """Fit the customer-value model (about a second on one core).

    Args:
        customers: training rows as made by :func:`make_customers` (default: 2000 of them).

    Returns:
        The fitted regressor.
    """
    data = make_customers() if customers is None else customers
    model = GradientBoostingRegressor(n_estimators=150, max_depth=3, random_state=0)
    model.fit(data[list(FEATURES)], data["value"])
    return model
