"""Datasets bundled with synthgen (no download at run time)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd


def load_adult() -> pd.DataFrame:
    """UCI Adult (census income), 32,561 rows x 15 columns, target ``income``.

    Values are as published with the leading blanks stripped; missing values stay as ``"?"``.
    Source: Becker & Kohavi (1996), UCI Machine Learning Repository, CC BY 4.0.
    """
    return _read("adult.csv.gz")


def load_bank_marketing() -> pd.DataFrame:
    """UCI Bank Marketing, 45,211 rows x 17 columns, target ``y`` (did the client subscribe).

    Full of point masses: ``pdays`` is -1 ("never contacted") for 82% of rows, ``previous`` 0 for
    82%, ``balance`` 0 for 8%; ``balance`` and ``duration`` are long-tailed.
    Source: Moro, Cortez & Rita (2014), UCI Machine Learning Repository, CC BY 4.0.
    """
    return _read("bank_marketing.csv.gz")


def load_credit_default() -> pd.DataFrame:
    """UCI Default of Credit Card Clients, 30,000 rows x 24 columns, target ``has_default``.

    Twelve bill and payment amounts that are often exactly 0 and pile up on round sums.
    Source: Yeh & Lien (2009), UCI Machine Learning Repository, CC BY 4.0.
    """
    return _read("creditcard_default.csv.gz")


#: the bundled datasets of several tables (a folder each: one .csv.gz per table and metadata.json)
RELATIONAL = {
    "berka": "PKDD'99 Czech bank (its trans table left out): district -> account, client -> disp -> card, "
             "account -> loan, order; 7 tables, 4 levels, disp has two parents. Public research dataset.",
    "cdnow": "CDNOW customers -> purchases by date (Fader and Hardie); 2 tables. Public research dataset.",
}


def relational_path(name: str) -> Path:
    """The folder of a bundled dataset of several tables (``synthgen train <folder> --metadata
    <folder>/metadata.json``): one ``<table>.csv.gz`` each, and its SDV multi-table ``metadata.json``."""
    if name not in RELATIONAL:
        raise ValueError(f"no bundled dataset {name!r} (use one of: {', '.join(RELATIONAL)})")
    return Path(str(resources.files(__package__).joinpath(name)))


def load_relational(name: str) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """A bundled dataset of several tables (see ``RELATIONAL``): its tables by name, and its metadata dict."""
    import json

    folder = relational_path(name)
    tables = {p.name.removesuffix(".csv.gz"): pd.read_csv(p) for p in sorted(folder.glob("*.csv.gz"))}
    return tables, json.loads((folder / "metadata.json").read_text())


def _read(name: str) -> pd.DataFrame:
    with resources.files(__package__).joinpath(name).open("rb") as fh:
        return pd.read_csv(fh, compression="gzip")


def adult_metadata_path() -> Path:
    """SDV-style metadata for Adult marked ``"public": true``: the category lists of the UCI
    documentation (adult.names) and bounds from the Census extraction rules and top-codes, so
    differentially private training spends no budget on the domain. Nothing in it is read off the rows.
    """
    return Path(str(resources.files(__package__).joinpath("adult.metadata.json")))


def load_digits() -> pd.DataFrame:
    """scikit-learn's bundled 8x8 handwritten digits as a table: 1,797 rows of 64 integer pixel
    columns ``px00``..``px77`` (values 0..16) and ``label`` (0..9). No download.

    Source: UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998), CC BY 4.0.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    df = pd.DataFrame(digits.data.astype("int64"), columns=[f"px{r}{c}" for r in range(8) for c in range(8)])
    df["label"] = digits.target.astype("int64")
    return df


def digits_metadata(columns: list[str]) -> dict[str, Any]:
    """SDV single-table metadata for ``columns`` of :func:`load_digits`, marked public: the pixel levels
    0..16 and the labels 0..9 are common knowledge, so DP spends no budget on the domain."""
    cols: dict[str, Any] = {c: {"sdtype": "categorical", "categories": list(range(17)), "nullable": False}
                            for c in columns if c != "label"}
    if "label" in columns:
        cols["label"] = {"sdtype": "categorical", "categories": list(range(10)), "nullable": False}
    return {"METADATA_SPEC_VERSION": "SINGLE_TABLE_V1", "public": True,
            "source": "scikit-learn load_digits documentation: 8x8 images, pixel values 0..16, digits 0..9",
            "columns": cols}
