"""The artifact: round trips, pickling, and refusal of anything changed."""

import hashlib
import pickle
import struct

import numpy as np
import pandas as pd
import pytest

import ferrox as fx
from ferrox import ModelIntegrityError, ModelVersionError


@pytest.fixture
def dataset(rng):
    n = 2_000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "k": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
            "m": np.where(rng.random(n) < 0.1, np.nan, rng.exponential(size=n)),
        }
    )
    return fx.Dataset(frame, label=rng.normal(size=n), weight=rng.random(n), max_bin=40)


def same(a, b):
    assert a.feature_name() == b.feature_name()
    assert a.num_bins() == b.num_bins()
    assert a.categorical_feature == b.categorical_feature
    np.testing.assert_array_equal(a.bins(), b.bins())
    np.testing.assert_array_equal(a.get_label(), b.get_label())
    np.testing.assert_array_equal(a.get_weight(), b.get_weight())
    assert a.get_params() == b.get_params()
    assert a.feature_info("k") == b.feature_info("k")


def test_bytes_file_and_pickle_round_trips(dataset, tmp_path):
    same(fx.Dataset.from_bytes(dataset.to_bytes()), dataset)
    path = tmp_path / "train.frx"
    assert dataset.save_binary(path) is dataset
    same(fx.Dataset.load_binary(path), dataset)
    same(fx.Dataset.load_binary(str(path)), dataset)
    same(pickle.loads(pickle.dumps(dataset)), dataset)
    # A reloaded Dataset still works as a reference.
    again = fx.Dataset.from_bytes(dataset.to_bytes())
    assert fx.Dataset(pd.DataFrame({"x": [0.0], "k": pd.Categorical(["b"]), "m": [np.nan]}), reference=again).num_data() == 1


def test_header_and_hash(dataset, tmp_path):
    blob = dataset.to_bytes()
    assert blob[:8] == b"FERROXAF"
    info = fx.artifact_info(blob)
    assert info["kind"] == "dataset" and info["format_version"] == fx.artifact.FORMAT_VERSION
    (kind_len,) = struct.unpack_from("<H", blob, 12)
    kind = blob[14 : 14 + kind_len]
    body = blob[14 + kind_len + 8 + 32 :]
    assert info["body_len"] == len(body)
    assert info["sha256"] == hashlib.sha256(kind + body).hexdigest()
    dataset.save_binary(tmp_path / "d.frx")
    assert fx.artifact_info(tmp_path / "d.frx") == info


def test_any_changed_byte_is_refused(dataset, rng):
    blob = dataset.to_bytes()
    positions = np.concatenate([np.arange(60), rng.choice(len(blob), size=200, replace=False)])
    for pos in positions:
        bad = bytearray(blob)
        bad[pos] ^= 1 << int(rng.integers(8))
        with pytest.raises(ModelIntegrityError):
            fx.Dataset.from_bytes(bytes(bad))


def test_truncated_extended_and_foreign_bytes(dataset):
    blob = dataset.to_bytes()
    for cut in (0, 5, 8, 30, len(blob) // 2, len(blob) - 1):
        with pytest.raises(ModelIntegrityError):
            fx.Dataset.from_bytes(blob[:cut])
    with pytest.raises(ModelIntegrityError, match="bytes but .* follow"):
        fx.Dataset.from_bytes(blob + b"\0")
    with pytest.raises(ModelIntegrityError, match="magic"):
        fx.Dataset.from_bytes(pickle.dumps({"not": "a model"}))


def test_newer_format_version_names_both(dataset):
    blob = bytearray(dataset.to_bytes())
    newer = fx.artifact.FORMAT_VERSION + 1
    blob[8:12] = struct.pack("<I", newer)
    with pytest.raises(ModelVersionError, match=f"version {newer}.*up to {fx.artifact.FORMAT_VERSION}"):
        fx.Dataset.from_bytes(bytes(blob))


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.frx"):
        fx.Dataset.load_binary(tmp_path / "nope.frx")


def test_describe_is_json(dataset):
    import json

    d = json.loads(dataset.describe())
    assert d["num_data"] == 2_000 and d["feature_names"] == ["x", "k", "m"]
