"""Figures shared by the scaling chapters: mu_L, sigma_L and eps_L against N_D on log-log axes."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

TASK_COLORS = {"mnist": "tab:blue", "cifar10": "tab:red", "calorimeter": "tab:green"}
TASK_NAMES = {"mnist": "MNIST", "cifar10": "CIFAR-10", "calorimeter": "calorimeter"}


def scaling_figure(series: Sequence[Tuple[str, str, str, Dict[str, np.ndarray], Optional[dict]]],
                   panels: Sequence[str] = ("mu", "sigma", "eps"), title: str = ""):
    """One panel per statistic; series are (label, color, linestyle, curves, fits or None)."""
    import matplotlib.pyplot as plt

    ylabels = {"mu": r"$\mu_\mathcal{L}$ (mean test loss)", "sigma": r"$\sigma_\mathcal{L}$ (std. of test loss)",
               "eps": r"$\epsilon_\mathcal{L} = \sigma_\mathcal{L}/\mu_\mathcal{L}$"}
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.8), squeeze=False)
    for ax, stat in zip(axes[0], panels):
        for label, color, ls, c, f in series:
            lab = label
            if f is not None and stat in ("mu", "sigma"):
                law = f[stat]
                sym = r"\alpha" if stat == "mu" else r"\beta"
                lab = f"{label}: ${sym}={law.exponent:.3f}\\pm{law.exponent_err:.3f}$"
                grid = np.geomspace(c["n"].min(), c["n"].max(), 50)
                ax.plot(grid, law(grid), color=color, ls=ls, lw=1, alpha=0.7)
            elif f is not None and stat == "eps":
                p = f["plateau"]
                lab = f"{label}: slope ${p.slope:.3f}\\pm{p.slope_err:.3f}$"
            marker, face = {"-": ("o", color), "--": ("s", "white"), ":": ("^", "white")}.get(ls, ("o", color))
            ax.errorbar(c["n"], c[stat], yerr=c.get(f"{stat}_err"), color=color, ls="none" if f else ls,
                        marker=marker, mfc=face, ms=4, capsize=2, label=lab)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"training-set size $N_\mathcal{D}$")
        ax.set_ylabel(ylabels[stat] + " (dimensionless)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def table_markdown(rows: List[dict], columns: Sequence[str], formats: Optional[Dict[str, str]] = None) -> str:
    """A markdown table of rows (dicts); value +- error where a column has a matching *_err column."""
    formats = formats or {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            v, fmt = r.get(c, ""), formats.get(c, "{:.3g}")
            if isinstance(v, float):
                cell = fmt.format(v)
                if f"{c}_err" in r:
                    cell += " ± " + fmt.format(r[f"{c}_err"])
            else:
                cell = str(v)
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
