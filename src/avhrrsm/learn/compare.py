"""The model comparison of the paper, on the test split of the sample set.

For every trained model and for the raw ERA5-Land ``swvl1`` of the sample day (the baseline a
model must beat): n, R^2 (coefficient of determination, 1 - SSE/SST), RMSE, bias
(= mean(predicted) - mean(target)) and Pearson R, overall and for targets above the wet
threshold; the sequence-length sweep of one deep model; the attention-LSTM's mean attention
weight per lag. Written as CSV, figures and a short HTML summary that names the winner.
"""

from __future__ import annotations

import csv
import html
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from avhrrsm.atomic import atomic_path, write_text_atomic
from avhrrsm.grid import STEP_DEG
from avhrrsm.learn.features import SampleArrays, load_split
from avhrrsm.learn.models import AttentionLSTM
from avhrrsm.learn.predictor import Predictor, load_predictor
from avhrrsm.metrics import paired_rmse_difference, regression_metrics
from avhrrsm.pages import STYLE, cell_text, html_table
from avhrrsm.variables import DYNAMIC_FEATURES

LOGGER = logging.getLogger(__name__)
BASELINE = "era5land_swvl1"
METRIC_FIELDS = (
    "model",
    "sequence_length",
    "subset",
    "n",
    "r2",
    "rmse_m3m3",
    "bias_m3m3",
    "pearson_r",
)


PREDICT_BATCH = 65536


def predict_run(predictor: Predictor, arrays: SampleArrays) -> np.ndarray:
    """Predictions (m3 m-3) of a loaded run on ``arrays``, through inference's own predictor
    (the same normalisation and forward pass as the product)."""
    out = np.empty(len(arrays), np.float32)
    for start in range(0, len(arrays), PREDICT_BATCH):
        part = slice(start, start + PREDICT_BATCH)
        out[part] = predictor(
            predictor.prepare_dynamic(arrays.dynamic[part], arrays.fill_flag[part]),
            predictor.prepare_static(arrays.static[part]),
        )
    return out


@torch.no_grad()
def mean_attention(predictor: Predictor, arrays: SampleArrays) -> np.ndarray | None:
    """Mean attention weight per lag (oldest first) of an attention-LSTM run; None otherwise."""
    model = getattr(predictor, "model", None)
    if not isinstance(model, AttentionLSTM):
        return None
    total = torch.zeros(arrays.dynamic.shape[1], dtype=torch.float64)
    for start in range(0, len(arrays), PREDICT_BATCH):
        part = slice(start, start + PREDICT_BATCH)
        dynamic = torch.from_numpy(
            predictor.prepare_dynamic(arrays.dynamic[part], arrays.fill_flag[part])
        )
        static = torch.from_numpy(predictor.prepare_static(arrays.static[part]))
        total += model.attention_weights(dynamic, static).double().sum(dim=0)
    return (total / max(len(arrays), 1)).numpy()


OBSERVED = "inputs_observed"
GAP_FILLED = "inputs_gap_filled"
SIMULATED_GAP = "simulated_gap"


def day_classes(arrays: SampleArrays) -> dict[str, np.ndarray]:
    """Test samples by the state of their day's inputs: every input observed, an input
    gap-filled by the stack (a real gap: a cloudy day), or a simulated gap
    (samples.gap_simulation)."""
    filled = (arrays.fill_flag[:, -1, :] > 0).any(axis=1)
    return {
        OBSERVED: ~filled,
        GAP_FILLED: filled & ~arrays.gap_simulated,
        SIMULATED_GAP: arrays.gap_simulated,
    }


def _rows(
    label: str,
    length: int,
    predicted: np.ndarray,
    target: np.ndarray,
    wet_threshold: float,
    classes: Mapping[str, np.ndarray],
) -> list[dict[str, Any]]:
    """Metrics on all test samples, above the wet threshold, and per class of the day's
    inputs (:func:`day_classes`)."""
    subsets = {
        "all": np.ones(target.shape, bool),
        f"target_above_{wet_threshold:g}": target > wet_threshold,
        **classes,
    }
    return [
        {
            "model": label,
            "sequence_length": length,
            "subset": subset,
            **regression_metrics(predicted[chosen], target[chosen]),
        }
        for subset, chosen in subsets.items()
    ]


def _write_csv(path: Path, fields: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(fields), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()}
            )


def test_pixels(arrays: SampleArrays) -> np.ndarray:
    """The global-grid pixel index of every sample (row * 7200 + column)."""
    row = np.round((90.0 - arrays.lat) / STEP_DEG - 0.5).astype(np.int64)
    col = np.round((arrays.lon + 180.0) / STEP_DEG - 0.5).astype(np.int64)
    return row * int(round(360 / STEP_DEG)) + col


class _TestRuns:
    """The test split at each sequence length, and each model file's predictor and test
    predictions: each split loaded and each model applied once."""

    def __init__(self, samples_path: str | Path) -> None:
        self.samples_path = samples_path
        self._arrays: dict[int, SampleArrays] = {}
        self._predictors: dict[str, Predictor] = {}
        self._predicted: dict[str, np.ndarray] = {}

    def arrays(self, length: int) -> SampleArrays:
        if length not in self._arrays:
            self._arrays[length] = load_split(self.samples_path, "test", length)
        return self._arrays[length]

    def run(self, path: str | Path) -> tuple[Predictor, np.ndarray]:
        key = str(path)
        if key not in self._predictors:
            self._predictors[key] = load_predictor(path, "auto")
            length = self._predictors[key].sequence_length
            self._predicted[key] = predict_run(self._predictors[key], self.arrays(length))
        return self._predictors[key], self._predicted[key]


def compare_models(
    samples_path: str | Path,
    model_runs: Mapping[str, str | Path],
    sweep_runs: Mapping[int, str | Path],
    sweep_model: str,
    wet_threshold: float,
    outputs: Mapping[str, str | Path],
    global_attrs: Mapping[str, str] | None = None,
    replicate_runs: Mapping[str, Sequence[str | Path]] | None = None,
) -> dict[str, Any]:
    """Evaluate every run on the test split and write ``outputs``:

    ``metrics`` (CSV), ``sequence_length`` (CSV), ``attention`` (CSV), ``scatter`` (PNG),
    ``length_figure`` (PNG), ``attention_figure`` (PNG), ``summary`` (HTML), ``summary_json``.
    ``model_runs`` maps a model name to its model file; ``sweep_runs`` maps L to the sweep
    model's file; ``replicate_runs`` a model name to the files of its other training seeds
    (the ranking is tested over them and the test pixels).
    """
    runs = _TestRuns(samples_path)
    base = runs.arrays(1)
    target = base.target
    if target.size == 0:
        raise ValueError(f"{samples_path}: the test split is empty; nothing to compare")
    baseline = base.dynamic[:, -1, DYNAMIC_FEATURES.index(BASELINE)]
    predictions: dict[str, np.ndarray] = {BASELINE: baseline}
    classes = day_classes(base)
    rows = _rows(BASELINE, 1, baseline, target, wet_threshold, classes)
    for name, path in model_runs.items():
        predictor, predictions[name] = runs.run(path)
        rows += _rows(
            name, predictor.sequence_length, predictions[name], target, wet_threshold, classes
        )
    seed_rmse, ranking_test = _seed_ranking(runs, model_runs, predictions, replicate_runs or {})
    sweep_rows: list[dict[str, Any]] = []
    for length, path in sorted(sweep_runs.items()):
        sweep_rows += _rows(sweep_model, length, runs.run(path)[1], target, wet_threshold, classes)
    attention_rows = _attention_rows(runs, model_runs, sweep_runs, sweep_model)
    summary = summarise(rows, sweep_rows, wet_threshold, seed_rmse, ranking_test)
    summary["provenance"] = dict(global_attrs or {})
    _write_comparison(
        outputs, sweep_model, predictions, target, rows, sweep_rows, attention_rows, summary
    )
    LOGGER.info("%s", summary["statement"])
    return summary


def _seed_ranking(
    runs: _TestRuns,
    model_runs: Mapping[str, str | Path],
    predictions: Mapping[str, np.ndarray],
    replicate_runs: Mapping[str, Sequence[str | Path]],
) -> tuple[dict[str, list[float]], dict[str, Any] | None]:
    """Each model's test RMSE per training seed, and the paired test of the best two."""
    seed_predictions = {
        name: [predictions[name], *(runs.run(path)[1] for path in replicate_runs.get(name, ()))]
        for name in model_runs
    }
    target = runs.arrays(1).target
    seed_rmse = {
        name: [regression_metrics(p, target)["rmse_m3m3"] for p in per_seed]
        for name, per_seed in seed_predictions.items()
    }
    order = sorted(seed_rmse, key=lambda name: float(np.mean(seed_rmse[name])))
    if len(order) < 2:
        return seed_rmse, None
    return seed_rmse, paired_rmse_difference(
        seed_predictions[order[0]], seed_predictions[order[1]], target, test_pixels(runs.arrays(1))
    )


def _attention_rows(
    runs: _TestRuns,
    model_runs: Mapping[str, str | Path],
    sweep_runs: Mapping[int, str | Path],
    sweep_model: str,
) -> list[dict[str, Any]]:
    """The AtLSTM's mean attention weight per day before, for each sequence length of the
    sweep (the sweep model is the AtLSTM) or else the compared AtLSTM's."""
    attention_runs = dict(sorted(sweep_runs.items())) if sweep_model == "atlstm" else {}
    if not attention_runs and "atlstm" in model_runs:
        attention_runs = {runs.run(model_runs["atlstm"])[0].sequence_length: model_runs["atlstm"]}
    rows: list[dict[str, Any]] = []
    for length, path in attention_runs.items():
        weights = mean_attention(runs.run(path)[0], runs.arrays(length))
        rows += [
            {"sequence_length": length, "days_before": length - 1 - k, "mean_weight": float(w)}
            for k, w in enumerate(weights if weights is not None else [])
        ]
    return rows


def _write_comparison(
    outputs: Mapping[str, str | Path],
    sweep_model: str,
    predictions: Mapping[str, np.ndarray],
    target: np.ndarray,
    rows: list[dict[str, Any]],
    sweep_rows: list[dict[str, Any]],
    attention_rows: list[dict[str, Any]],
    summary: Mapping[str, Any],
) -> None:
    """The comparison's tables, figures, summary JSON and HTML page."""
    from avhrrsm.learn import figures

    _write_csv(Path(outputs["metrics"]), METRIC_FIELDS, rows)
    _write_csv(Path(outputs["sequence_length"]), METRIC_FIELDS, sweep_rows)
    _write_csv(
        Path(outputs["attention"]),
        ("sequence_length", "days_before", "mean_weight"),
        attention_rows,
    )
    figures.scatter_density(Path(outputs["scatter"]), dict(predictions), target, rows)
    figures.metric_vs_length(Path(outputs["length_figure"]), sweep_rows, sweep_model, rows)
    figures.attention_per_lag(Path(outputs["attention_figure"]), attention_rows)
    write_text_atomic(
        Path(outputs["summary_json"]), json.dumps(summary, indent=2, sort_keys=True) + "\n"
    )
    figure_names = {
        key: Path(outputs[key]).name
        for key in FIGURE_CAPTIONS
        if key in outputs and Path(outputs[key]).parent == Path(outputs["summary"]).parent
    }
    write_text_atomic(
        Path(outputs["summary"]), summary_html(dict(summary), rows, sweep_rows, figure_names)
    )


def summarise(
    rows: Sequence[Mapping[str, Any]],
    sweep_rows: Sequence[Mapping[str, Any]],
    wet_threshold: float,
    seed_rmse: Mapping[str, Sequence[float]] | None = None,
    ranking_test: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Which model has the lowest test RMSE (mean over its training seeds), whether the margin
    to the runner-up holds under the paired bootstrap, and the gain over the baseline."""
    overall = [r for r in rows if r["subset"] == "all"]
    baseline = next(r for r in overall if r["model"] == BASELINE)
    models = [r for r in overall if r["model"] != BASELINE]
    seed_rmse = seed_rmse or {r["model"]: [r["rmse_m3m3"]] for r in models}
    models.sort(key=lambda r: float(np.mean(seed_rmse[r["model"]])))
    best = models[0]
    best_rmse = seed_rmse[best["model"]]
    gain = 1.0 - float(np.mean(best_rmse)) / baseline["rmse_m3m3"]
    subsets = {(r["model"], r["subset"]): r for r in rows}
    spread = (
        f"mean of {len(best_rmse)} training seeds, {min(best_rmse):.4f}-{max(best_rmse):.4f}"
        if len(best_rmse) > 1
        else "one training seed"
    )
    statement = (
        f"{best['model']} has the lowest RMSE on the test split (days with a GLASS-MODIS "
        f"target): {np.mean(best_rmse):.4f} m3 m-3 ({spread}), R2 {best['r2']:.3f} "
        f"(n = {best['n']}), {100 * gain:.1f}% lower RMSE than raw ERA5-Land swvl1 "
        f"({baseline['rmse_m3m3']:.4f} m3 m-3, R2 {baseline['r2']:.3f})."
    )
    distinguishable = None
    if len(models) > 1 and ranking_test is not None:
        distinguishable = bool(ranking_test["high_m3m3"] < 0)
        statement += _runner_up_sentence(best["model"], models[1]["model"], seed_rmse, ranking_test)
    statement += _by_inputs_sentence(best["model"], subsets)
    statement += _wet_sentence(rows, wet_threshold)
    sweep_all = [r for r in sweep_rows if r["subset"] == "all"]
    best_length = min(sweep_all, key=lambda r: r["rmse_m3m3"]) if sweep_all else None
    if best_length is not None:
        statement += (
            f" In the sequence-length sweep of {best_length['model']}, L = "
            f"{best_length['sequence_length']} days gives the lowest RMSE "
            f"({best_length['rmse_m3m3']:.4f} m3 m-3)."
        )
    return {
        "winner": best["model"],
        "winner_rmse_m3m3": float(np.mean(best_rmse)),
        "winner_distinguishable_from_runner_up": distinguishable,
        "ranking_test": dict(ranking_test) if ranking_test is not None else None,
        "rmse_by_seed": {name: list(values) for name, values in seed_rmse.items()},
        "baseline_rmse_m3m3": baseline["rmse_m3m3"],
        "rmse_reduction_vs_baseline": gain,
        "ranking": [r["model"] for r in models],
        "winner_by_day_inputs": {
            subset: {
                key: subsets[(best["model"], subset)][key]
                for key in ("n", "rmse_m3m3", "bias_m3m3")
            }
            for subset in (OBSERVED, GAP_FILLED, SIMULATED_GAP)
        },
        "best_sequence_length": best_length["sequence_length"] if best_length else None,
        "statement": statement,
    }


def _runner_up_sentence(
    best: str,
    second: str,
    seed_rmse: Mapping[str, Sequence[float]],
    ranking_test: Mapping[str, Any],
) -> str:
    """Whether the winner's lead over the runner-up holds under the paired bootstrap."""
    low, high = ranking_test["low_m3m3"], ranking_test["high_m3m3"]
    sentence = (
        f" Against the runner-up {second} ({np.mean(seed_rmse[second]):.4f} m3 m-3) the "
        f"difference is {ranking_test['difference_m3m3']:+.4f} m3 m-3, 95% interval "
        f"[{low:+.4f}, {high:+.4f}] from a paired bootstrap over {ranking_test['pixels']} "
        "test pixels and the training seeds: "
        + (
            "the lead holds."
            if high < 0
            else f"not distinguishable, {best} and {second} are level."
        )
    )
    if min(len(v) for v in seed_rmse.values()) < 2:
        sentence += (
            " (One training seed per model: seed noise is not assessed; "
            "comparison.seeds >= 3 does.)"
        )
    return sentence


def _by_inputs_sentence(best: str, subsets: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    """The winner's RMSE and bias by the day's inputs (observed, gap-filled, simulated gap)."""
    parts = []
    for subset, label in (
        (OBSERVED, "every input of the day observed"),
        (GAP_FILLED, "an input of the day gap-filled (cloudy days)"),
        (SIMULATED_GAP, "a simulated gap on the day"),
    ):
        row = subsets[(best, subset)]
        if row["n"] >= 2:
            parts.append(
                f"{label}: RMSE {row['rmse_m3m3']:.4f}, bias {row['bias_m3m3']:+.4f} m3 m-3 "
                f"(n = {row['n']})"
            )
    return f" {best} by the day's inputs: " + "; ".join(parts) + "." if parts else ""


def _wet_sentence(rows: Sequence[Mapping[str, Any]], wet_threshold: float) -> str:
    """The models' RMSE span on wet days (not ranked: the differences are not tested)."""
    wet_rows = [
        r
        for r in rows
        if r["subset"].startswith("target_above_") and r["model"] != BASELINE and r["n"] >= 2
    ]
    if not wet_rows:
        return ""
    low = min(wet_rows, key=lambda r: r["rmse_m3m3"])
    high = max(wet_rows, key=lambda r: r["rmse_m3m3"])
    return (
        f" Above {wet_threshold:g} m3 m-3 (n = {low['n']}) the models' RMSE spans "
        f"{low['rmse_m3m3']:.4f} ({low['model']}) to {high['rmse_m3m3']:.4f} m3 m-3 "
        f"({high['model']}); no model is ranked there (the differences are not tested) and "
        "R2 does not apply (the reference spans too narrow a range)."
    )


# Subsets whose target spans too narrow a range for R² (a share of explained variance) to say
# anything about skill: their R² is shown as n/a, and no verdict is drawn from it.
NARROW_SUBSET_PREFIX = "target_above_"
FIGURE_CAPTIONS = {
    "scatter": "Predicted against target soil moisture on the test split, per model.",
    "length_figure": "Test metrics of the sweep model against the sequence length.",
    "attention_figure": "Mean attention weight per lag of the attention LSTM.",
}


def summary_html(
    summary: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    sweep_rows: Sequence[Mapping[str, Any]],
    figures: Mapping[str, str] | None = None,
) -> str:
    """The comparison's page: the statement, the metric tables (R² as n/a where the subset's
    target range is too narrow), and the figures, linked by their file names beside it."""
    headers = {
        "r2": "R² (–)",
        "rmse_m3m3": "RMSE (m³ m⁻³)",
        "bias_m3m3": "bias (m³ m⁻³)",
        "pearson_r": "Pearson R (–)",
    }

    def cell(field: str, record: Mapping[str, Any]) -> str:
        value = record[field]
        if field == "r2" and str(record["subset"]).startswith(NARROW_SUBSET_PREFIX):
            return "n/a*"
        return (
            f"{value:.4f}" if isinstance(value, float) and np.isfinite(value) else cell_text(value)
        )

    def table(records: Sequence[Mapping[str, Any]]) -> str:
        return html_table(
            [headers.get(f, f) for f in METRIC_FIELDS],
            [[cell(f, r) for f in METRIC_FIELDS] for r in records],
        )

    shown = [
        f"<h3>{html.escape(FIGURE_CAPTIONS.get(key, key))}</h3>"
        f"<a href='{html.escape(name)}'><img src='{html.escape(name)}' alt='{html.escape(key)}'></a>"
        for key, name in (figures or {}).items()
    ]
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>avhrrsm model comparison</title>"
        f"<style>{STYLE}</style></head><body><h1>Model comparison on the test split</h1>"
        f"<p><strong>{html.escape(summary['statement'])}</strong></p>"
        f"<h2>All models</h2>{table(rows)}<h2>Sequence-length sweep</h2>{table(sweep_rows)}"
        "<p>* R² is not given where the target spans too narrow a range (the wet regime): "
        "there it measures the range, not the skill.</p>"
        + (f"<h2>Figures</h2>{''.join(shown)}" if shown else "")
        + "</body></html>\n"
    )
