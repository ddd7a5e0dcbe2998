"""Datasets bundled with synthgen (no download at run time)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd


def load_adult() -> pd.DataFrame:
    """UCI Adult (census income), 32,561 rows x 15 columns, target ``income``.

    Values are as published with the leading blanks stripped; missing values stay as ``"?"``.
    Source: Becker & Kohavi (1996), UCI Machine Learning Repository, CC BY 4.0.
    """
    with resources.files(__package__).joinpath("adult.csv.gz").open("rb") as fh:
        return pd.read_csv(fh, compression="gzip")


def adult_metadata_path() -> Path:
    """SDV-style metadata for Adult marked ``"public": true``: the category lists of the UCI
    documentation (adult.names) and bounds from the Census extraction rules and top-codes, so
    differentially private training spends no budget on the domain. Nothing in it is read off the rows.
    """
    return Path(str(resources.files(__package__).joinpath("adult.metadata.json")))
