"""Benchmark: the Trainer alone, in-process — warm starts of several shrinks against cold
retrains of two seeds, span by span, on the Examples a `warm_start.py` run ingested.

Why: `warm_start.py` measures the whole pipeline, one warm setting against one cold retrain.
This asks two questions it cannot: how far apart two cold retrains are that differ only in
their seed (the noise floor a warm start is judged against), and which `warm_shrink` keeps the
warm start's RMSE within it at what cost in time.

Protocol:
* Data: the span Examples (train and eval splits, as ExampleGen wrote them) in the pipeline
  home of `benchmarks/warm_start.py --dataset D` (run it first). Window k = the train splits of
  spans 1..k (the default window: every span); scored on span k's eval split.
* For k = 1..N: cold retrains with each `--seeds` value (`HParams.seed`; the first one is the
  reference); for k >= 2, one warm start per `--shrinks` value (`HParams.warm_shrink`) from that
  shrink's own chain: its warm model of span k-1 (span 1's cold reference model for k = 2).
  Each model is exported as the Trainer does (SavedModel + warm-start record) and read back
  as the next base. Seconds are `training.train_model` only (no loading, export or scoring).
* Measures over spans 2..N, per warm shrink: warm RMSE - reference cold RMSE per span, their
  mean and largest absolute value, median warm/cold seconds; and the same RMSE gaps for the
  cold retrain of the second seed (the noise floor).

    .venv/bin/python benchmarks/warm_start_trainer.py --dataset ml100k|generated
        [--shrinks 1,0.5,0.3] [--seeds 42,7] [--hparam KEY=VALUE ...]
"""

import argparse
import glob
import os
import re
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (this script's folder)

from kiko.model import data, serving, training, warm_start  # noqa: E402
from kiko.model.hparams import HParams  # noqa: E402
from kiko.pipeline.flags import hparam  # noqa: E402

CODE = "benchmark"  # model-code fingerprint of the records: the same for every model here


def span_examples(home: str) -> dict:
    """Span number -> its Examples artifact folder in ``home``'s pipeline root."""
    spans = {}
    for folder in glob.glob(os.path.join(home, "pipeline_root", "MovieLensExampleGen",
                                         "examples", "*")):
        stats = glob.glob(os.path.join(folder, "data_quality", "span-*.stats.json"))
        if not stats:
            continue
        span = int(re.search(r"span-(\d+)", os.path.basename(stats[0])).group(1))
        if span in spans:
            raise SystemExit(f"{home}: span {span} was ingested twice ({spans[span]}, {folder}); "
                             "use a home of one warm_start.py run")
        spans[span] = folder
    return dict(sorted(spans.items()))


def _files(folder: str, split: str) -> list:
    return sorted(glob.glob(os.path.join(folder, f"Split-{split}", "*")))


def _export(result, fit, hparams: HParams, path: str, chain: int) -> warm_start.Base:
    shutil.rmtree(path, ignore_errors=True)
    serving.export_saved_model(result.model, path)
    warm_start.write_record(path, warm_start.make_record(
        hparams, CODE, chain, result.model.member_names, result.vocabularies, fit))
    return warm_start.read_base(path)


def _train(window: data.Examples, hparams: HParams, base=None):
    fit, validation = data.split_validation(window, hparams.validation_fraction, hparams.seed)
    start = time.perf_counter()
    result = training.train_model(fit, validation, hparams, base=base)
    return result, fit, time.perf_counter() - start


def summarise(rows: list, seeds: list, shrinks: list) -> dict:
    """Per variant (cold of each later seed, warm of each shrink): RMSE gaps to the reference
    cold retrain, their mean and largest |.|, and the median seconds ratio, over spans 2..N."""
    reference = f"cold_{seeds[0]}"
    variants = [f"cold_{s}" for s in seeds[1:]] + [f"warm_{s:g}" for s in shrinks]
    out = {}
    for name in variants:
        later = [r for r in rows if r["span"] >= 2 and name in r]
        gaps = [r[name]["rmse"] - r[reference]["rmse"] for r in later]
        ratios = [r[name]["seconds"] / r[reference]["seconds"] for r in later]
        out[name] = {"rmse_gaps": gaps, "mean_rmse_gap": statistics.mean(gaps) if gaps else None,
                     "max_abs_rmse_gap": max((abs(g) for g in gaps), default=None),
                     "median_seconds_ratio": statistics.median(ratios) if ratios else None,
                     "seconds_ratios": ratios}
    return out


def _row(row: dict, names: list, reference: str) -> str:
    cells = [str(row["span"]), f"{row['train']:,}", f"{row['eval']:,}"]
    for name in names:
        v = row.get(name)
        gap = "" if v is None or name == reference else f" {v['rmse'] - row[reference]['rmse']:+.4f}"
        cells.append("" if v is None else f"{v['rmse']:.4f}{gap} ({v['seconds']:.0f})")
    return "| " + " | ".join(cells) + " |"


def markdown(rows: list, summary: dict, seeds: list) -> str:
    """Per span: each variant's RMSE, its gap to the reference cold retrain and its seconds;
    then the summary per variant."""
    reference = f"cold_{seeds[0]}"
    names = [n for n in rows[-1] if n.startswith(("cold_", "warm_"))]
    head = ["span", "train", "eval"] + [f"{n} RMSE (s)" for n in names]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += [_row(r, names, reference) for r in rows]
    lines += ["", "| variant | mean RMSE gap | largest abs gap | median seconds ratio |",
              "| --- | --- | --- | --- |"]
    for name, s in summary.items():
        lines.append(f"| {name} | {s['mean_rmse_gap']:+.4f} | {s['max_abs_rmse_gap']:.4f} | "
                     f"{s['median_seconds_ratio']:.2f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=("ml100k", "generated"), required=True)
    parser.add_argument("--shrinks", default="1,0.5,0.3",
                        help="warm_shrink values to compare (comma-separated)")
    parser.add_argument("--seeds", default="42,7",
                        help="seeds of the cold retrains; the first is the reference")
    parser.add_argument("--hparam", action="append", default=[], type=hparam,
                        metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    shrinks = [float(s) for s in args.shrinks.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = dict(args.hparam)
    home = os.path.join(common.WORK_DIR, f"warm_start_{args.dataset}", "home")
    spans = span_examples(home)
    if not spans:
        raise SystemExit(f"no span Examples in {home}: run benchmarks/warm_start.py "
                         f"--dataset {args.dataset} first")
    schema = data.read_schema(glob.glob(os.path.join(
        home, "pipeline_root", "ImportSchemaGen", "schema", "*", "schema.pbtxt"))[0])
    models = os.path.join(common.WORK_DIR, f"warm_start_trainer_{args.dataset}")
    started, rows, chains = common.machine(), [], {}
    for k in spans:
        window = data.load_examples(sum((_files(spans[j], "train") for j in spans if j <= k),
                                        []), schema)
        evaluation = data.load_examples(_files(spans[k], "eval"), schema)
        row = {"span": k, "train": len(window), "eval": len(evaluation)}
        for seed in seeds:
            hparams = HParams().with_overrides(dict(overrides, seed=seed))
            result, fit, seconds = _train(window, hparams)
            row[f"cold_{seed}"] = dict(training.score(result.model, evaluation), seconds=seconds)
            if seed == seeds[0] and k == min(spans):
                first = _export(result, fit, hparams, os.path.join(models, "cold"), 0)
                chains = {shrink: first for shrink in shrinks}
        if k > min(spans):
            for shrink in shrinks:
                hparams = HParams().with_overrides(dict(overrides, seed=seeds[0],
                                                        warm_shrink=shrink))
                result, fit, seconds = _train(window, hparams, chains[shrink])
                row[f"warm_{shrink:g}"] = dict(training.score(result.model, evaluation),
                                               seconds=seconds)
                chains[shrink] = _export(result, fit, hparams, os.path.join(
                    models, f"warm_{shrink:g}_{k % 2}"), chains[shrink].record.warm_chain + 1)
        rows.append(row)
        print(_row(row, [n for n in row if n.startswith(("cold_", "warm_"))],
                   f"cold_{seeds[0]}"), flush=True)
    summary = summarise(rows, seeds, shrinks)
    table = markdown(rows, summary, seeds)
    print(table)
    path = common.write_results(f"warm_start_trainer_{args.dataset}", {
        "benchmark": "warm_start_trainer", "dataset": args.dataset, "machine": started,
        "protocol": __doc__.split("Protocol:")[1].split("\n\n")[0].strip(),
        "hparams": overrides, "seeds": seeds, "shrinks": shrinks, "rows": rows,
        "summary": summary, "table": table})
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
