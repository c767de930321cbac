"""ntkuq.book.plots: the scaling figure (labelled log-log panels, fits in the legend) and the markdown table."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from ntkuq.book import TASK_COLORS, TASK_NAMES, scaling_figure, table_markdown  # noqa: E402
from ntkuq.study import fit_power_law, plateau  # noqa: E402

N = np.array([100.0, 200.0, 400.0, 800.0, 1600.0])
CURVES = dict(n=N, mu=2.0 * N ** -0.5, sigma=0.3 * N ** -0.45, mu_err=0.01 * N ** -0.5)
CURVES["eps"] = CURVES["sigma"] / CURVES["mu"]


def test_scaling_figure_panels_are_labelled_log_log():
    fits = dict(mu=fit_power_law(N, CURVES["mu"]), sigma=fit_power_law(N, CURVES["sigma"]),
                plateau=plateau(N, CURVES["eps"]))
    series = [("MNIST NTK", TASK_COLORS["mnist"], "-", CURVES, fits),
              ("MNIST NNGP", TASK_COLORS["mnist"], "--", CURVES, None)]
    fig = scaling_figure(series, title="a title")
    try:
        assert isinstance(fig, matplotlib.figure.Figure)
        axes = [ax for ax in fig.axes if ax.get_visible() and ax.axison]
        assert len(axes) == len(fig.axes) == 3 and fig._suptitle.get_text() == "a title"
        for ax, stat in zip(axes, ("mu", "sigma", "epsilon")):
            assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
            assert "N_\\mathcal{D}" in ax.get_xlabel() and "(dimensionless)" in ax.get_ylabel()
            assert f"\\{stat}_\\mathcal{{L}}" in ax.get_ylabel()
        # the legend, under the panels: plain labels without fits, fitted exponents with them
        texts = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "MNIST NNGP" in texts and any(t.startswith("MNIST NTK") for t in texts)
        joined = " ".join(texts)
        assert "0.500" in joined and "0.450" in joined and "0.050" in joined  # alpha, beta, eps slope
    finally:
        plt.close(fig)
    one = scaling_figure(series[1:], panels=("eps",))
    shown = [ax for ax in one.axes if ax.axison]
    assert len(shown) == 1 and shown[0].get_title() == "coefficient of variation"
    plt.close(one)


def test_task_names_and_colors_cover_the_three_tasks():
    assert set(TASK_COLORS) == set(TASK_NAMES) == {"mnist", "cifar10", "calorimeter"}


def test_table_markdown():
    rows = [dict(task="mnist", alpha=0.51234, alpha_err=0.0123, n=3),
            dict(task="cifar10", alpha=0.4, n=7)]
    text = table_markdown(rows, ["task", "alpha", "n", "missing"], formats={"alpha": "{:.2f}"})
    lines = text.splitlines()
    assert lines[0] == "| task | α (of μ_L) | n | missing |"   # the study's names read as words
    assert lines[1] == "|---|---|---|---|"
    assert lines[2] == "| mnist | 0.51 ± 0.01 | 3 |  |"
    assert lines[3] == "| cifar10 | 0.40 | 7 |  |"
    assert table_markdown([], ["a"]) == "| a |\n|---|"
    assert table_markdown([dict(a=1234.5)], ["a"]).splitlines()[2] == "| 1.23e+03 |"
    assert table_markdown(rows, ["alpha", "n"], headers={"n": "N_D", "alpha": "a"}).splitlines()[0] == "| a | N_D |"


@pytest.mark.parametrize("ls", ["-", "--", ":"])
def test_line_styles_choose_markers(ls):
    fig = scaling_figure([("x", "k", ls, CURVES, None)], panels=("mu",))
    line = fig.axes[0].lines[0]
    assert line.get_marker() == {"-": "o", "--": "s", ":": "^"}[ls]
    plt.close(fig)


@pytest.mark.parametrize("value,err,text", [
    (0.0312, 0.0004, "0.03120 ± 0.00040"), (0.08174, 0.000916, "0.08174 ± 0.00092"),
    (1.2465, 0.0089, "1.2465 ± 0.0089"), (123.4, 5.6, "123.4 ± 5.6"), (0.5, 0.25, "0.50 ± 0.25"),
    (4321.0, 160.0, "4321 ± 160"), (0.0043, 4e-6, "(4.3000 ± 0.0040)e-3"), (0.02, float("nan"), "0.02"),
    (0.5, 4.5e-15, "0.5000 ± 4e-15")])
def test_format_pm_two_significant_digits_of_the_error(value, err, text):
    from ntkuq.book import format_pm
    assert format_pm(value, err) == text


def _saved_width_px(fig):
    import io

    from PIL import Image
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return Image.open(buf).size[0]


@pytest.mark.parametrize("layout", [None, "constrained"])
def test_fit_column_makes_a_wide_figure_readable_in_the_column(layout):
    from matplotlib.text import Text

    from ntkuq.book import COLUMN_INCHES, MIN_FONT_PT, fit_column
    fig, axes = plt.subplots(1, 3, figsize=(11, 4), layout=layout)
    for ax in axes:
        ax.plot([1, 2, 3], label="a label")
        ax.set_xlabel("x (units)")
    axes[-1].legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1))
    if layout is None:
        fig.tight_layout()
    assert _saved_width_px(fig) > 1000
    fit_column(fig)
    assert _saved_width_px(fig) <= 100 * COLUMN_INCHES * 1.01 + 25        # the saved image, padding included
    fig.canvas.draw()
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_text()]
    sizes += [t.get_fontsize() for ax in axes for t in ax.get_xticklabels() + ax.get_yticklabels()]
    assert min(sizes) >= MIN_FONT_PT
    renderer = fig.canvas.get_renderer()                                  # the layout was redone: no panel's
    boxes = [ax.get_tightbbox(renderer) for ax in axes]                   # labels run into its neighbour's
    assert all(left.x1 <= right.x0 + 1 for left, right in zip(boxes, boxes[1:]))
    plt.close(fig)


def test_fit_column_leaves_a_narrow_figure_its_size():
    from ntkuq.book import fit_column
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.plot([1, 2])
    ax.set_title("big enough", fontsize=14)
    fit_column(fig)
    assert tuple(fig.get_size_inches()) == (5, 3)
    assert ax.title.get_fontsize() == 14                                   # only small text grows
    plt.close(fig)


def test_fit_column_refuses_a_column_without_width():
    from ntkuq.book import fit_column
    fig, _ = plt.subplots()
    with pytest.raises(ValueError, match="column_inches"):
        fit_column(fig, column_inches=0)
    plt.close(fig)


def test_ensembles_stopped_at_their_cap_are_ringed_with_one_legend_entry():
    from ntkuq.book import NOT_CONVERGED
    stopped = dict(CURVES, converged=np.array([True, True, False, True, False]))
    fig = scaling_figure([("a", "k", "-", stopped, None), ("b", "b", "-", stopped, None),
                          ("c", "g", "-", CURVES, None)])
    try:
        for ax in fig.axes:
            rings = [ln for ln in ax.lines if ln.get_markeredgecolor() == "red"]
            assert len(rings) == 2  # one per stopped curve, none for the curve without a rule
            np.testing.assert_array_equal(rings[0].get_xdata(), N[[2, 4]])
        texts = [t.get_text() for t in fig.legends[0].get_texts()]
        assert texts.count(NOT_CONVERGED) == 1 and texts[-1] == NOT_CONVERGED
    finally:
        plt.close(fig)
    plain = scaling_figure([("c", "g", "-", CURVES, None)], panels=("mu",))
    assert NOT_CONVERGED not in [t.get_text() for t in plain.legends[0].get_texts()]
    assert not [ln for ln in plain.axes[0].lines if ln.get_markeredgecolor() == "red"]
    plt.close(plain)


def _trajectory(task="cifar10"):
    steps = np.array([0, 1, 10, 100, 1000, 4000, 16000])
    mu = np.linspace(1.0, 0.1, steps.size)
    return {"task": task, "n_train": 946, "width": 30, "members": 64, "steps": steps.tolist(), "min_steps": 4000,
            "mu": mu.tolist(), "mu_err": (0.01 * mu).tolist(), "eps": (0.1 * mu).tolist(),
            "eps_err": (0.001 * mu).tolist(), "mu_inf": mu.tolist(), "eps_inf": (0.1 * mu).tolist(),
            "mu_limit": 0.1, "eps_limit": 0.01, "warmup": 1000, "train_loss": (0.5 * mu).tolist()}


def test_trajectory_figure_rows_labels_and_legend():
    from ntkuq.book import trajectory_figure
    fig = trajectory_figure([(_trajectory(), 4000), (_trajectory("mnist"), None)])
    axes = fig.get_axes()
    assert len(axes) == 4
    for ax in axes:
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and ax.get_xlabel() == "training steps"
        assert "dimensionless" in ax.get_ylabel() and "N_" in ax.get_title()
        assert all(np.min(line.get_xdata()) >= 1 for line in ax.get_lines() if len(line.get_xdata()) > 2)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["trained ensemble, width 30, M = 64", "infinite width after the same steps",
                      "infinite width at $t = \\infty$", "the rule's first check", "the stopping rule passes"]
    plt.close(fig)
    fig = trajectory_figure([(_trajectory(), None)])  # no pass: no such legend entry
    assert "the stopping rule passes" not in [t.get_text() for t in fig.legends[0].get_texts()]
    plt.close(fig)


def test_trajectory_summary_says_where_the_rule_passed_and_what_training_on_did():
    from ntkuq.book import trajectory_summary
    rec = _trajectory()  # steps 0, 1, 10, 100, 1000, 4000, 16000; first check at 4,000
    text = trajectory_summary(rec, 4000)
    assert text.startswith("On CIFAR-10 at N_D = 946 the rule passes at step 4,000 (its first check)")
    assert "trained on to 16,000 steps" in text and f"factor of {rec['eps'][-1] / rec['eps'][5]:.2f}" in text
    later = trajectory_summary(dict(rec, min_steps=1000, warmup=0), 4000)  # passes after its first check
    assert "at the rule's first check (step 1,000)" in later and "(its first check)" not in later
    assert f"factor of {rec['eps'][5] / rec['eps'][4]:.2f} between the two" in later
    none = trajectory_summary(rec, None)
    assert "does not pass within the 16,000 steps" in none and "first check (step 4,000)" in none
    assert "trained on" not in trajectory_summary(rec, 16000)
    with pytest.raises(ValueError, match="passed"):
        trajectory_summary(rec, 5)
