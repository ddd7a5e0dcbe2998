"""Fixtures of the relational tests: the shop dataset (``tests/shop_data.py``) and its saved model."""

from __future__ import annotations

import pandas as pd
import pytest
from shop_data import TINY, shop_metadata, shop_tables


@pytest.fixture(scope="session")
def shop() -> dict[str, pd.DataFrame]:
    return shop_tables()


@pytest.fixture(scope="session")
def shop_model_file(shop, tmp_path_factory):
    """The shop dataset's relational model, saved."""
    from synthgen.relational.synthesizer import RelationalSynthesizer

    path = tmp_path_factory.mktemp("relational") / "shop.sgm"
    RelationalSynthesizer(seed=0, **TINY).fit(shop, shop_metadata()).save(path)
    return path
