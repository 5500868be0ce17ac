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
  with `model.split_validation(train, hparams.validation_fraction, hparams.seed)` (early
  stopping, blend weights); the baselines' regularisation was chosen on that same validation
  part once and is fixed below. The test split is scored once per model.
* Models: bias-only (mu + b_u + b_m by alternating regularised least squares, Surprise's
  baseline: reg_u 15, reg_m 10, 10 sweeps); ALS rank 10 (biased, weighted-lambda regularisation
  lambda * n_ratings, 15 sweeps, NumPy); kiko default `HParams()` (--override key=value to try
  others). Predictions are clipped to [1, 5].
* Reported: test RMSE/MAE, train wall time (seconds, includes building vocabularies) and
  examples/s (train examples x epochs / time; for kiko the steady-state MF epoch throughput).
  Results go to stdout and benchmarks/results/model_quality.json.
"""

from __future__ import annotations

import kiko_model  # noqa: F401  (selects Keras 2; must precede TensorFlow)

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

from kiko_model import features as fk
from kiko_data import synthetic
from kiko_data.movielens.reading import read_ratings, read_side_records
from kiko_data.movielens.source import resolve_source
from kiko_model.hparams import HParams

HERE = Path(__file__).resolve().parent
WORK = HERE / "_work"
RESULTS = HERE / "results" / "model_quality.json"
RECBOLE = "recbole==1.2.1"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/ml-100k.inter"
SPLIT_SEED = 42


# --- data ---------------------------------------------------------------------------------------

def load_ml1m_format(folder: str | os.PathLike) -> dict:
    """A generated data set (ratings + side files) as the in-memory dict the model takes."""
    source = resolve_source(str(folder))
    ratings = list(read_ratings(source))
    data = {fk.USER_ID: np.array([r.user_id for r in ratings], np.int64),
            fk.MOVIE_ID: np.array([r.movie_id for r in ratings], np.int64),
            fk.RATING: np.array([r.rating for r in ratings], np.float32),
            fk.TIMESTAMP: np.array([r.timestamp for r in ratings], np.int64)}
    users = read_side_records(source, "users")
    if users:
        rows = [users[r.user_id] for r in ratings]
        data[fk.GENDER] = np.array([u.gender.encode() for u in rows], dtype=object)
        data[fk.AGE] = np.array([u.age for u in rows], dtype=np.int64)
        data[fk.OCCUPATION] = np.array([u.occupation.encode() for u in rows], dtype=object)
        data[fk.ZIP_PREFIX] = np.array([u.zip_code[:fk.ZIP_PREFIX_LENGTH].encode() for u in rows],
                                       dtype=object)
    movies = read_side_records(source, "movies")
    if movies:
        rows = [movies[r.movie_id] for r in ratings]
        data[fk.YEAR] = np.array([m.year or 0 for m in rows], dtype=np.int64)
        data[fk.GENRES] = [tuple(g.encode() for g in m.genres) for m in rows]
    return data


def synthetic_data(folder: str) -> tuple[dict, dict]:
    report = synthetic.ensure_generated(folder, synthetic.GeneratorConfig())
    info = {"name": "generated ML-1M size", "noise_floor_rmse": report.noise_floor_rmse,
            "noise_floor_mae": report.noise_floor_mae, "path": folder}
    return load_ml1m_format(folder), info


def ml100k_data() -> tuple[dict, dict]:
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
    data = {fk.USER_ID: frame["user_id"].to_numpy(np.int64),
            fk.MOVIE_ID: frame["item_id"].to_numpy(np.int64),
            fk.RATING: frame["rating"].to_numpy(np.float32),
            fk.TIMESTAMP: frame["timestamp"].to_numpy(np.int64)}
    return data, {"name": "MovieLens-100K", "source": f"{RECBOLE}:{ML100K_MEMBER}"}


def split(data: dict) -> tuple[dict, dict]:
    """The benchmark's fixed random 90/10 split (see the module docstring)."""
    from kiko_model.model import _take
    n = len(data[fk.RATING])
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    test, train = np.sort(perm[:n // 10]), np.sort(perm[n // 10:])
    return _take(data, train), _take(data, test)


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


# --- the benchmark ------------------------------------------------------------------------------

def _scores(pred: np.ndarray, labels: np.ndarray) -> dict:
    error = np.asarray(pred, dtype=np.float64) - labels
    return {"rmse": float(np.sqrt(np.mean(error ** 2))), "mae": float(np.mean(np.abs(error)))}


def run_baseline(model, train, test) -> dict:
    start = time.perf_counter()
    passes = model.fit(train)
    seconds = time.perf_counter() - start
    row = {"model": model.name, **_scores(model.predict(test), test[fk.RATING]),
           "train_seconds": seconds,
           "examples_per_second": len(train[fk.RATING]) * passes / seconds}
    return row


def run_kiko(hparams: HParams, train, test) -> dict:
    from kiko_model import model as kiko
    fit, val = kiko.split_validation(train, hparams.validation_fraction, hparams.seed)
    result = kiko.train_model(fit, val, hparams)
    row = {"model": "kiko default" if hparams == HParams() else "kiko (overridden)",
           **_scores(kiko.predict(result.model, test), test[fk.RATING]),
           "train_seconds": result.train_seconds,
           "examples_per_second": result.mf_examples_per_second,
           "val_rmse": result.val_rmse, "val_mae": result.val_mae,
           "mf_best_epoch": result.best_epoch, "autorec_best_epoch": result.autorec_best_epoch,
           "blend_weights": list(result.blend_weights),
           "epochs_run": {s: sum(e["stage"] == s for e in result.history)
                          for s in ("mf", "autorec")},
           "timings": result.timings, "history": result.history}
    if hparams.blend:
        # The MF alone, from the same trained model, for the record.
        index = kiko._indexed(test, result.vocabularies)
        mf = kiko._clip(result.model.mf({k: index[k] for k in (kiko._USER_INDEX,
                                                                kiko._MOVIE_INDEX)})).numpy()
        row["mf_alone"] = _scores(mf, test[fk.RATING])
    return row


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synth", "ml100k"],
                        choices=["synth", "ml100k"])
    parser.add_argument("--synth-dir", default=str(WORK / "synthetic-ml1m"))
    parser.add_argument("--override", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--models", nargs="+", default=["bias", "als", "kiko"],
                        choices=["bias", "als", "kiko"])
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args(argv)
    hparams = HParams().with_overrides(dict(kv.split("=", 1) for kv in args.override))

    results = {"protocol": __doc__, "hparams": hparams.to_dict(),
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
               "datasets": []}
    for name in args.datasets:
        data, info = synthetic_data(args.synth_dir) if name == "synth" else ml100k_data()
        train, test = split(data)
        info.update(n_train=len(train[fk.RATING]), n_test=len(test[fk.RATING]), rows=[])
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
        print(f"{'model':<22} {'RMSE':>7} {'MAE':>7} {'train s':>8} {'examples/s':>11}")
        for row in info["rows"]:
            print(f"{row['model']:<22} {row['rmse']:7.4f} {row['mae']:7.4f} "
                  f"{row['train_seconds']:8.1f} {row['examples_per_second']:11.0f}")
            if "mf_alone" in row:
                print(f"{'  (its MF alone)':<22} {row['mf_alone']['rmse']:7.4f} "
                      f"{row['mf_alone']['mae']:7.4f}   val {row['val_rmse']:.4f}, blend "
                      f"{np.round(row['blend_weights'], 3).tolist()}, epochs "
                      f"{row['epochs_run']}, phases "
                      f"{ {k: round(v, 1) for k, v in row['timings'].items()} }")
        sys.stdout.flush()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
