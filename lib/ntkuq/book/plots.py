"""Figures shared by the scaling chapters: mu_L, sigma_L and eps_L against N_D on log-log axes."""
from __future__ import annotations

import textwrap
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

TASK_COLORS = {"mnist": "tab:blue", "cifar10": "tab:red", "calorimeter": "tab:green"}
TASK_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "calorimeter": "calorimeter"}


COLUMN_INCHES = 6.3
"""The book's text column (633 px in a 1280 px window) in inches of a 100 dpi figure: wider images are shrunk."""
MIN_FONT_PT = 9.5
"""The smallest font of a figure drawn `COLUMN_INCHES` wide: 9.5 pt at 100 dpi is 13 px, 9.9 pt as shown."""


def fit_column(fig, column_inches: float = COLUMN_INCHES, min_pt: float = MIN_FONT_PT, **tight):
    """Make a figure readable in the book's column: no text below `min_pt`, and no wider than the column.

    A figure wider than the column is shown shrunk, and its text with it (an 11-inch figure's 10 pt legend
    shows at 6.7 pt). So every text (titles, labels, tick labels, legends, annotations) is raised to at least
    `min_pt`, and the figure is shrunk until what is saved (its tight bounding box, legends outside the axes
    included) is at most `column_inches` wide, its layout redone: by its layout engine if it has one
    (e.g. `layout="constrained"`), else by `tight_layout`.

    Args:
        fig: the matplotlib figure.
        column_inches: the width it may take, in inches (default `COLUMN_INCHES`).
        min_pt: the smallest font size, in points (default `MIN_FONT_PT`).
        **tight: keyword arguments of `Figure.tight_layout` (e.g. `rect`), for a figure without a layout
            engine.

    Returns:
        The figure, changed in place.

    Raises:
        ValueError: when `column_inches` or `min_pt` is not positive.
    """
    from matplotlib.layout_engine import PlaceHolderLayoutEngine
    from matplotlib.text import Text

    def raise_fonts():
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                for which in ("major", "minor"):
                    ticks = axis.get_ticklabels(which=which)
                    if ticks and ticks[0].get_fontsize() < min_pt:
                        axis.set_tick_params(which=which, labelsize=min_pt)
        for t in fig.findobj(Text):
            if t.get_text() and t.get_fontsize() < min_pt:
                t.set_fontsize(min_pt)

    if not (column_inches > 0 and min_pt > 0):
        raise ValueError(f"column_inches and min_pt: expected positive numbers, got {column_inches!r}, {min_pt!r}")
    engine = fig.get_layout_engine()
    if isinstance(engine, PlaceHolderLayoutEngine):   # what a past fig.tight_layout() leaves: no layout of its own
        engine = None

    def layout():
        if engine is not None:
            engine.execute(fig)
        else:
            with warnings.catch_warnings():   # colorbar axes: tight_layout does what it can, as the figure's own did
                warnings.filterwarnings("ignore", "This figure includes Axes that are not compatible")
                fig.tight_layout(**tight)
        fig.canvas.draw()

    fig.canvas.draw()   # tick labels exist only once drawn
    raise_fonts()       # once: set_tick_params and set_fontsize persist through resizing
    for _ in range(6):
        layout()
        width = fig.get_tightbbox(fig.canvas.get_renderer()).width
        if width <= column_inches * 1.01:
            return fig
        w, h = fig.get_size_inches()
        shrink = max(column_inches / width, 0.6)
        fig.set_size_inches(w * shrink, h * (1 + shrink) / 2)   # the height shrinks less: text needs room
    layout()            # text that cannot fit: the smallest size tried, laid out
    return fig


def format_pm(value: float, err: float) -> str:
    """'value +- err' with the error to two significant digits and the value to the same decimals.

    Never prints a zero error: 0.0312 +- 0.0004 stays '0.03120 ± 0.00040', not '0.03 ± 0.00'; errors below
    1e-6 share a power of ten with the value: '(4.3000 ± 0.0040)e-3'; an error below 1e-5 of the value (an
    exact number) is shown as '0.5000 ± 5e-15'.

    Args:
        value: the number.
        err: its standard error; without a finite positive error the value alone is printed (3 significant
            digits).

    Returns:
        The text 'value ± err'.
    """
    if not (np.isfinite(err) and err > 0):
        return f"{value:.3g}"
    decimals = max(0, 1 - int(np.floor(np.log10(err))))
    if value != 0 and err < 1e-5 * abs(value):  # an error far below the value's precision (exact values)
        return (f"{value:.4f}" if abs(value) >= 1e-3 else f"{value:.4e}") + f" ± {err:.0e}"
    if decimals > 6:  # a tiny error: one power of ten for both, '(4.3000 ± 0.0040)e-3'
        exp = int(np.floor(np.log10(abs(value)))) if value != 0 else int(np.floor(np.log10(err)))
        scale = 10.0 ** exp
        digits = max(0, 1 - int(np.floor(np.log10(err / scale))))
        return f"({value / scale:.{digits}f} ± {err / scale:.{digits}f})e{exp}"
    return f"{value:.{decimals}f} ± {err:.{decimals}f}"


def _log_axis(axis):
    """Log axis with ticks at 1, 2, 5 x 10^k labelled plainly, and unlabelled minor ticks.

    Only at 10^k where the data span more than two decades, so that the labels never run into each other.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = sorted(axis.get_view_interval())
    wide = lo > 0 and hi / lo > 10**2.3
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def scaling_figure(series: Sequence[Tuple[str, str, str, Dict[str, np.ndarray], Optional[dict]]],
                   panels: Sequence[str] = ("mu", "sigma", "eps"), title: str = ""):
    """One panel per statistic, two per row (a last panel alone spans the row), the legend with the fits below.

    Sized for the book's column (`COLUMN_INCHES`): a fit's exponents and the slope of eps_L are written into
    the legend as value +- error, up to three entries per row under the panels.  Points whose ensembles
    stopped at the stopping rule's cap (a curve's 'converged' from `ntkuq.study.curves`) are ringed in red,
    with one legend entry (`NOT_CONVERGED`).

    Args:
        series: (label, color, linestyle, curves, fits or None) per curve.
        panels: the statistics, one panel each (default "mu", "sigma", "eps").
        title: the figure's title (default none).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    ylabels = {"mu": r"$\mu_\mathcal{L}$", "sigma": r"$\sigma_\mathcal{L}$",
               "eps": r"$\epsilon_\mathcal{L} = \sigma_\mathcal{L}/\mu_\mathcal{L}$"}
    titles = {"mu": "mean of the test loss", "sigma": "standard deviation of the test loss",
              "eps": "coefficient of variation"}
    rows = [list(panels[i:i + 2]) for i in range(0, len(panels), 2)]
    mosaic = [r if len(r) == 2 else r * 2 for r in rows]      # a lone last panel spans its row
    ncol = min(3, len(series))
    fig, axd = plt.subplot_mosaic(mosaic, figsize=(COLUMN_INCHES, 2.6 * len(rows) + 1.4), layout="constrained")
    handles, ring_handle = [], None
    for stat in panels:
        ax = axd[stat]
        for label, color, ls, c, f in series:
            marker, face = {"-": ("o", color), "--": ("s", "white"), ":": ("^", "white")}.get(ls, ("o", color))
            if f is not None and stat in ("mu", "sigma"):
                grid = np.geomspace(c["n"].min(), c["n"].max(), 50)
                ax.plot(grid, f[stat](grid), color=color, ls=ls, lw=1, alpha=0.7)
            h = ax.errorbar(c["n"], c[stat], yerr=c.get(f"{stat}_err"), color=color, ls="none" if f else ls,
                            marker=marker, mfc=face, ms=4, capsize=2)
            if stat == panels[0]:
                lab = label
                if f is not None:
                    lines = [label, rf"$\alpha$ = {format_pm(f['mu'].exponent, f['mu'].exponent_err)}",
                             rf"$\beta$ = {format_pm(f['sigma'].exponent, f['sigma'].exponent_err)}"]
                    if "plateau" in f:
                        p = f["plateau"]
                        lines.append(rf"$\epsilon_\mathcal{{L}}$ slope {format_pm(p.slope, p.slope_err)}")
                    lab = "\n".join(lines)
                handles.append((h, lab))
            stopped = ~np.asarray(c.get("converged", np.ones(len(c["n"]), bool)), bool)
            if stopped.any():  # ensembles stopped at the stopping rule's cap: ringed, one legend entry for all
                ring = ax.plot(c["n"][stopped], c[stat][stopped], ls="none", marker="o", ms=10, mfc="none",
                               mec="red", mew=1.3)[0]
                ring_handle = ring_handle or ring
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.xaxis)
        _log_axis(ax.yaxis)
        ax.set_title(titles.get(stat, stat), fontsize=10)
        ax.set_xlabel(r"training-set size $N_\mathcal{D}$")
        ax.set_ylabel(ylabels[stat] + " (dimensionless)", fontsize=9.5)
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", alpha=0.1)
    if ring_handle is not None:
        handles.append((ring_handle, NOT_CONVERGED))
    for cols in range(ncol, 0, -1):   # three entries a row, fewer where long labels would overflow the column
        legend = fig.legend([h for h, _ in handles], [lab for _, lab in handles], loc="outside lower center",
                            ncol=cols, fontsize=9.5, frameon=False, title_fontsize=9.5, handlelength=1.0,
                            handletextpad=0.4, columnspacing=0.8, borderaxespad=0.2,
                            title="fits: $\\mu_\\mathcal{L}\\propto N_\\mathcal{D}^{-\\alpha}$, "
                            "$\\sigma_\\mathcal{L}\\propto N_\\mathcal{D}^{-\\beta}$")
        fig.canvas.draw()
        if cols == 1 or legend.get_window_extent().width <= COLUMN_INCHES * fig.dpi:
            break
        legend.remove()
    fig.set_size_inches(COLUMN_INCHES, 2.6 * len(rows) + 0.1 * 4 * -(-len(handles) // cols) + 0.6)
    if title:
        fig.suptitle("\n".join(textwrap.wrap(title, 60)))   # a title wider than the column would shrink it all
    return fig


NOT_CONVERGED = "not converged by\nthe stopping rule"
"""The legend entry of the red rings that `scaling_figure` draws around ensembles stopped at their cap."""

HEADERS: Dict[str, str] = {
    "alpha": "α (of μ_L)",
    "beta": "β (of σ_L)",
    "eps_slope": "slope of ε_L, largest decade",
    "eps_plateau": "mean ε_L, largest decade",
    "last_slope": "slope of ε_L, two largest N_D",
    "decade": "largest decade of N_D",
    "eps ratio": "ε_L finite / infinite",
    "draws": "draws",
    "not converged": "not converged (N_D)",
}
"""Readable headers for the column names that the study's rows use (`ntkuq.study.fit_row`)."""


def table_markdown(rows: List[dict], columns: Sequence[str], formats: Optional[Dict[str, str]] = None,
                   headers: Optional[Dict[str, str]] = None) -> str:
    """A markdown table of rows (dicts); value +- error where a column has a matching *_err column.

    Args:
        rows: the table's rows, column name -> value (missing values are left empty).
        columns: the columns shown, in order.
        formats: column name -> format string for its float values (default "{:.3g}").
        headers: column name -> the header shown; columns it does not name use `HEADERS`, then their own
            name.

    Returns:
        The table as markdown text.
    """
    formats = formats or {}
    shown = {**HEADERS, **(headers or {})}
    lines = ["| " + " | ".join(shown.get(c, c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v, fmt = r.get(c, ""), formats.get(c, "{:.3g}")
            if isinstance(v, float):
                cell = fmt.format(v)
                if f"{c}_err" in r:
                    err = r[f"{c}_err"]
                    cell = format_pm(v, err) if fmt == "{:.3g}" else cell + " ± " + fmt.format(err)
            else:
                cell = str(v)
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plateau_figure(panels: Sequence[Tuple[str, object, Optional[object]]], test_sizes: Sequence[int],
                   title: str = ""):
    """eps_L against N_D for several test-set sizes n_T, one panel per curve, from `plateau.SplitCurve`s.

    Per n_T the curve's eps_L(n_T) (points and line), its floor sqrt(A / n_T) (dashed, same colour), and the
    population part sqrt(B) (black); with a model, the fitted B(N_D) over its decade (grey) and the onsets
    N_D*(n_T) inside the plotted range (triangles).

    Args:
        panels: (title, curve, model or None) per panel.
        test_sizes: the test-set sizes n_T, one curve each.
        title: the figure's title (default none).

    Returns:
        The matplotlib figure.
    """
    import matplotlib.pyplot as plt

    nrows = len(panels)  # one panel per row, shown at the column's width; the legend beside each panel
    fig, axes = plt.subplots(nrows, 1, figsize=(7.6, 3.0 * nrows), squeeze=False, sharex=True)
    cmap = plt.get_cmap("viridis")
    colors = [cmap(i / max(1, len(test_sizes) - 1) * 0.9) for i in range(len(test_sizes))]
    for ax, (name, c, model) in zip(axes.ravel(), panels):
        for n, col in zip(test_sizes, colors):
            extra = " (beyond $N_T$)" if n > c.n_test else ""
            ax.plot(c.n, c.eps(n), "o-", color=col, ms=3.5, lw=1.2, label=f"$n_T$ = {n:,}{extra}")
            ax.plot(c.n, c.eps_floor(n), "--", color=col, lw=0.9)
            if model is not None:
                onset = model.onset(n)
                if c.n.min() <= onset <= c.n.max():
                    ax.plot([onset], [float(np.sqrt(2 * model.floor(onset) / n))], "v", color=col, ms=7)
        ax.errorbar(c.n, c.eps_population, yerr=0.5 * c.B_err / np.maximum(c.eps_population, 1e-300),
                    fmt="s-", color="black", ms=3.5, lw=1.2, capsize=2, label=r"population, $n_T\to\infty$")
        if model is not None:
            grid = np.geomspace(model.n_lo, model.n_hi, 30)
            ax.plot(grid, np.sqrt(model.population(grid)), color="0.55", lw=3, alpha=0.5, zorder=0,
                    label=rf"fit $B\propto N_\mathcal{{D}}^{{-\gamma}}$, $\gamma$ = "
                          f"{format_pm(model.population.exponent, model.population.exponent_err)}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_axis(ax.xaxis)
        _log_axis(ax.yaxis)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(r"training-set size $N_\mathcal{D}$")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8.5, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
        ax.set_ylabel(r"$\epsilon_\mathcal{L}$ (dimensionless)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def trajectory_figure(panels: Sequence[Tuple[dict, Optional[int]]]):
    """mu_L and eps_L of a trained ensemble against the training steps, beside the infinite width, one row a run.

    Per run (a record of scripts/trajectory.py): the ensemble's mu_L and eps_L with their bootstrap errors
    (points and band), the infinite-width ensemble after the same steps (black line) and at t = infinity
    (dotted), the stopping rule's first check (its minimum steps, grey) and the step where it passes (green),
    if it does within the steps trained.

    Args:
        panels: (record, pass step or None) per run; a record holds 'task', 'n_train', 'width', 'members',
            'steps', 'mu', 'mu_err', 'eps', 'eps_err', 'mu_inf', 'eps_inf', 'mu_limit', 'eps_limit' and
            'min_steps'.

    Returns:
        The matplotlib figure (sized for the column).
    """
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatterSciNotation, LogLocator

    fig, axes = plt.subplots(len(panels), 2, figsize=(COLUMN_INCHES, 2.5 * len(panels) + 1.0), squeeze=False,
                             layout="constrained")
    handles = {}
    for row, (rec, passed) in zip(axes, panels):
        steps = np.asarray(rec["steps"], float)
        keep = steps >= 1  # a log axis: step 0 (the initialization) is left out
        color = TASK_COLORS.get(rec["task"], "tab:purple")
        for ax, stat, label in zip(row, ("mu", "eps"), (r"$\mu_\mathcal{L}$", r"$\epsilon_\mathcal{L}$")):
            y, err = np.asarray(rec[stat], float)[keep], np.asarray(rec[f"{stat}_err"], float)[keep]
            h = ax.errorbar(steps[keep], y, yerr=err, color=color, ls="none", marker="o", ms=3, capsize=1.5)
            ax.fill_between(steps[keep], y - err, y + err, color=color, alpha=0.15, lw=0)
            handles.setdefault(f"trained ensemble, width {rec['width']}, M = {rec['members']}", h)
            handles.setdefault("infinite width after the same steps",
                               ax.plot(steps[keep], np.asarray(rec[f"{stat}_inf"], float)[keep], color="black",
                                       lw=1.2)[0])
            handles.setdefault("infinite width at $t = \\infty$",
                               ax.axhline(rec[f"{stat}_limit"], color="black", ls=":", lw=1.0))
            handles.setdefault("the rule's first check", ax.axvline(rec["min_steps"], color="0.5", ls="--", lw=1.0))
            if passed is not None:
                handles.setdefault("the stopping rule passes", ax.axvline(passed, color="tab:green", lw=1.5))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlim(0.8, 1.25 * steps.max())
            _log_axis(ax.yaxis)
            ax.xaxis.set_major_locator(LogLocator(base=10, numticks=8))
            ax.xaxis.set_major_formatter(LogFormatterSciNotation())  # 10^4, not 10000: short labels at the edge
            ax.set_xlabel("training steps")
            ax.set_ylabel(label + " (dimensionless)", fontsize=9.5)
            ax.set_title(f"{TASK_NAMES.get(rec['task'], rec['task'])}, $N_\\mathcal{{D}}$ = {rec['n_train']:,}",
                         fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
    fig.legend(list(handles.values()), list(handles), loc="outside lower center", ncol=2, fontsize=9.5,
               frameon=False, handlelength=1.5, columnspacing=1.0)
    return fig


__all__ = ["COLUMN_INCHES", "MIN_FONT_PT", "NOT_CONVERGED", "TASK_COLORS", "TASK_NAMES", "fit_column", "format_pm",
           "plateau_figure", "scaling_figure", "table_markdown", "trajectory_figure"]
