"""A small shop dataset: customers and stores (roots), purchases (two parents, one nullable) and items
(a grandchild), whose values depend on their parents' so that conditioning can be checked."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.metadata import Metadata, Relationship

TINY = {"epochs": 200, "batch_size": 100, "embedding_dim": 16, "compress_dims": (64,), "decompress_dims": (64,)}


def shop_tables(seed: int = 0, customers: int = 300) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    segment = rng.choice(["gold", "basic"], customers, p=[0.3, 0.7])
    customer = pd.DataFrame({"customer_id": np.arange(1, customers + 1), "segment": segment,
                             "age": rng.integers(18, 80, customers)})
    store = pd.DataFrame({"store_id": [f"ST{i:03d}" for i in range(12)],
                          "region": rng.choice(["north", "south"], 12)})
    # gold customers buy more often and spend more
    per = np.where(segment == "gold", rng.poisson(4, customers), rng.poisson(1, customers))
    owner = np.repeat(customer.customer_id.to_numpy(), per)
    gold = np.repeat(segment == "gold", per)
    n = len(owner)
    store_ids = store.store_id.to_numpy()[rng.integers(0, 12, n)].astype(object)
    store_ids[rng.random(n) < 0.1] = None  # online purchases: no store
    purchase = pd.DataFrame({"purchase_id": np.arange(1000, 1000 + n), "customer_id": owner,
                             "store_id": store_ids, "amount": np.round(np.where(gold, rng.normal(200, 20, n),
                                                                                 rng.normal(50, 10, n)), 2)})
    lines = rng.integers(0, 3, n)
    item = pd.DataFrame({"item_id": np.arange(lines.sum()), "purchase_id": np.repeat(purchase.purchase_id, lines),
                         "qty": rng.integers(1, 5, lines.sum())})
    return {"customer": customer, "store": store, "purchase": purchase, "item": item}


def shop_metadata() -> Metadata:
    tables = {
        "customer": {"primary_key": "customer_id", "columns": {"customer_id": {"sdtype": "id"},
                                                               "segment": {"sdtype": "categorical"},
                                                               "age": {"sdtype": "numerical",
                                                                       "computer_representation": "Int64"}}},
        "store": {"primary_key": "store_id", "columns": {"store_id": {"sdtype": "id"},
                                                         "region": {"sdtype": "categorical"}}},
        "purchase": {"primary_key": "purchase_id", "columns": {
            "purchase_id": {"sdtype": "id"}, "customer_id": {"sdtype": "id"}, "store_id": {"sdtype": "id"},
            "amount": {"sdtype": "numerical"}}},
        "item": {"primary_key": "item_id", "columns": {"item_id": {"sdtype": "id"}, "purchase_id": {"sdtype": "id"},
                                                       "qty": {"sdtype": "numerical",
                                                               "computer_representation": "Int64"}}},
    }
    return Metadata(tables, [Relationship("customer", "customer_id", "purchase", "customer_id"),
                             Relationship("store", "store_id", "purchase", "store_id"),
                             Relationship("purchase", "purchase_id", "item", "purchase_id")])


