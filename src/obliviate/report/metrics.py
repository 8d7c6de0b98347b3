"""What each leaderboard column means, which way is better, and its ideal, per protocol."""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.evaluate.audit import METRICS as QUICK_METRICS


@dataclass(frozen=True)
class Column:
    """A leaderboard column as the report shows it."""

    name: str
    meaning: str
    direction: str  # "higher", "lower" or "closer to retrain"
    ideal: str
    digits: int = 3

    @property
    def arrow(self) -> str:
        return {"higher": "↑", "lower": "↓"}.get(self.direction, "≈")


def _quick() -> list[Column]:
    cols = []
    for name, info in QUICK_METRICS.items():
        direction = "higher" if info.direction.startswith("higher") else "closer to retrain"
        cols.append(Column(name, info.label, direction, info.ideal))
    cols += [Column(f"{m}_gap", f"{m} minus retrain's {m}, same seed", "closer to 0", "0")
             for m in QUICK_METRICS]
    cols += [
        Column("avg_gap", "mean |gap to retrain| over RA, FA, TA, MIA", "lower", "0"),
        Column("time_s", "unlearning wall time (references: training time), seconds", "lower",
               "as small as possible", 2),
        Column("time_ratio", "wall time / retrain's training time", "lower", "well below 1"),
    ]
    return cols


COLUMNS: dict[str, list[Column]] = {
    "quick": _quick(),
    "challenge": [
        Column("F", "forgetting quality (mean of 2/2^n over forget examples)", "higher",
               "the ceiling (retrain (reference) row)", 4),
        Column("F_ceiling", "the ceiling: F of N retrained models against N other retrained "
               "models (its interval beside F's)", "reference", "-", 4),
        Column("F_ratio", "F / ceiling", "higher", "1"),
        Column("score", "F x RA_ratio x TA_ratio; 0 over the runtime cut-off", "higher",
               "the ceiling", 4),
        Column("RA_ratio", "mean retain accuracy / retrained models'", "higher", "1 or above"),
        Column("TA_ratio", "mean test accuracy / retrained models'", "higher", "1 or above"),
        Column("FA", "mean forget accuracy", "closer to retrain", "retrain's value"),
        Column("time_s", "mean unlearning run time, seconds", "lower", "under the cut-off", 2),
        Column("time_ratio", "mean run time / retrain time", "lower", "below the cut-off (0.2)"),
    ],
    "ulira": [
        Column("attack_acc", "U-LiRA best-threshold accuracy, unlearned vs never trained",
               "lower", "retrain's (about 0.5)"),
        Column("attack_acc_at_0", "the same at the log-likelihood-ratio threshold 0", "lower",
               "about 0.5"),
        Column("auc", "the attack's ROC AUC", "lower", "0.5"),
        Column("tpr_1pct", "true-positive rate at 1% false positives", "lower", "0.01"),
        Column("tpr_01pct", "true-positive rate at 0.1% false positives", "lower", "0.001"),
        Column("TA", "mean test accuracy of the unlearned models", "higher",
               "retrain's value or above"),
        Column("time_s", "mean unlearning run time, seconds", "lower", "as small as possible", 2),
    ],
}

# the metric a protocol ranks by, and which way is better
RANKING = {"quick": ("avg_gap", "lower"), "challenge": ("score", "higher"),
           "ulira": ("attack_acc", "lower")}


def fmt(mean: float | None, std: float | None, digits: int = 3) -> str:
    """``mean ± std`` ("-" when missing; the mean alone when the spread rounds to 0)."""
    if mean is None or mean != mean:
        return "-"
    text = f"{mean:.{digits}f}"
    if text.startswith("-") and float(text) == 0:
        text = text[1:]  # no "-0.000"
    if std is None or std != std or round(std, digits) == 0:  # no spread at this precision
        return text
    return f"{text} ± {std:.{digits}f}"


def fmt_interval(mean: float | None, lo: float | None, hi: float | None, std: float | None,
                 digits: int = 3) -> str:
    """``mean [lo, hi]`` with its confidence interval; ``fmt(mean, std)`` when there is none."""
    if mean is None or mean != mean or lo is None or hi is None or lo != lo or hi != hi:
        return fmt(mean, std, digits)
    if round(hi - lo, digits) == 0:
        return fmt(mean, None, digits)  # no spread at this precision
    return f"{fmt(mean, None, digits)} [{fmt(lo, None, digits)}, {fmt(hi, None, digits)}]"
