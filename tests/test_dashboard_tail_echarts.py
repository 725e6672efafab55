"""The Explore view's tail chart (``dashboard.tail_echarts``), checked on the ECharts option: the
data it draws is the data given, rows that never overlap and a legend above them, the same rows,
names and salience scale as the Plotly figure of the export, epochs shaded in their colours, every
salience row labelled and named in its cells' tooltips, a name that says which frames it shows,
larger fonts on request."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from dashboard.figure_style import OBSERVED_COLOR, PREDICTED_COLOR, SALIENCE_COLORSCALE, epoch_color
from dashboard.figures import EpochSpan, tail_figure
from dashboard.tail_echarts import PRESENTATION_FONT, TOP_PX, tail_echart

NAMES = ["theta_00", "theta_01", "theta_02"]


def _data(n: int = 40, k: int = 3, heat_rows: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = 100.0 + np.arange(n) / 1.1
    obs = rng.normal(size=(n, k)).astype(np.float32)
    return {
        "times_s": t,
        "observed": obs,
        "predicted": (obs * 0.8).astype(np.float32),
        "names": NAMES[:k],
        "units": ["rad"] * k,
        "epochs": [EpochSpan("rest", 90.0, 110.0), EpochSpan("left", 110.0, 120.0),
                   EpochSpan("right", 500.0, 510.0)],  # fmt: skip
        "heatmap": rng.random((n, heat_rows)).astype(np.float32),
        "heatmap_labels": [f"#{i + 1} n{100 + i} Rhombomere_{i}" for i in range(heat_rows)],
        "title": "Tail angles: observed vs predicted · rows below: IG salience · 3 · left",
    }


def _luminance(color: str) -> float:
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_the_chart_draws_the_given_frames_per_channel():
    d = _data()
    c = tail_echart(**d)
    frame = c.option["dataset"][0]["source"]
    np.testing.assert_allclose(frame["t"], d["times_s"], atol=1e-4)
    for i in range(3):
        np.testing.assert_array_equal(frame[f"observed {i}"], d["observed"][:, i])
        np.testing.assert_array_equal(frame[f"predicted {i}"], d["predicted"][:, i])
    lines = [s for s in c.option["series"] if s["type"] == "line"]
    assert [(s["name"], s["xAxisIndex"], s["encode"]["y"]) for s in lines] == [
        (name, i, f"{name} {i}") for name in ("observed", "predicted") for i in range(3)
    ]
    assert {s["name"]: s["color"] for s in lines} == {
        "observed": OBSERVED_COLOR,
        "predicted": PREDICTED_COLOR,
    }
    # the channel picker: their sum, or one channel
    total = tail_echart(**(d | {"channel": "sum"})).option["dataset"][0]["source"]
    np.testing.assert_allclose(total["observed 0"], d["observed"].sum(axis=1), rtol=1e-5)
    one = tail_echart(**(d | {"channel": "2"})).option
    np.testing.assert_array_equal(one["dataset"][0]["source"]["observed 0"], d["observed"][:, 2])
    assert [a["name"] for a in one["yAxis"][:-1]] == ["theta_02 (rad)"]
    # without predictions: the observed tail alone
    alone = tail_echart(**(d | {"predicted": None})).option
    assert {s["name"] for s in alone["series"] if s["type"] == "line"} == {"observed"}
    assert alone["legend"]["data"] == ["observed"]


def test_rows_never_overlap_and_the_legend_sits_above_them():
    for kw in ({}, {"heatmap": None}, {"channel": "sum"}, {"font_scale": PRESENTATION_FONT}):
        c = tail_echart(**(_data() | kw))
        grids = c.option["grid"]
        tops = [g["top"] for g in grids]
        assert tops[0] >= TOP_PX  # the title, the legend and the epoch names above the rows
        for a, b in zip(grids, grids[1:], strict=False):
            assert a["top"] + a["height"] < b["top"], grids
        assert grids[-1]["top"] + grids[-1]["height"] + 30 <= c.height  # the time axis below
        # one axis pair per row, each on its own grid
        assert [a["gridIndex"] for a in c.option["xAxis"]] == list(range(len(grids)))
        assert [a["gridIndex"] for a in c.option["yAxis"]] == list(range(len(grids)))
        # only the bottom axis is labelled with the time
        named = [a for a in c.option["xAxis"] if a.get("name")]
        assert named == [c.option["xAxis"][-1]] and named[0]["name"] == "time (s)"


def test_the_same_rows_and_names_as_the_exported_plotly_figure():
    d = _data()
    option = tail_echart(**d).option
    fig = tail_figure(**d)
    plotly_titles = [fig.layout[f"yaxis{'' if i == 0 else i + 1}"].title.text for i in range(4)]
    assert [a["name"] for a in option["yAxis"]] == plotly_titles
    assert {s["name"] for s in option["series"]} == {t.name for t in fig.data}
    assert option["title"]["text"] == fig.layout.title.text


def test_salience_rows_every_one_labelled_first_on_top_darkest_for_zero():
    d = _data()
    option = tail_echart(**d).option
    (heat,) = [s for s in option["series"] if s["type"] == "heatmap"]
    cells = option["dataset"][heat["datasetIndex"]]["source"]
    assert len(cells) == d["heatmap"].size
    grid = pd.pivot_table(cells, index="frame", columns="neuron", values="salience")
    np.testing.assert_array_equal(grid.to_numpy(), d["heatmap"])
    y = option["yAxis"][heat["yAxisIndex"]]
    assert y["data"] == d["heatmap_labels"] and y["inverse"]  # the most salient on top
    assert y["axisLabel"]["interval"] == 0  # every row labelled
    # the least salient cells are the darkest, with the app's one salience scale
    vm = option["visualMap"]
    assert vm["seriesIndex"] == option["series"].index(heat)
    assert vm["min"] == 0 and vm["max"] == pytest.approx(float(d["heatmap"].max()))
    colors = vm["inRange"]["color"]
    assert colors == [c for _, c in SALIENCE_COLORSCALE]
    assert _luminance(colors[0]) == min(map(_luminance, colors))
    # the rows are tall enough for every label, and the margin fits the longest label
    grid_px = option["grid"][heat["yAxisIndex"]]["height"]
    assert grid_px / len(d["heatmap_labels"]) >= 12
    assert option["grid"][0]["left"] >= 6 * max(map(len, d["heatmap_labels"]))


def test_a_salience_cells_tooltip_names_its_neuron_time_and_value():
    d = _data(n=5, heat_rows=3)
    option = tail_echart(**d).option
    (heat,) = [s for s in option["series"] if s["type"] == "heatmap"]
    cells = option["dataset"][heat["datasetIndex"]]["source"]
    assert heat["encode"]["itemName"] == "neuron"  # the tooltip's name line
    assert heat["encode"]["tooltip"] == ["time (s)", "salience"]
    # the cell of frame 2 and row 1: its neuron's label, its frame's time, its value
    cell = cells[(cells["frame"] == 2) & (cells["neuron"] == d["heatmap_labels"][1])]
    assert len(cell) == 1
    assert cell["time (s)"].iloc[0] == pytest.approx(d["times_s"][2], abs=1e-4)
    assert cell["salience"].iloc[0] == d["heatmap"][2, 1]
    # the labels go once, not once a cell
    assert list(cells["neuron"].cat.categories) == d["heatmap_labels"]
    # a long range: a column holds a run of frames, and says from when
    long = tail_echart(**_data(n=1300, heat_rows=2)).option
    (hm,) = [s for s in long["series"] if s["type"] == "heatmap"]
    assert hm["encode"]["tooltip"] == ["from (s)", "salience"]


def test_a_rows_tooltip_is_headed_by_its_channel_and_time():
    d = _data(k=3)
    option = tail_echart(**d).option
    heads = [ax["axisPointer"]["label"]["formatter"] for ax in option["xAxis"][:3]]
    assert heads == [f"{n} (rad) · {{value}} s" for n in NAMES]
    assert all(ax["axisPointer"]["label"]["precision"] == 2 for ax in option["xAxis"][:3])
    assert "axisPointer" not in option  # a row's tooltip holds that row alone
    summed = tail_echart(**(d | {"channel": "sum"})).option
    assert summed["xAxis"][0]["axisPointer"]["label"]["formatter"].startswith("sum")


def test_two_salience_rows_of_one_label_stay_two_rows():
    d = _data(n=4, heat_rows=2) | {"heatmap_labels": ["Hc", "Hc"]}
    option = tail_echart(**d).option
    (heat,) = [s for s in option["series"] if s["type"] == "heatmap"]
    labels = option["yAxis"][heat["yAxisIndex"]]["data"]
    assert labels == ["1. Hc", "2. Hc"]
    cells = option["dataset"][heat["datasetIndex"]]["source"]
    assert set(cells["neuron"]) == set(labels)
    (plotly_heat,) = [t for t in tail_figure(**d).data if t.type == "heatmap"]
    assert list(plotly_heat.y) == labels  # the exported figure: the same two rows
    with pytest.raises(ValueError, match="expected 2 salience row labels .* found 1"):
        tail_echart(**(d | {"heatmap_labels": ["Hc"]}))


def test_epochs_are_shaded_in_their_colours_and_named_once():
    d = _data()
    option = tail_echart(**d).option
    shaded = [s for s in option["series"] if "markArea" in s]
    assert [s["name"] for s in shaded] == ["observed"] * 3  # one per row
    areas = shaded[0]["markArea"]["data"]
    t0, t1 = d["times_s"][0], d["times_s"][-1]
    # clipped to the frames shown; the epoch beyond them is left out
    assert [(a["name"], a["xAxis"], b["xAxis"]) for a, b in areas] == [
        ("rest", pytest.approx(t0), 110.0),
        ("left", 110.0, 120.0),
    ]
    assert [a["itemStyle"]["color"] for a, _ in areas] == [epoch_color("rest"), epoch_color("left")]
    assert shaded[0]["markArea"]["label"]["show"]
    assert not any(s["markArea"]["label"]["show"] for s in shaded[1:])
    assert t1 < 500.0


def test_its_name_says_what_and_which_frames():
    d = _data()
    c = tail_echart(**d)
    assert c.alt == f"{d['title']}: 40 frames from 100.00 s to {d['times_s'][-1]:.2f} s"
    empty = tail_echart(**(d | {"times_s": np.zeros(0), "observed": np.zeros((0, 3)),
                                "predicted": None, "heatmap": None}))  # fmt: skip
    assert empty.alt.endswith(": 0 frames")


def test_presentation_fonts_are_larger_everywhere():
    d = _data()
    base, big = (tail_echart(**d, font_scale=s) for s in (1.0, PRESENTATION_FONT))

    def sizes(option) -> list[int]:
        found = []

        def walk(x) -> None:
            if isinstance(x, dict):
                found.extend(v for k, v in x.items() if k == "fontSize")
                for v in x.values():
                    walk(v)
            elif isinstance(x, list):
                for v in x:
                    walk(v)

        walk({k: v for k, v in option.items() if k != "dataset"})
        return found

    a, b = sizes(base.option), sizes(big.option)
    assert len(a) == len(b) >= 10
    assert all(y > x for x, y in zip(a, b, strict=True))
    assert big.height > base.height


def test_the_option_is_plain_json_apart_from_its_data_frames():
    option = tail_echart(**_data()).option
    rest = {k: v for k, v in option.items() if k != "dataset"}
    assert json.loads(json.dumps(rest)) == rest  # no numpy scalars, no NaN
    assert all(isinstance(d["source"], pd.DataFrame) for d in option["dataset"])


def test_long_ranges_draw_each_run_of_frames_by_its_largest_value():
    from dashboard.tail_echarts import MAX_HEAT_COLUMNS, heat_columns

    n = 3 * MAX_HEAT_COLUMNS
    t = np.arange(n) / 1.1
    heat = np.zeros((n, 4), np.float32)
    heat[n // 2 + 1, 2] = 5.0  # a one-frame peak
    starts, cols = heat_columns(t, heat)
    assert len(starts) == len(cols) == MAX_HEAT_COLUMNS
    np.testing.assert_allclose(starts, t[::3])
    assert cols[(n // 2 + 1) // 3, 2] == 5.0 and cols.sum() == 5.0  # never averaged away
    # a range that does not divide evenly: the last run is shorter, every frame is in one run
    starts, cols = heat_columns(np.arange(n + 1.0), np.ones((n + 1, 1)))
    assert len(starts) <= MAX_HEAT_COLUMNS and starts[0] == 0 and cols.shape == (len(starts), 1)
    # up to the limit: a column per frame
    same_t, same = heat_columns(t[:MAX_HEAT_COLUMNS], heat[:MAX_HEAT_COLUMNS])
    np.testing.assert_array_equal(same, heat[:MAX_HEAT_COLUMNS])
    np.testing.assert_array_equal(same_t, t[:MAX_HEAT_COLUMNS])
    # the chart: the columns, labelled by their first frame's time (the heatmap's cells are
    # labelled by column; the pivot puts them back in place)
    d = _data(n=n)
    option = tail_echart(**d).option
    (hm,) = [s for s in option["series"] if s["type"] == "heatmap"]
    cells = option["dataset"][hm["datasetIndex"]]["source"]
    assert len(cells) == MAX_HEAT_COLUMNS * 20
    x = option["xAxis"][hm["xAxisIndex"]]
    assert x["data"] == [f"{v:.1f}" for v in d["times_s"][::3]]
    # about ten time labels, the interval fixed here (ECharts would measure all 600 labels)
    assert 8 <= MAX_HEAT_COLUMNS / (x["axisLabel"]["interval"] + 1) <= 10
    grid = pd.pivot_table(cells, index="frame", columns="neuron", values="salience")
    np.testing.assert_array_equal(grid.to_numpy(), heat_columns(d["times_s"], d["heatmap"])[1])
