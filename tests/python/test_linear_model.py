"""ferrox.linear_model against scikit-learn on fresh random data: coefficients, objectives, persistence."""

import pickle
import warnings

import numpy as np
import pytest
import sklearn.linear_model as skl
from sklearn.utils.estimator_checks import check_estimator

import ferrox as fx
import ferrox.linear_model as fxl


def problem(rng, n=2000, m=8):
    X = rng.normal(size=(n, m)) * rng.uniform(0.5, 3, m) + rng.uniform(-2, 2, m)
    w = rng.normal(size=m)
    w[:2] = 0
    y = X @ w + rng.normal(size=n)
    return X, y, w, rng.uniform(0.1, 2, n)


def rel(a, b):
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def rel_params(a, b):
    """rel over all fitted parameters (coefficients and intercepts) at once: an intercept near zero is
    held to the scale of the coefficients, as the solvers' tolerance is, not to its own."""
    flat = lambda e: np.concatenate([np.ravel(e.coef_), np.ravel(e.intercept_)])  # noqa: E731
    return rel(flat(a), flat(b))


@pytest.mark.parametrize("params", [{"alpha": 1.0}, {"alpha": 0.0}, {"alpha": 10.0, "fit_intercept": False}])
def test_ridge_matches_sklearn(rng, params):
    X, y, _, sw = problem(rng)
    a, b = fxl.Ridge(**params).fit(X, y, sample_weight=sw), skl.Ridge(**params).fit(X, y, sample_weight=sw)
    assert rel(a.coef_, b.coef_) < 1e-8
    assert abs(a.intercept_ - b.intercept_) < 1e-8
    Y = np.column_stack([y, 2 * y + 1])
    a, b = fxl.Ridge(**params).fit(X, Y), skl.Ridge(**params).fit(X, Y)
    assert a.coef_.shape == b.coef_.shape and rel(a.coef_, b.coef_) < 1e-8
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(
    "params",
    [{"alpha": 0.1}, {"alpha": 0.05, "l1_ratio": 0.9, "positive": True}, {"alpha": 0.01, "l1_ratio": 0.2, "fit_intercept": False}],
)
def test_elastic_net_matches_sklearn_at_same_tol(rng, params):
    X, y, _, sw = problem(rng)
    for tol in (1e-4, 1e-8):
        a = fxl.ElasticNet(tol=tol, **params).fit(X, y, sample_weight=sw)
        b = skl.ElasticNet(tol=tol, **params).fit(X, y, sample_weight=sw)
        assert rel(a.coef_, b.coef_) < 1e-4
        assert a.dual_gap_ <= b.dual_gap_ * (1 + 1e-6) + 1e-12


@pytest.mark.parametrize("offset", [0.0, 1e5])
def test_elastic_net_without_weights_matches_sklearn(rng, offset):
    # Unweighted float64 input is multiplied in place and the Gram matrix centred afterwards, unless a
    # column's mean dwarfs its spread (offset 1e5): then a centred copy is used. Both match scikit-learn.
    X, y, _, _ = problem(rng)
    X[:, 3] += offset
    cases = [{"alpha": 0.05}, {"alpha": 0.01, "l1_ratio": 0.9}]
    if offset == 0.0:
        cases.append({"alpha": 0.01, "l1_ratio": 0.2, "fit_intercept": False})
    for params in cases:
        a = fxl.ElasticNet(tol=1e-8, **params).fit(X, y)
        b = skl.ElasticNet(tol=1e-8, **params).fit(X, y)
        assert rel(a.coef_, b.coef_) < 1e-4, params
        np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-6, atol=1e-6)
        assert a.dual_gap_ <= b.dual_gap_ * (1 + 1e-6) + 1e-12


def test_lasso_warm_start_continues(rng):
    X, y, _, _ = problem(rng)
    m = fxl.Lasso(alpha=0.1, warm_start=True, max_iter=2, tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(X, y)
        m.set_params(max_iter=1000).fit(X, y)
    ref = skl.Lasso(alpha=0.1, tol=1e-12, max_iter=1000).fit(X, y)
    assert rel(m.coef_, ref.coef_) < 1e-6


def objective(clf, X, codes, sw, C):
    d = clf.decision_function(X)
    if d.ndim == 1:
        loss = np.logaddexp(0, d) - codes * d
    else:
        loss = np.log(np.exp(d - d.max(1, keepdims=True)).sum(1)) + d.max(1) - d[np.arange(len(d)), codes]
    pen = 0.0 if np.isinf(C) else np.sum(clf.coef_**2) / (2 * C)
    return (np.sum(sw * loss) + pen) / np.sum(sw)


@pytest.mark.parametrize("params", [{}, {"C": 0.05, "class_weight": "balanced"}])
def test_logistic_on_many_rows_matches_sklearn(rng, params):
    # 100k rows: L-BFGS starts from a strided subsample's solution with that subsample's Hessian.
    X, y, w, sw = problem(rng, n=100_000, m=5)
    codes = (X @ w + rng.logistic(size=len(y)) > 1.0).astype(int)
    a = fxl.LogisticRegression(tol=1e-8, max_iter=1000, **params).fit(X, codes, sample_weight=sw)
    b = skl.LogisticRegression(tol=1e-8, max_iter=1000, **params).fit(X, codes, sample_weight=sw)
    assert rel_params(a, b) < 1e-4
    full_sw = a._weights(codes, sw)  # sample weights with the class weights folded in
    C = params.get("C", 1.0)
    assert objective(a, X, codes, full_sw, C) <= objective(b, X, codes, full_sw, C) + 1e-12
    assert a.n_iter_[0] < b.n_iter_[0]


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "params",
    [
        {},
        {"solver": "newton-cholesky"},
        {"solver": "newton-cholesky", "fit_intercept": False},
        {"C": 0.1, "class_weight": "balanced"},
        {"C": np.inf},
    ],
)
def test_logistic_matches_sklearn(rng, n_classes, params):
    X, y, w, sw = problem(rng)
    z = X @ w + rng.logistic(size=len(y))
    labels = np.array(["a", "b", "c"])
    codes = (z > 0).astype(int) if n_classes == 2 else np.digitize(z, [-1, 1])
    yl = labels[codes]
    a = fxl.LogisticRegression(tol=1e-8, max_iter=1000, **params).fit(X, yl, sample_weight=sw)
    b = skl.LogisticRegression(tol=1e-8, max_iter=1000, **params).fit(X, yl, sample_weight=sw)
    assert list(a.classes_) == list(b.classes_)
    assert rel_params(a, b) < 1e-4
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)
    assert (a.predict(X) == b.predict(X)).mean() > 0.999
    cw = np.ones(len(yl))
    if params.get("class_weight") == "balanced":
        counts = np.bincount(codes, weights=sw)
        cw = (counts.sum() / (n_classes * counts))[codes]
    C = params.get("C", 1.0)
    fa, fb = objective(a, X, codes, sw * cw, C), objective(b, X, codes, sw * cw, C)
    assert fa <= fb + 1e-9


@pytest.mark.parametrize(
    "est",
    [fxl.Ridge(alpha=0.5), fxl.ElasticNet(alpha=0.1), fxl.Lasso(alpha=0.05), fxl.LogisticRegression(C=0.5)],
    ids=lambda e: type(e).__name__,
)
def test_artifact_and_pickle_round_trip(rng, tmp_path, est):
    X, y, _, _ = problem(rng, n=500)
    target = (y > np.median(y)).astype(int) if isinstance(est, fxl.LogisticRegression) else y
    est.fit(X, target)
    pred = est.predict(X)
    path = tmp_path / "model.frx"
    est.save(path)
    again = type(est).load(path)
    np.testing.assert_array_equal(again.predict(X), pred)
    np.testing.assert_array_equal(again.coef_, est.coef_)
    clone = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(clone.predict(X), pred)
    assert clone.get_params() == est.get_params()
    blob = bytearray(est.to_bytes())
    blob[-3] ^= 0xFF
    with pytest.raises(fx.ModelIntegrityError):
        type(est).from_bytes(bytes(blob))


def test_bad_input_is_a_clear_error(rng):
    X, y, _, _ = problem(rng, n=100)
    with pytest.raises(fx.ParameterError, match="alpha"):
        fxl.Ridge(alpha=-1.0).fit(X, y)
    with pytest.raises(fx.ParameterError, match="alpha"):
        fxl.ElasticNet(alpha=-0.1).fit(X, y)
    bad_y = y.copy()
    bad_y[3] = np.nan
    with pytest.raises(fx.DataError, match="y contains NaN"):
        fxl.Ridge().fit(X, bad_y)
    bad_X = X.copy()
    bad_X[7, 2] = np.inf
    with pytest.raises(fx.DataError, match="infinity"):
        fxl.Ridge().fit(bad_X, y)
    with pytest.raises(fx.DataError, match="Unknown label type"):
        fxl.LogisticRegression().fit(X, y)
    with pytest.raises(fx.DataError, match="one class"):
        fxl.LogisticRegression().fit(X, np.zeros(len(y)))
    with pytest.raises(fx.NotFittedError):
        fxl.Lasso().predict(X)
    fitted = fxl.Ridge().fit(X, y)
    with pytest.raises(fx.DataError, match="expecting 8 features"):
        fitted.predict(X[:, :3])


def test_singular_system_falls_back_without_nan(rng):
    X, y, _, _ = problem(rng, n=200, m=3)
    Xs = np.column_stack([X, X[:, 0]])  # a duplicated column: X^T X is singular
    with pytest.warns(UserWarning, match="Singular"):
        m = fxl.Ridge(alpha=0.0).fit(Xs, y)
    assert np.isfinite(m.coef_).all()
    assert abs(m.coef_[0] - m.coef_[3]) < 1e-8  # minimum-norm: the weight is split evenly
    ref = np.linalg.lstsq(np.column_stack([Xs, np.ones(len(y))]), y, rcond=None)[0]
    np.testing.assert_allclose(m.predict(Xs), np.column_stack([Xs, np.ones(len(y))]) @ ref, atol=1e-8)


def test_results_do_not_depend_on_threads(rng):
    X, y, _, _ = problem(rng, n=20000)
    fits = [fxl.LogisticRegression(n_jobs=t).fit(X, y > 0).coef_ for t in (1, 2, 3)]
    for f in fits[1:]:
        np.testing.assert_array_equal(f, fits[0])
    fits = [fxl.ElasticNet(alpha=0.01, n_jobs=t).fit(X, y).coef_ for t in (1, 3)]
    np.testing.assert_array_equal(fits[0], fits[1])


@pytest.mark.parametrize(
    "cls",
    [fxl.Ridge, fxl.ElasticNet, fxl.Lasso, fxl.LogisticRegression, fxl.SGDClassifier, fxl.SGDRegressor],
    ids=lambda c: c.__name__,
)
def test_check_estimator(cls):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(cls(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert failed == []


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"penalty": "elasticnet", "l1_ratio": 0.5, "alpha": 0.01},
        {"loss": "huber", "learning_rate": "constant", "eta0": 0.001},
        {"penalty": "l1", "alpha": 0.001, "learning_rate": "adaptive"},
    ],
)
def test_sgd_regressor_matches_sklearn_in_order(rng, params):
    X, y, _, sw = problem(rng, n=800, m=5)
    X = (X - X.mean(0)) / X.std(0)
    a = fxl.SGDRegressor(shuffle=False, **params).fit(X, y, sample_weight=sw)
    b = skl.SGDRegressor(shuffle=False, **params).fit(X, y, sample_weight=sw)
    assert a.n_iter_ == b.n_iter_
    assert rel(a.coef_, b.coef_) < 1e-8 and rel(a.intercept_, b.intercept_) < 1e-8


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize(
    "params", [{}, {"loss": "log_loss"}, {"loss": "modified_huber", "class_weight": "balanced", "penalty": "elasticnet"}]
)
def test_sgd_classifier_matches_sklearn_in_order(rng, n_classes, params):
    X, y, w, _ = problem(rng, n=800, m=5)
    X = (X - X.mean(0)) / X.std(0)
    z = X @ w
    yy = (z > 0).astype(int) if n_classes == 2 else np.digitize(z, np.quantile(z, [0.33, 0.66]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = fxl.SGDClassifier(shuffle=False, **params).fit(X, yy)
        b = skl.SGDClassifier(shuffle=False, **params).fit(X, yy)
    assert a.n_iter_ == b.n_iter_
    assert rel(a.coef_, b.coef_) < 1e-8 and rel(a.intercept_, b.intercept_) < 1e-8
    assert hasattr(a, "predict_proba") == hasattr(b, "predict_proba")


def test_sgd_partial_fit_matches_sklearn(rng):
    X, y, w, _ = problem(rng, n=1000, m=5)
    X = (X - X.mean(0)) / X.std(0)
    yy = np.digitize(X @ w, [-1, 1])
    a, b = fxl.SGDClassifier(shuffle=False), skl.SGDClassifier(shuffle=False)
    ra, rb = fxl.SGDRegressor(shuffle=False), skl.SGDRegressor(shuffle=False)
    for k in range(0, 1000, 100):
        a.partial_fit(X[k : k + 100], yy[k : k + 100], classes=[0, 1, 2])
        b.partial_fit(X[k : k + 100], yy[k : k + 100], classes=[0, 1, 2])
        ra.partial_fit(X[k : k + 100], y[k : k + 100])
        rb.partial_fit(X[k : k + 100], y[k : k + 100])
    assert rel(a.coef_, b.coef_) < 1e-8 and a.t_ == b.t_
    assert rel(ra.coef_, rb.coef_) < 1e-8
    with pytest.raises(fx.DataError, match="classes must be passed"):
        fxl.SGDClassifier().partial_fit(X, yy)
    with pytest.raises(fx.DataError, match="unseen"):
        a.partial_fit(X[:10], np.full(10, 7))


def test_sgd_round_trip(rng, tmp_path):
    X, y, _, _ = problem(rng, n=300, m=4)
    clf = fxl.SGDClassifier(loss="log_loss", random_state=0).fit(X, y > 0)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    clf.save(tmp_path / "sgd.frx")
    np.testing.assert_array_equal(fxl.SGDClassifier.load(tmp_path / "sgd.frx").predict(X), clf.predict(X))


@pytest.mark.parametrize("cls", [fxl.SGDClassifier, fxl.SGDRegressor], ids=lambda c: c.__name__)
def test_sgd_shuffled_weights_equal_repeated_rows(rng, cls):
    X, y, _, _ = problem(rng, n=60, m=4)
    X = (X - X.mean(0)) / X.std(0)
    target = np.digitize(y, np.quantile(y, [0.33, 0.66])) if cls is fxl.SGDClassifier else y
    sw = rng.integers(0, 4, size=len(y))
    rep = np.repeat(np.arange(len(y)), sw)[::-1]  # repeated rows, stored in another order
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = cls(random_state=3, max_iter=50).fit(X, target, sample_weight=sw)
        b = cls(random_state=3, max_iter=50).fit(X[rep], target[rep])
    np.testing.assert_array_equal(a.coef_, b.coef_)
    np.testing.assert_array_equal(a.intercept_, b.intercept_)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    assert np.abs(a.coef_).max() > 0
    # Fractional weights still scale the updates (a weight of 0.5 is not a full visit).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = cls(random_state=3, max_iter=50).fit(X, target, sample_weight=np.where(sw > 0, 0.5, 0.0))
    assert not np.array_equal(c.coef_, a.coef_)
