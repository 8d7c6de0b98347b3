"""The report's figures, drawn from a run directory with matplotlib's Agg backend.

Each function returns a figure, or None when the run holds nothing it could draw. Which plots
apply, and their axes, is the protocol spec's to say (``plots``, ``tradeoff``, ``pareto``,
``distributions``).
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from obliviate.bench.spec import Axes  # noqa: E402
from obliviate.files import write_atomic  # noqa: E402
from obliviate.report.rundir import REFERENCES, RunDir  # noqa: E402

RETRAIN = "retrain (reference)"


def _value(row, col: str, absolute: bool = False) -> tuple[float, float]:
    mean = float(row.get(col, math.nan))
    std = float(row.get(f"{col}_std", 0.0))
    std = 0.0 if math.isnan(std) else std
    return (abs(mean) if absolute else mean), std


# Methods' colours: tab10 without its red (the original's X), grey and black (the reference
# star), then darker tones; each method keeps its colour in every plot of a report.
PALETTE = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink",
           "tab:olive", "tab:cyan", "navy", "darkgoldenrod", "teal", "indigo", "sienna",
           "darkolivegreen", "deeppink", "steelblue")


def colours(methods: list[str]) -> dict[str, str]:
    """A distinct colour per method (references: red original, black retrain)."""
    others = [m for m in methods if m not in REFERENCES]
    out = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(others)}
    return {"original": "tab:red", RETRAIN: "black", **out}


def _marker(method: str, colour: str | None = None) -> dict:
    # the references are drawn open and under the methods, so a method on them stays visible
    if method == RETRAIN:
        return {"marker": "*", "s": 320, "facecolors": "none", "edgecolors": "black",
                "linewidths": 1.4, "zorder": 3}
    if method == "original":
        return {"marker": "X", "s": 130, "color": "tab:red", "alpha": 0.55, "zorder": 3}
    return {"marker": "o", "s": 46, "color": colour, "edgecolors": "white", "linewidths": 0.8,
            "zorder": 4}


def place_labels(ax, points: list[tuple[float, float, str]], fontsize: float = 8) -> list:
    """Name each point beside it without two names (or a name and a point) overlapping.

    Greedy, in display coordinates: each name tries offsets around its point, nearest first,
    and takes the first whose box is clear of the names already placed, of every point's
    marker and of the axes' edges; a name set away from its point gets a thin leader line.
    Returns the text artists.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    to_px = ax.transData.transform
    box = ax.get_window_extent(renderer)
    # each point's centre and the radius its marker covers (the reference star is large)
    dots = [(*to_px((x, y)), 13 if name in REFERENCES else 6) for x, y, name in points]
    taken: list = []
    texts = []
    steps = [(dx, dy) for r in (7, 16, 28, 42, 58) for dx, dy in
             ((r, r * 0.4), (r, -r), (-r, r * 0.4), (-r, -r), (0, r), (0, -r * 1.3),
              (r * 1.4, 0), (-r * 1.4, 0))]
    for x, y, name in points:
        text = ax.annotate(name, (x, y), textcoords="offset points", xytext=(7, 3),
                           fontsize=fontsize, zorder=6)
        for dx, dy in steps:
            text.set_position((dx, dy))
            text.set_ha("left" if dx >= 0 else "right")
            ext = text.get_window_extent(renderer).expanded(1.05, 1.15)
            inside = (ext.x0 >= box.x0 and ext.x1 <= box.x1 and ext.y0 >= box.y0
                      and ext.y1 <= box.y1)
            clear = not any(ext.overlaps(t) for t in taken) and not any(
                ext.x0 - r <= qx <= ext.x1 + r and ext.y0 - r <= qy <= ext.y1 + r
                for qx, qy, r in dots)
            if inside and clear:
                break
        if abs(dx) + abs(dy) > 30:
            ax.annotate("", (x, y), xytext=(dx, dy), textcoords="offset points",
                        arrowprops={"arrowstyle": "-", "color": "grey", "lw": 0.6,
                                    "shrinkA": 0, "shrinkB": 3}, zorder=5)
        taken.append(text.get_window_extent(renderer).expanded(1.05, 1.15))
        texts.append(text)
    return texts


def _frontier(points: list[tuple[float, float]], x_lower: bool, y_lower: bool = False
              ) -> list[tuple[float, float]]:
    """Points no other point beats on both axes."""
    xs, ys = (1 if x_lower else -1), (-1 if y_lower else 1)
    best, out = -math.inf, []
    for x, y in sorted(points, key=lambda p: (xs * p[0], -ys * p[1])):
        if ys * y > best:
            out.append((x, y))
            best = ys * y
    return out


def tradeoff(run: RunDir) -> Figure | None:
    """Forgetting vs utility per method with spread over seeds; retrain marked; the frontier."""
    if run.spec.tradeoff is None:
        return None
    return _scatter(run, run.spec.tradeoff, "Forgetting vs utility (retrain = the target)")


def pareto(run: RunDir) -> Figure | None:
    """The protocol's Pareto axes (e.g. F/ceiling vs time ratio), the front and the cut-off."""
    if run.spec.pareto is None:
        return None
    fig = _scatter(run, run.spec.pareto, "Pareto front: forgetting vs cost")
    if fig is None:
        return None
    cutoff = run.config.get("protocol_options", {}).get("cutoff")
    if cutoff is not None and run.spec.pareto.x == "time_ratio":
        ax = fig.axes[0]
        ax.axvline(float(cutoff), color="tab:red", ls=":", label=f"cut-off {cutoff:g}")
        ax.legend(fontsize=7, loc="best")
    return fig


def _scatter(run: RunDir, axes: Axes, title: str) -> Figure | None:
    xcol, ycol, absolute = axes.x, axes.y, axes.absolute_x
    xlabel, ylabel, x_lower = axes.xlabel, axes.ylabel, axes.x_lower_is_better
    board = run.board
    if xcol not in board or ycol not in board:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    colour = colours([str(m) for m in board["method"]])
    named: list[tuple[float, float, str]] = []
    points: list[tuple[float, float]] = []
    original_x = None
    values = {str(r["method"]): (_value(r, xcol, absolute), _value(r, ycol))
              for _, r in board.iterrows()}
    spans = [np.ptp([v[i][0] for v in values.values() if not math.isnan(v[i][0])] or [0]) or 1
             for i in (0, 1)]
    for method, ((x, xs), (y, ys)) in values.items():
        if math.isnan(x) or math.isnan(y):
            continue
        xerr = [[min(xs, x)], [xs]] if absolute else xs  # |gap| cannot go below 0
        ax.errorbar(x, y, xerr=xerr, yerr=ys, fmt="none", ecolor=colour[method], alpha=0.45,
                    zorder=2)
        style = _marker(method, colour[method])
        if method not in REFERENCES:  # methods on the same spot: rings around a dot
            under = sum(abs(x - px) < 0.012 * spans[0] and abs(y - py) < 0.012 * spans[1]
                        for px, py, m in named if m not in REFERENCES)
            style.update(s=90 * 3.5 ** -under, zorder=4 + under)
        ax.scatter([x], [y], **style)
        named.append((x, y, method))
        if method == "original":
            original_x = x
        elif method not in REFERENCES:  # the frontier among the methods; retrain is the target
            points.append((x, y))
    # a method no better than the original on the forgetting axis forgot nothing: no trade-off
    if original_x is not None:
        points = [(x, y) for x, y in points if (x < original_x if x_lower else x > original_x)]
    front = _frontier(points, x_lower, axes.y_lower_is_better)
    if len(front) > 1:
        ax.plot(*zip(*front, strict=True), ls="--", color="tab:green", alpha=0.6, zorder=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(0.12)
    fig.tight_layout()
    place_labels(ax, named)
    key = [plt.Line2D([], [], ls="", marker="*", ms=13, mfc="none", mec="black",
                      label="retrain (reference): the target"),
           plt.Line2D([], [], ls="", marker="X", ms=9, color="tab:red", alpha=0.55,
                      label="original: before unlearning")]
    if len(front) > 1:
        key.append(plt.Line2D([], [], ls="--", color="tab:green", label="methods' frontier"))
    ax.legend(handles=key, fontsize=7, loc="best")
    return fig


def load_note(run: RunDir) -> str | None:
    """The machine's load average recorded with the run, in words (None if not recorded)."""
    machine = run.config.get("machine", {})
    load = machine.get("load_average")
    if not load:
        return None
    return (f"load average when the run ended: {load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} "
            f"(1, 5, 15 min) on {machine.get('cpus', '?')} CPUs; wall times grow with load")


def cost(run: RunDir) -> Figure | None:
    """Unlearning time against the protocol's ranking metric; retrain's training time marked;
    the load average recorded with the run beside the times."""
    metric, direction = run.spec.ranking
    board = run.board
    if metric not in board or "time_s" not in board:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    colour = colours([str(m) for m in board["method"]])
    named = []
    for _, row in board.iterrows():
        method = str(row["method"])
        (t, ts), (y, ys) = _value(row, "time_s"), _value(row, metric)
        if method == "original" or math.isnan(t) or math.isnan(y) or t <= 0:
            continue
        ax.errorbar(t, y, xerr=ts, yerr=ys, fmt="none", ecolor=colour[method], alpha=0.45)
        ax.scatter([t], [y], **_marker(method, colour[method]))
        named.append((t, y, method))
    retrain = board[board["method"] == RETRAIN]
    if len(retrain) and not math.isnan(float(retrain["time_s"].iloc[0])):
        retrain_s = float(retrain["time_s"].iloc[0])
        ax.axvline(retrain_s, color="black", ls=":", label="retrain time")
        cutoff = run.config.get("protocol_options", {}).get("cutoff")
        if cutoff is not None:
            ax.axvline(float(cutoff) * retrain_s, color="tab:red", ls=":",
                       label=f"runtime cut-off ({cutoff:g} x retrain)")
        ax.legend(fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("wall time per unlearning run, seconds (log scale)")
    ax.set_ylabel(f"{metric} ({direction} is better)")
    ax.set_title("Cost vs score")
    ax.grid(alpha=0.3, which="both")
    ax.margins(0.12)
    note = load_note(run)
    if note:
        fig.text(0.01, 0.01, note, fontsize=7, color="dimgrey")
    fig.tight_layout(rect=(0, 0.03 if note else 0, 1, 1))
    place_labels(ax, named)
    return fig


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def epsilons(run: RunDir) -> Figure | None:
    """Histograms of per-example epsilon (challenge protocol), one panel per row."""
    data = run.pooled("epsilon")
    if not data:
        return None
    finite = np.concatenate([v[np.isfinite(v)] for v in data.values()])
    top = float(finite.max()) if finite.size else 1.0
    bins = np.linspace(0, max(top, 1e-3), 31)
    rows, cols = _grid(len(data))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), sharex=True,
                             squeeze=False)
    for ax, (method, eps) in zip(axes.flat, data.items(), strict=False):
        ax.hist(np.clip(eps[np.isfinite(eps)], 0, top), bins=bins,
                color="black" if method == RETRAIN else "tab:blue", alpha=0.8)
        ax.set_title(f"{method} (mean {np.mean(eps[np.isfinite(eps)]):.2f})", fontsize=9)
        ax.set_xlabel("per-example epsilon (lower is better)", fontsize=8)
    for ax in list(axes.flat)[len(data):]:
        ax.axis("off")
    fig.suptitle("Per-example epsilon over the forget set (retrain (reference) = the ceiling)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def distributions(run: RunDir) -> Figure | None:
    """Forget vs test distributions of the protocol's per-example values, one panel per model."""
    spec = run.spec.distributions
    if spec is None:
        return None
    forget, test = run.pooled(spec.forget), run.pooled(spec.test)
    xlabel, log = (f"log10 {spec.xlabel}" if spec.log else spec.xlabel), spec.log
    methods = [m for m in forget if m in test]
    if not methods:
        return None
    if log:  # losses of well-fit examples reach 1e-7: compare orders of magnitude
        forget = {m: np.log10(np.maximum(v, 1e-8)) for m, v in forget.items()}
        test = {m: np.log10(np.maximum(v, 1e-8)) for m, v in test.items()}
    every = np.concatenate([np.concatenate([forget[m], test[m]]) for m in methods])
    every = every[np.isfinite(every)]
    bins = np.linspace(float(every.min()), float(every.max()) + 1e-9, 40)
    rows, cols = _grid(len(methods))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.6 * rows), sharex=True,
                             squeeze=False)
    for ax, method in zip(axes.flat, methods, strict=False):
        for part, values, style in (
                ("test", test[method], {"alpha": 0.5, "color": "tab:grey"}),
                ("forget", forget[method], {"histtype": "step", "lw": 1.8, "color": "tab:red"})):
            v = np.clip(values[np.isfinite(values)], bins[0], bins[-1])
            ax.hist(v, bins=bins, weights=np.full(v.size, 1 / max(v.size, 1)), label=part,
                    **style)
        ax.set_title(method, fontsize=9, weight="bold" if method in REFERENCES else None)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("fraction", fontsize=8)
        ax.tick_params(labelbottom=True, labelsize=7)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(methods):]:
        ax.axis("off")
    fig.suptitle("Forget vs test: a model that forgot looks like retrain's panel", fontsize=10)
    fig.tight_layout()
    return fig


def roc(run: RunDir) -> Figure | None:
    """ROC curves of the (U-)LiRA attack per row, on log-log axes (low-FPR regime visible)."""
    from sklearn.metrics import roc_curve

    scores, members = run.arrays("attack_score"), run.arrays("attack_member")
    methods = [m for m in scores if m in members]
    if not methods:
        return None
    fig, ax = plt.subplots(figsize=(6.2, 5.4))
    floor = 1.0
    for method in methods:
        s, y = np.concatenate(scores[method]), np.concatenate(members[method]).astype(bool)
        if y.all() or not y.any():
            continue
        fpr, tpr, _ = roc_curve(y, s)
        positive = fpr > 0
        floor = min(floor, float(fpr[positive].min()) if positive.any() else floor)
        label = "original (plain LiRA)" if method == "original" else method
        style = {"color": "black", "lw": 2.2} if method == RETRAIN else {"lw": 1.4}
        ax.plot(fpr[positive], tpr[positive], label=label, **style)
    grid = np.logspace(np.log10(floor), 0, 50)
    ax.plot(grid, grid, ls=":", color="grey", label="chance")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("false-positive rate (log)")
    ax.set_ylabel("true-positive rate (log)")
    ax.set_title("U-LiRA ROC: closer to chance is better")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


PLOTS = {
    "tradeoff": (tradeoff, "Forgetting vs utility per method, mean ± spread over seeds; the "
                           "star is the retrained model (the target), the dashed line the "
                           "methods' frontier."),
    "pareto": (pareto, "Forgetting against cost per method; the dashed line is the Pareto "
                       "front, the dotted red line the runtime cut-off (a method right of it "
                       "scores 0)."),
    "cost": (cost, "Wall time against the protocol's ranking metric; the dotted line is the "
                   "retrained model's training time. Wall times depend on the machine's load: "
                   "the load average recorded with the run is printed under the plot."),
    "epsilon": (epsilons, "Per-example epsilon over the forget set."),
    "distributions": (distributions, "Per-example distributions on forget and test sets for "
                                     "the original, the retrained model and each method."),
    "roc": (roc, "ROC of the U-LiRA attack (plain LiRA for the original), log-log axes."),
}


def draw_all(run: RunDir, folder: Path) -> dict[str, tuple[Path, str]]:
    """Write every applicable plot as ``folder/NAME.png``; returns name -> (path, caption)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    own = {f.name: (f.draw, f.caption) for f in run.spec.figures}  # the protocol's own
    for name, (draw, caption) in {**PLOTS, **own}.items():
        if name not in run.spec.plots and name not in own:
            continue
        fig = draw(run)
        if fig is None:
            continue
        path = folder / f"{name}.png"
        try:  # never through a link planted in the run directory (obliviate.files)
            write_atomic(path, lambda tmp, fig=fig: fig.savefig(tmp, dpi=110, format="png"),
                         doing=f"drawing {name}.png")
        finally:
            plt.close(fig)
        out[name] = (path, caption)
    return out
