"""The question bank, as graders see it: manifest.json checked against the textbook formulas.

Every part's value in the manifest is recomputed here from the manifest's own parameters with
plain numpy and the textbook formula (du_j/dw_il = delta_ij x_l, J = diag(s) - s s^T, dE/dW =
delta x^T, ...), independently of SymPy and of the tool's definitions, for several seeds and
variants. The contract (ids, parameter names, part ids, shapes) and the exclusion of degenerate
draws are checked on the same manifests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import BANK

from generator.build import BuildOptions, build

SEEDS = (3, 42, 2024)
VARIANTS = 2

CONTRACT = {
    "affine-scalar": (["w", "x", "b"], ["du_db", "du_dw", "du_dx"]),
    "affine-vector": (["W", "x", "b"], ["du_db", "du_dW", "du_dx"]),
    "affine-batched": (["W", "X", "b"], ["dU_db", "dU_dW", "dU_dX"]),
    "mse": (["Z", "Y"], ["dE_dZ"]),
    "sigmoid": (["u"], ["dz_du"]),
    "softmax": (["u"], ["ds_du"]),
    "chain-sigmoid-mse": (["u", "y"], ["dE_du"]),
    "chain-layer": (["W", "x", "b", "y"], ["dE_dW", "dE_db", "dE_dx"]),
    "softmax-xent": (["u", "y"], ["dE_du"]),
    "tanh": (["u"], ["dz_du"]),
    "relu": (["u"], ["dz_du"]),
    "mlp2": (["W1", "b1", "W2", "b2", "x", "y"], ["dE_dW1", "dE_db1", "dE_dW2", "dE_db2"]),
    # Beyond neural networks (the calculus and linear-algebra worksheets)
    "calc-product-rule": (["a", "x0"], ["df"]),
    "calc-second-derivative": (["a", "b", "c"], ["d2f"]),
    "calc-hessian": (["a", "b", "c", "d", "p"], ["hess", "grad"]),
    "calc-indefinite-integral": (["a", "b"], ["F"]),
    "calc-definite-integral": (["a", "c", "b"], ["I"]),
    "la-determinant": (["M"], ["det"]),
    "la-inverse": (["M"], ["inv"]),
    "la-system": (["M", "s"], ["x"]),
    "la-rank": (["u", "v", "k", "j"], ["rank"]),
    "la-eigenvalues": (["m", "t"], ["eigenvalues", "eigenvectors"]),
    "mc-derivative-rule": (["a", "b", "x0"], ["rule"]),
    "mc-linear-algebra": (["M", "v"], ["det", "positive", "jacobian"]),
}
DECIMAL_PARAMETERS = {("calc-product-rule", "x0")}  # drawn in steps of 0.01 by design


def sigma(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def softmax(a: np.ndarray) -> np.ndarray:
    e = np.exp(a - a.max())
    return e / e.sum()


def affine_scalar(p: dict[str, Any]) -> dict[str, Any]:
    return {"du_db": 1.0, "du_dw": p["x"], "du_dx": p["w"]}


def affine_vector(p: dict[str, Any]) -> dict[str, Any]:
    W, x = p["W"], p["x"]
    d = W.shape[0]
    return {"du_db": np.eye(d), "du_dW": np.einsum("ji,l->jil", np.eye(d), x), "du_dx": W}


def affine_batched(p: dict[str, Any]) -> dict[str, Any]:
    W, X = p["W"], p["X"]
    d, batch = W.shape[0], X.shape[0]
    return {
        "dU_db": np.einsum("n,ji->nji", np.ones(batch), np.eye(d)),  # du_nj/db_i = delta_ij
        "dU_dW": np.einsum("ji,nl->njil", np.eye(d), X),  # du_nj/dw_il = delta_ij x_nl
        "dU_dX": np.einsum("nm,jl->njml", np.eye(batch), W),  # du_nj/dx_ml = delta_nm w_jl
    }


def mse(p: dict[str, Any]) -> dict[str, Any]:
    return {"dE_dZ": p["Z"] - p["Y"]}


def sigmoid(p: dict[str, Any]) -> dict[str, Any]:
    s = sigma(p["u"])
    return {"dz_du": s * (1 - s)}


def softmax_jacobian(p: dict[str, Any]) -> dict[str, Any]:
    s = softmax(p["u"])
    return {"ds_du": np.diag(s) - np.outer(s, s)}


def chain_sigmoid_mse(p: dict[str, Any]) -> dict[str, Any]:
    s = sigma(p["u"])
    return {"dE_du": (s - p["y"]) * s * (1 - s)}


def chain_layer(p: dict[str, Any]) -> dict[str, Any]:
    W, x, b, y = p["W"], p["x"], p["b"], p["y"]
    s = sigma(W @ x + b)
    delta = (s - y) * s * (1 - s)
    return {"dE_dW": np.outer(delta, x), "dE_db": delta, "dE_dx": W.T @ delta}


def softmax_xent(p: dict[str, Any]) -> dict[str, Any]:
    return {"dE_du": softmax(p["u"]) - p["y"]}


def tanh(p: dict[str, Any]) -> dict[str, Any]:
    return {"dz_du": np.diag(1 - np.tanh(p["u"]) ** 2)}


def relu(p: dict[str, Any]) -> dict[str, Any]:
    return {"dz_du": np.diag((p["u"] > 0).astype(float))}


def mlp2(p: dict[str, Any]) -> dict[str, Any]:
    h = sigma(p["W1"] @ p["x"] + p["b1"])
    delta2 = p["W2"] @ h + p["b2"] - p["y"]
    delta1 = (p["W2"].T @ delta2) * h * (1 - h)
    return {"dE_dW1": np.outer(delta1, p["x"]), "dE_db1": delta1, "dE_dW2": np.outer(delta2, h), "dE_db2": delta2}


FORMULAS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "affine-scalar": affine_scalar,
    "affine-vector": affine_vector,
    "affine-batched": affine_batched,
    "mse": mse,
    "sigmoid": sigmoid,
    "softmax": softmax_jacobian,
    "chain-sigmoid-mse": chain_sigmoid_mse,
    "chain-layer": chain_layer,
    "softmax-xent": softmax_xent,
    "tanh": tanh,
    "relu": relu,
    "mlp2": mlp2,
}


@pytest.fixture(scope="module")
def manifests(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    out = {}
    for seed in SEEDS:
        folder = tmp_path_factory.mktemp(f"seed-{seed}")
        build(BuildOptions(seed=seed, bank=BANK, out=folder, pdf=False, variants=VARIANTS))
        out[seed] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    return out


def _entries(manifests: dict[int, dict[str, Any]]) -> list[tuple[int, str, dict[str, Any]]]:
    return [(seed, v["id"], q) for seed, m in manifests.items() for v in m["variants"] for q in v["questions"]]


def _params(entry: dict[str, Any]) -> dict[str, Any]:
    return {name: np.asarray(value, dtype=float) if isinstance(value, list) else float(value) for name, value in entry["params"].items()}


def test_every_question_is_built_in_every_variant(manifests: dict[int, dict[str, Any]]) -> None:
    for manifest in manifests.values():
        assert len(manifest["variants"]) == VARIANTS
        for variant in manifest["variants"]:
            assert sorted(q["id"] for q in variant["questions"]) == sorted(CONTRACT)


def test_ids_parameter_names_and_part_ids_follow_the_contract(manifests: dict[int, dict[str, Any]]) -> None:
    for _, _, entry in _entries(manifests):
        params, parts = CONTRACT[entry["id"]]
        assert list(entry["params"]) == params, entry["id"]
        assert [part["id"] for part in entry["parts"]] == parts, entry["id"]


@pytest.mark.parametrize("qid", sorted(FORMULAS))
def test_manifest_values_match_the_textbook_formula(manifests: dict[int, dict[str, Any]], qid: str) -> None:
    checked = 0
    for seed, variant, entry in _entries(manifests):
        if entry["id"] != qid:
            continue
        expected = FORMULAS[qid](_params(entry))
        for part in entry["parts"]:
            value = np.asarray(part["value"], dtype=float)
            want = np.asarray(expected[part["id"]], dtype=float)
            assert value.shape == want.shape == tuple(part["shape"]), (seed, variant, part["id"])
            np.testing.assert_allclose(value, want, rtol=1e-12, atol=1e-12, err_msg=f"seed {seed} variant {variant} {part['id']}")
            checked += 1
    assert checked == len(SEEDS) * VARIANTS * len(CONTRACT[qid][1])


def test_dimensions_stay_in_their_ranges(manifests: dict[int, dict[str, Any]]) -> None:
    for _, _, entry in _entries(manifests):
        for name, size in entry["dimensions"].items():
            assert (2 <= size <= 3) if (entry["id"] == "affine-batched" and name == "l") else (2 <= size <= 4), (entry["id"], name)


def test_entries_are_small_integers(manifests: dict[int, dict[str, Any]]) -> None:
    for _, _, entry in _entries(manifests):
        for name, value in _params(entry).items():
            if (entry["id"], name) in DECIMAL_PARAMETERS:
                continue
            array = np.atleast_1d(value)
            assert np.all(array == np.round(array)) and np.all(np.abs(array) <= 5), (entry["id"], name)


def test_degenerate_draws_are_excluded(manifests: dict[int, dict[str, Any]]) -> None:
    for _, _, entry in _entries(manifests):
        p, qid = _params(entry), entry["id"]
        for name in ("W", "X", "W1", "W2"):
            if name in p:
                assert np.all(np.any(p[name] != 0, axis=1)) and np.all(np.any(p[name] != 0, axis=0)), (qid, name, "zero row/column")
        if qid in ("affine-vector", "chain-layer", "mlp2", "affine-scalar"):
            assert np.all(p["x"] != 0), (qid, "zero x")
        if qid in ("softmax", "softmax-xent"):
            assert len(set(p["u"])) == len(p["u"]), (qid, "tie in u")
        if qid == "softmax-xent":
            assert sorted(p["y"]) == [0.0] * (len(p["y"]) - 1) + [1.0], (qid, "y not one-hot")
        if qid in ("relu", "tanh", "sigmoid"):
            assert np.all(np.atleast_1d(p["u"]) != 0), (qid, "zero u")
        if qid == "relu":
            assert p["u"].max() > 0 > p["u"].min(), (qid, "one sign only")
        if qid == "mse":
            assert np.any(p["Z"] != p["Y"]), (qid, "Z == Y")


def test_closed_forms_stay_exact_in_e(manifests: dict[int, dict[str, Any]]) -> None:
    """Answers with sigma, softmax and tanh are printed in terms of e, never as decimals."""
    for _, _, entry in _entries(manifests):
        if entry["id"] in ("sigmoid", "softmax", "chain-sigmoid-mse", "chain-layer", "softmax-xent", "tanh", "mlp2"):
            for part in entry["parts"]:
                assert "." not in part["latex"] and "tanh" not in part["latex"], (entry["id"], part["id"])
        if entry["id"] in ("sigmoid", "softmax", "tanh"):  # no zero u, no ties: e always appears
            (part,) = entry["parts"]
            assert "e" in re.sub(r"\\[a-zA-Z]+", "", part["latex"]), (entry["id"], part["latex"])


def test_the_manifest_latex_is_printed_in_the_key(tmp_path: Path) -> None:
    build(BuildOptions(seed=5, bank=BANK, out=tmp_path, pdf=False))
    manifest = json.loads((tmp_path / "manifest.json").read_text(encoding="utf-8"))
    keys = "".join((tmp_path / sheet / "A" / "key.tex").read_text(encoding="utf-8") for sheet in ("nn-derivatives", "nn-backprop", "calculus", "linear-algebra"))
    for entry in manifest["variants"][0]["questions"]:
        for part in entry["parts"]:
            if "rule" in part:  # a rounded answer: the key shows the exact form only where it is readable
                continue
            assert part["latex"] in keys, (entry["id"], part["id"])
