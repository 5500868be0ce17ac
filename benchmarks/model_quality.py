"""Model quality benchmark: bias-only vs NumPy ALS vs the kiko default model, side by side.

Run on demand (not a test):  .venv/bin/python benchmarks/model_quality.py [--datasets synth ml100k]

Protocol (fixed, so runs are comparable):
* Data sets: (a) generated ML-1M-size data (`GeneratorConfig()` defaults, seed 0; reused from
  --synth-dir when its generator.json matches, else generated there) with users.dat/movies.dat
  side features; (b) real MovieLens-100K, ratings only, read from
  ``recbole/dataset_example/ml-100k/ml-100k.inter`` inside the recbole==1.2.1 wheel, fetched with
  ``pip download --no-deps recbole==1.2.1`` into benchmarks/_work/ (gitignored; never committed).
* Split: ``perm = np.random.default_rng(42).permutation(n)``; the first ``n // 10`` indices of
  ``perm`` are the test split, the rest the train split (a random 90/10 split, seed 42).
* Every model sees only the train split. The kiko model carves its validation part from it
  with `data.split_validation(train, hparams.validation_fraction, hparams.seed)` (early
  stopping, blend weights); the baselines' regularisation was chosen on that same validation
  part once and is fixed below. The test split is scored once per model.
* Models: bias-only (mu + b_u + b_m by alternating regularised least squares, Surprise's
  baseline: reg_u 15, reg_m 10, 10 sweeps); ALS rank 10 (biased, weighted-lambda regularisation
  lambda * n_ratings, 15 sweeps, NumPy); kiko default `HParams()` (--override key=value to try
  others). Predictions are clipped to [1, 5].
* References on generated data only (`oracle_rows`, from `synthetic.ground_truth`): the noise
  floor on this test split (the report's floor is over all ratings), and "oracle-prior MAP", a
  fit of the generator's own model that knows its link, noise, thresholds and the exact prior
  of each user's and movie's parameters given their side features, and estimates only what
  the ratings must tell; and "oracle-prior posterior mean", the same averaged over Gibbs draws
  of the posterior (the Bayes predictor given the train split): how near the floor the data's
  size lets a model get at all.
* Reported: test RMSE/MAE, train wall time (seconds, includes building vocabularies) and
  examples/s (train examples x epochs / time; for kiko the steady-state MF epoch throughput).
  Results go to stdout and benchmarks/results/model_quality.json.
"""

from __future__ import annotations


import argparse
import io
import json
import os
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from kiko.data import synthetic
from kiko.data.movielens.reading import read_ratings, read_side_records
from kiko.data.movielens.source import resolve_source
from kiko.model import data
from kiko.model import features as fk
from kiko.model.hparams import HParams

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
RESULTS = HERE / "results" / "model_quality.json"
RECBOLE = "recbole==1.2.1"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
SPLIT_SEED = 42
ORACLE_SWEEPS = 5  # alternations of the oracle-prior MAP reference (generated data)
ORACLE_BURN_IN, ORACLE_SAMPLES = 10, 60  # Gibbs draws of the posterior-mean reference


# --- data ---------------------------------------------------------------------------------------

def load_ml1m_format(folder: str | os.PathLike) -> data.Examples:
    """A generated data set (ratings + side files) as the model's in-memory examples."""
    source = resolve_source(str(folder))
    ratings = list(read_ratings(source))
    columns = {fk.USER_ID: np.array([r.user_id for r in ratings], np.int64),
               fk.MOVIE_ID: np.array([r.movie_id for r in ratings], np.int64),
               fk.RATING: np.array([r.rating for r in ratings], np.float32),
               fk.TIMESTAMP: np.array([r.timestamp for r in ratings], np.int64)}
    del ratings
    users = movies = data.SideTable()
    table = read_side_records(source, "users")
    if table:
        ids = sorted(table)
        users = data.side_table(np.array(ids), {
            fk.GENDER: [[table[u].gender.encode()] for u in ids],
            fk.AGE: [[table[u].age] for u in ids],
            fk.OCCUPATION: [[table[u].occupation.encode()] for u in ids],
            fk.ZIP_PREFIX: [[table[u].zip_code[:fk.ZIP_PREFIX_LENGTH].encode()] for u in ids]})
    table = read_side_records(source, "movies")
    if table:
        ids = sorted(table)
        movies = data.side_table(np.array(ids), {
            fk.TITLE: [[table[m].title.encode()] for m in ids],
            fk.YEAR: [[table[m].year] if table[m].year else [] for m in ids],
            fk.GENRES: [[g.encode() for g in table[m].genres] for m in ids]})
    return data.Examples(columns, users, movies)


def synthetic_data(folder: str) -> tuple[data.Examples, dict]:
    report = synthetic.ensure_generated(folder, synthetic.GeneratorConfig())
    info = {"name": "generated ML-1M size", "noise_floor_rmse": report.noise_floor_rmse,
            "noise_floor_mae": report.noise_floor_mae, "path": folder}
    return load_ml1m_format(folder), info


def ml100k_data() -> tuple[data.Examples, dict]:
    WORK.mkdir(parents=True, exist_ok=True)
    wheels = sorted(WORK.glob("recbole-1.2.1-*.whl"))
    if not wheels:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", RECBOLE, "-d",
                        str(WORK)], check=True)
        wheels = sorted(WORK.glob("recbole-1.2.1-*.whl"))
    with zipfile.ZipFile(wheels[0]) as archive:
        text = archive.read(ML100K_MEMBER)
    frame = pd.read_csv(io.BytesIO(text), sep="\t")
    frame.columns = [c.split(":")[0] for c in frame.columns]
    columns = {fk.USER_ID: frame["user_id"].to_numpy(np.int64),
               fk.MOVIE_ID: frame["item_id"].to_numpy(np.int64),
               fk.RATING: frame["rating"].to_numpy(np.float32),
               fk.TIMESTAMP: frame["timestamp"].to_numpy(np.int64)}
    return data.Examples(columns), {"name": "MovieLens-100K",
                                    "source": f"{RECBOLE}:{ML100K_MEMBER}"}


def split_rows(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(train rows, test rows), sorted: the fixed random 90/10 split of the module docstring."""
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    return np.sort(perm[n // 10:]), np.sort(perm[:n // 10])


def split(examples: data.Examples) -> tuple[data.Examples, data.Examples]:
    """The benchmark's train and test examples (`split_rows`)."""
    train, test = split_rows(len(examples))
    return (data.in_canonical_order(data.take_rows(examples, train)),
            data.take_rows(examples, test))


# --- NumPy baselines ----------------------------------------------------------------------------

def _dense_index(train_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, int]:
    vocab = np.unique(train_ids)
    pos = np.minimum(np.searchsorted(vocab, ids), len(vocab) - 1)
    return np.where(vocab[pos] == ids, pos, -1), len(vocab)


def _biases(u, m, r, n_u, n_m, reg_u=15.0, reg_m=10.0, sweeps=10):
    mu = float(r.mean())
    bu, bm = np.zeros(n_u), np.zeros(n_m)
    for _ in range(sweeps):
        bm = np.bincount(m, r - mu - bu[u], n_m) / (reg_m + np.bincount(m, minlength=n_m))
        bu = np.bincount(u, r - mu - bm[m], n_u) / (reg_u + np.bincount(u, minlength=n_u))
    return mu, bu, bm


def _lookup(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    return np.where(index >= 0, values[np.maximum(index, 0)], 0.0)


class BiasOnly:
    name = "bias-only"

    def fit(self, train):
        self.users, self.movies = train[fk.USER_ID], train[fk.MOVIE_ID]
        u, n_u = _dense_index(self.users, self.users)
        m, n_m = _dense_index(self.movies, self.movies)
        self.mu, self.bu, self.bm = _biases(u, m, train[fk.RATING].astype(float), n_u, n_m)
        return 1

    def predict(self, data):
        u, _ = _dense_index(self.users, data[fk.USER_ID])
        m, _ = _dense_index(self.movies, data[fk.MOVIE_ID])
        return np.clip(self.mu + _lookup(self.bu, u) + _lookup(self.bm, m), 1, 5)


class ALS:
    """Biased ALS of rank 10 on the residuals of the bias model, weighted-lambda regularisation."""

    name = "ALS rank 10 (NumPy)"

    def __init__(self, rank=10, reg=0.1, sweeps=15, seed=0):
        self.rank, self.reg, self.sweeps, self.seed = rank, reg, sweeps, seed

    @staticmethod
    def _solve(rows, cols, resid, fixed, n_rows, reg):
        order = np.argsort(rows, kind="stable")
        rows, cols, resid = rows[order], cols[order], resid[order]
        splits = np.searchsorted(rows, np.arange(n_rows + 1))
        out = np.zeros((n_rows, fixed.shape[1]))
        eye = np.eye(fixed.shape[1])
        for i in range(n_rows):
            lo, hi = splits[i], splits[i + 1]
            if hi == lo:
                continue
            f = fixed[cols[lo:hi]]
            out[i] = np.linalg.solve(f.T @ f + reg * (hi - lo) * eye, f.T @ resid[lo:hi])
        return out

    def fit(self, train):
        self.base = BiasOnly()
        self.base.fit(train)
        self.users, self.movies = train[fk.USER_ID], train[fk.MOVIE_ID]
        u, n_u = _dense_index(self.users, self.users)
        m, n_m = _dense_index(self.movies, self.movies)
        resid = train[fk.RATING] - (self.base.mu + self.base.bu[u] + self.base.bm[m])
        rng = np.random.default_rng(self.seed)
        self.q = rng.normal(0, 0.1, (n_m, self.rank))
        for _ in range(self.sweeps):
            self.p = self._solve(u, m, resid, self.q, n_u, self.reg)
            self.q = self._solve(m, u, resid, self.p, n_m, self.reg)
        return self.sweeps

    def predict(self, data):
        u, _ = _dense_index(self.users, data[fk.USER_ID])
        m, _ = _dense_index(self.movies, data[fk.MOVIE_ID])
        inter = np.einsum("ij,ij->i", self.p[np.maximum(u, 0)], self.q[np.maximum(m, 0)])
        inter = np.where((u >= 0) & (m >= 0), inter, 0.0)
        base = self.base.mu + _lookup(self.base.bu, u) + _lookup(self.base.bm, m)
        return np.clip(base + inter, 1, 5)


# --- what only the generator knows --------------------------------------------------------------

def _posterior_means(entity: np.ndarray, n: int, design: np.ndarray, target: np.ndarray,
                     noise_var: float, prior_mean: np.ndarray, prior_precision: np.ndarray,
                     rng: np.random.Generator | None = None) -> np.ndarray:
    """Per entity, the posterior mean of w in target = design @ w + N(0, noise_var), with the
    prior w ~ N(prior_mean[e], inv(prior_precision)): Bayesian ridge regressions, batched.
    With ``rng``, a draw from each posterior instead of its mean."""
    k = design.shape[1]
    gram = np.empty((n, k, k))
    moment = np.empty((n, k))
    for i in range(k):
        moment[:, i] = np.bincount(entity, design[:, i] * target, minlength=n)
        for j in range(i, k):
            gram[:, i, j] = gram[:, j, i] = np.bincount(entity, design[:, i] * design[:, j],
                                                        minlength=n)
    gram = gram / noise_var + prior_precision
    moment = moment / noise_var + prior_mean @ prior_precision
    means = np.linalg.solve(gram, moment[..., None])[..., 0]
    if rng is None:
        return means
    # precision = L L^T, so mean + L^-T z has covariance inv(precision).
    cholesky = np.linalg.cholesky(gram)
    noise = rng.standard_normal(means.shape)[..., None]
    return means + np.linalg.solve(np.swapaxes(cholesky, 1, 2), noise)[..., 0]


def _side_prior(design: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(prior means, prior precision) of entity parameters given their side features: the
    least-squares fit of the true parameters on ``design`` and the residuals' precision."""
    coef = np.linalg.lstsq(design, params, rcond=None)[0]
    means = design @ coef
    return means, np.linalg.inv(np.cov((params - means).T))


def oracle_rows(truth: synthetic.GroundTruth, train: np.ndarray, test: np.ndarray,
                sweeps: int = ORACLE_SWEEPS, samples: int = ORACLE_SAMPLES) -> list:
    """Reference rows for generated data, from its ground truth (see the module docstring).

    * "noise floor, test split": E[rating | true mean] scored on this test split (the
      generator's report gives the floor over all ratings).
    * "oracle-prior MAP": what estimation from the train split costs even to a model that
      knows the generator: its link (rating ~ a + c x latent mean, a and c fit on the train
      split's true means), the noise, the thresholds, and the exact prior of every user's and
      movie's bias and factors given their side features (the true parameters' regression on
      the side features and the covariance of the rest). Users' and movies' posterior means
      are alternated ``sweeps`` times from the side prior (a MAP fit of the true model), then
      scored as E[rating | estimated mean].
    * "oracle-prior posterior mean": the same model, priors and data, but the prediction
      averages E[rating | mean] over ``samples`` Gibbs draws of every user's and movie's
      parameters (after ORACLE_BURN_IN draws from the MAP fit): the Bayes predictor of the
      generator given the train split, up to sampling error.
    """
    ratings, mean = truth.ratings, truth.mean
    start, cpu = time.perf_counter(), time.process_time()
    floor = {"model": "noise floor, test split",
             **_scores(truth.expected_rating(mean[test]), ratings[test]),
             "train_seconds": 0.0, "train_cpu_seconds": 0.0, "examples_per_second": 0.0}

    users, movies = truth.users, truth.movies
    one_hot = lambda values, k: np.eye(k)[values]  # noqa: E731
    user_design = np.column_stack([one_hot(users["is_male"].astype(int), 2),
                                   one_hot(users["age_index"], len(synthetic.AGE_CODES)),
                                   one_hot(users["occupation"], synthetic.N_OCCUPATIONS)])
    genres = movies["genres"].astype(float)
    genre_weights = genres / genres.sum(axis=1, keepdims=True)
    movie_design = np.column_stack([
        np.ones(len(genres)), genre_weights,
        genre_weights * np.sqrt(genres.sum(axis=1, keepdims=True)),
        (synthetic.LAST_YEAR - movies["year"]).astype(float)])
    user_params = np.column_stack([truth.user_bias, truth.user_factors])
    movie_params = np.column_stack([truth.movie_bias, truth.movie_factors])
    user_prior, user_precision = _side_prior(user_design, user_params)
    movie_prior, movie_precision = _side_prior(movie_design, movie_params)

    slope, intercept = np.polyfit(mean[train], ratings[train], 1)
    noise_var = float(np.var(ratings[train] - intercept - slope * mean[train]))
    u, m, r = truth.user_index[train], truth.movie_index[train], ratings[train]
    offset = r - intercept - slope * synthetic.GLOBAL_MEAN
    def sweep(estimate_u, rng=None):
        """Movies given users, then users given movies: posterior means, or draws with rng."""
        other = estimate_u[u]
        estimate_m = _posterior_means(
            m, len(movie_prior), slope * np.column_stack([np.ones(len(u)), other[:, 1:]]),
            offset - slope * other[:, 0], noise_var, movie_prior, movie_precision, rng)
        other = estimate_m[m]
        estimate_u = _posterior_means(
            u, len(user_prior), slope * np.column_stack([np.ones(len(m)), other[:, 1:]]),
            offset - slope * other[:, 0], noise_var, user_prior, user_precision, rng)
        return estimate_u, estimate_m

    def test_means(user_params, movie_params):
        pu, pm = user_params[truth.user_index[test]], movie_params[truth.movie_index[test]]
        return (synthetic.GLOBAL_MEAN + pu[:, 0] + pm[:, 0]
                + np.einsum("ij,ij->i", pu[:, 1:], pm[:, 1:]))

    estimate_u = user_prior
    for _ in range(sweeps):
        estimate_u, estimate_m = sweep(estimate_u)
    seconds = time.perf_counter() - start
    oracle = {"model": "oracle-prior MAP",
              **_scores(truth.expected_rating(test_means(estimate_u, estimate_m)),
                        ratings[test]),
              "train_seconds": seconds, "train_cpu_seconds": time.process_time() - cpu,
              "examples_per_second": len(train) * sweeps * 2 / seconds, "sweeps": sweeps}

    start, cpu = time.perf_counter(), time.process_time()
    rng = np.random.default_rng(SPLIT_SEED)
    total = np.zeros(len(test))
    for draw in range(ORACLE_BURN_IN + samples):
        estimate_u, estimate_m = sweep(estimate_u, rng)
        if draw >= ORACLE_BURN_IN:
            total += truth.expected_rating(test_means(estimate_u, estimate_m))
    seconds = time.perf_counter() - start
    bayes = {"model": "oracle-prior posterior mean",
             **_scores(total / max(samples, 1), ratings[test]),
             "train_seconds": seconds, "train_cpu_seconds": time.process_time() - cpu,
             "examples_per_second": len(train) * (ORACLE_BURN_IN + samples) * 2 / seconds,
             "samples": samples}
    return [floor, oracle, bayes]


# --- the benchmark ------------------------------------------------------------------------------

def _scores(pred: np.ndarray, labels: np.ndarray) -> dict:
    error = np.asarray(pred, dtype=np.float64) - labels
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error)))}


def run_baseline(model, train: data.Examples, test: data.Examples) -> dict:
    train, test = train.columns, test.columns
    start, cpu = time.perf_counter(), time.process_time()
    passes = model.fit(train)
    seconds = time.perf_counter() - start
    row = {"model": model.name, **_scores(model.predict(test), test[fk.RATING]),
           "train_seconds": seconds, "train_cpu_seconds": time.process_time() - cpu,
           "examples_per_second": len(train[fk.RATING]) * passes / seconds}
    return row


def run_kiko(hparams: HParams, train: data.Examples, test: data.Examples) -> dict:
    from kiko.model.serving import predict
    from kiko.model.training import train_model
    fit, val = data.split_validation(train, hparams.validation_fraction, hparams.seed)
    cpu = time.process_time()
    result = train_model(fit, val, hparams)
    row = {"model": "kiko default" if hparams == HParams() else "kiko (overridden)",
           **_scores(predict(result.model, test.columns), test.columns[fk.RATING]),
           "train_seconds": result.train_seconds,
           "train_cpu_seconds": time.process_time() - cpu,
           "examples_per_second": result.mf_examples_per_second,
           "val_rmse": result.val_rmse, "val_mae": result.val_mae,
           "members": result.members, "blend": result.blend,
           "timings": result.timings, "history": result.history}
    # Each member alone (known pairs; the blend's fallback elsewhere), for the record.
    vocab, columns = result.vocabularies, test.columns
    users, movies = vocab.user_index(columns[fk.USER_ID]), vocab.movie_index(columns[fk.MOVIE_ID])
    known = (users > 0) & (movies > 0)
    blended = predict(result.model, columns)
    row["alone"] = {}
    for member in result.model.members:
        alone = member.clip(member.predict_pairs(users, movies)).numpy()
        row["alone"][member.name] = _scores(np.where(known, alone, blended),
                                            columns[fk.RATING])
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synth", "ml100k"],
                        choices=["synth", "ml100k"])
    parser.add_argument("--synth-dir", default=str(WORK / "synthetic-ml1m"))
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--models", nargs="+", default=["oracle", "bias", "als", "kiko"],
                        choices=["oracle", "bias", "als", "kiko"],
                        help="oracle: the generated data's references (ignored for ML-100K)")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    hparams = HParams().with_overrides(dict(kv.split("=", 1) for kv in args.override))

    results = {"protocol": __doc__, "hparams": hparams.to_dict(),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "datasets": []}
    for name in args.datasets:
        examples, info = synthetic_data(args.synth_dir) if name == "synth" else ml100k_data()
        train, test = split(examples)
        info.update(n_train=len(train), n_test=len(test), rows=[], load_average_at_start=[
            round(x, 2) for x in os.getloadavg()])
        if "oracle" in args.models and name == "synth":
            truth = synthetic.ground_truth(synthetic.load_report(args.synth_dir).config)
            # The ML-1M layout writes the ratings in the ground truth's order.
            if not (np.array_equal(truth.ratings, examples.columns[fk.RATING])
                    and np.array_equal(truth.user_index + 1, examples.columns[fk.USER_ID])):
                raise RuntimeError(f"{args.synth_dir}: ratings are not the ground truth's")
            info["rows"] += oracle_rows(truth, *split_rows(len(examples)))
            del truth
        if "bias" in args.models:
            info["rows"].append(run_baseline(BiasOnly(), train, test))
        if "als" in args.models:
            info["rows"].append(run_baseline(ALS(), train, test))
        if "kiko" in args.models:
            info["rows"].append(run_kiko(hparams, train, test))
        results["datasets"].append(info)
        print(f"\n{info['name']}: {info['n_train']} train / {info['n_test']} test"
              + (f", noise floor RMSE {info['noise_floor_rmse']:.4f}"
                 if "noise_floor_rmse" in info else ""))
        print(f"{'model':<28} {'RMSE':>7} {'MAE':>7} {'train s':>8} {'CPU s':>7} "
              f"{'examples/s':>11}")
        for row in info["rows"]:
            print(f"{row['model']:<28} {row['rmse']:7.4f} {row['mae']:7.4f} "
                  f"{row['train_seconds']:8.1f} {row['train_cpu_seconds']:7.1f} "
                  f"{row['examples_per_second']:11.0f}")
            for member in row.get("members", []):
                alone = row["alone"][member["name"]]
                print(f"{'  ' + member['name'] + ' alone':<28} {alone['rmse']:7.4f} "
                      f"{alone['mae']:7.4f} {member['seconds']:8.1f}   val "
                      f"{member['val_rmse']:.4f}, best epoch {member['best_epoch']} of "
                      f"{member['epochs_run']}")
            if "blend" in row:
                weights = dict(zip(row["blend"]["names"], np.round(row["blend"]["weights"], 3)))
                print(f"  blend {weights}, intercept {row['blend']['intercept']:.3f}; phases "
                      f"{ {k: round(v, 1) for k, v in row['timings'].items()} }")
        sys.stdout.flush()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
