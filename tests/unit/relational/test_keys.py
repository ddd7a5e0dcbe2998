"""New keys: same kind and format as the real ones, unique, and never equal to one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from synthgen.relational.keys import generate_keys, key_format


def test_whole_number_keys_continue_after_the_real_ones():
    real = pd.Series([5, 17, 3, 40], dtype="int32")
    keys = generate_keys(key_format(real, table="t", column="id"), 100, np.random.default_rng(0))
    assert keys.is_unique and keys.min() == 41 and str(keys.dtype) == "int32"


def test_text_keys_keep_the_shape_and_never_copy():
    rng = np.random.default_rng(0)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    real = pd.Series(["".join(rng.choice(letters, 5)) + f"{i % 3:02d}" for i in range(2000)]).drop_duplicates()
    fmt = key_format(real, table="players", column="id")
    keys = generate_keys(fmt, 5000, np.random.default_rng(1))
    assert keys.is_unique and not keys.isin(real).any()
    assert keys.str.fullmatch(r"[a-z]{5}\d\d").all()


def test_uuid_keys_are_new_uuids():
    import uuid

    real = pd.Series([str(uuid.UUID(int=i)) for i in range(10)])
    keys = generate_keys(key_format(real, table="t", column="id"), 50, np.random.default_rng(0))
    assert keys.is_unique and not keys.isin(real).any()
    assert all(uuid.UUID(k).version == 4 for k in keys)


def test_text_keys_that_use_every_character_get_one_more():
    real = pd.Series([a + b for a in "0123456789" for b in "abcdefghijklmnopqrstuvwxyz"])
    keys = generate_keys(key_format(real, table="t", column="k"), 500, np.random.default_rng(0))
    assert keys.is_unique and not keys.isin(real).any() and (keys.str.len() > 2).all()


def test_a_narrow_text_format_widens_to_make_room():
    real = pd.Series([f"ST{i:03d}" for i in range(12)])  # room for 10 keys once one position is pinned
    keys = generate_keys(key_format(real, table="store", column="store_id"), 5000, np.random.default_rng(0))
    assert keys.is_unique and not keys.isin(real).any() and keys.str.startswith("ST").all()
