"""The dashboard's pure parts: graph layout by depth, chart scaling, escaping and safe
Markdown, redacted settings, launch form values. The pages themselves are tested in a real
browser (tests/integration/test_dashboard.py)."""

from __future__ import annotations

import itertools
import math

import pytest

pytest.importorskip("fastapi")  # the server extra

from gristmill.errors import ParameterError
from gristmill.server.api.launch import LaunchDefaults, check_parameters, parse_form_parameters
from gristmill.server.dashboard import charts, graph, render, views


def test_nodes_are_placed_in_columns_by_their_longest_path() -> None:
    nodes = [graph.Node(id=i, label=i) for i in ("load", "split", "train", "evaluate", "alone")]
    edges = [
        ("load", "split"),
        ("split", "train"),
        ("split", "evaluate"),
        ("train", "evaluate"),
        ("load", "ghost"),  # an unknown node is ignored
    ]
    drawn = graph.layout(nodes, edges)
    depth = {n.id: n.depth for n in drawn.nodes}
    assert depth == {"load": 0, "split": 1, "train": 2, "evaluate": 3, "alone": 0}
    assert len(drawn.edges) == 4
    by_id = drawn.by_id
    assert by_id["load"].x == by_id["alone"].x < by_id["split"].x < by_id["evaluate"].x
    assert by_id["load"].y != by_id["alone"].y  # same column, stacked
    right = max(n.x + n.width for n in drawn.nodes)
    bottom = max(n.y + n.height for n in drawn.nodes)
    assert drawn.width >= right and drawn.height >= bottom
    train_to_evaluate = next(e for e in drawn.edges if e.source == "train")
    assert train_to_evaluate.path.startswith(f"M{by_id['train'].x + by_id['train'].width:.1f},")


def test_a_cycle_does_not_hang_the_layout() -> None:
    assert graph.depths(["a", "b"], [("a", "b"), ("b", "a")]) == {"a": 0, "b": 0}


def test_long_labels_are_cut_to_the_box() -> None:
    node = graph.Node(id="x", label="a_very_long_step_name_that_does_not_fit")
    assert len(node.short_label) == 24 and node.short_label.endswith("…")


def test_ticks_are_round_and_cover_the_range() -> None:
    ticks = charts.nice_ticks(0.117, 0.9)
    assert ticks[0] <= 0.117 and ticks[-1] >= 0.9
    steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1 and steps.pop() in (0.1, 0.2, 0.25, 0.5)
    assert charts.nice_ticks(5, 5)  # one value still gets an axis


def test_a_chart_scales_every_series_into_the_plot() -> None:
    chart = charts.line_chart(
        "loss",
        {"run-a": [(0, 0.9), (1, 0.5), (2, math.nan)], "run-b": [(0, 1.0), (2, 0.25)]},
    )
    assert chart is not None
    assert [line.label for line in chart.lines] == ["run-a", "run-b"]
    assert [line.css for line in chart.lines] == ["series-0", "series-1"]
    assert len(chart.lines[0].dots) == 2  # the NaN point is left out
    for line in chart.lines:
        for x, y, _ in line.dots:
            assert chart.left <= x <= chart.right and chart.top <= y <= chart.bottom
    # the larger value is higher up (smaller y)
    assert chart.lines[1].dots[0][1] < chart.lines[0].dots[0][1]
    assert charts.line_chart("empty", {"a": [], "b": [(1, math.inf)]}) is None


def test_templates_escape_everything_from_the_store() -> None:
    macros = render.environment().get_template("_macros.html").module
    evil = "<script>alert(1)</script>"
    html = str(
        macros.run_rows(
            [
                {
                    "id": "abc",
                    "name": evil,
                    "pipeline": evil,
                    "status": "completed",
                    "created_at": 0.0,
                    "duration": 1.5,
                    "stack": evil,
                    "tags": [evil],
                    "experiment": "e",
                }
            ]
        )
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_markdown_is_rendered_without_raw_html_or_script_links() -> None:
    shown = str(
        render.markdown(
            "# Title\n\n<script>alert(1)</script>\n\n[ok](https://example.org) "
            "[bad](javascript:alert(1)) [data](data:text/html;base64,PHNjcmlwdD4=)"
        )
    )
    assert "<h1>Title</h1>" in shown
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert 'href="https://example.org"' in shown
    assert 'href="javascript' not in shown and 'href="data:' not in shown


def test_only_raster_images_in_base64_become_data_urls() -> None:
    png = {"kind": "image", "media_type": "image/png", "data": "iVBORw0KGgo="}
    assert render.image_src(png) == "data:image/png;base64,iVBORw0KGgo="
    assert render.image_src({**png, "media_type": "image/svg+xml"}) is None
    assert render.image_src({**png, "data": '" onerror="alert(1)'}) is None


def test_secret_looking_settings_are_redacted_but_references_stay() -> None:
    config = {
        "path": "s3://bucket/prefix",
        "password": "hunter2hunter2",
        "nested": {"api_key": "abc", "region": "eu"},
        "token": "{{secret.aws.token}}",
        "empty_secret": "",
    }
    shown = render.redact_config(config)
    assert shown == {
        "path": "s3://bucket/prefix",
        "password": render.REDACTED,
        "nested": {"api_key": render.REDACTED, "region": "eu"},
        "token": "{{secret.aws.token}}",
        "empty_secret": "",
    }


def test_durations_and_values_read_well() -> None:
    assert render.duration(None) == "-"
    assert render.duration(0.0123) == "12 ms"
    assert render.duration(3.25) == "3.2 s"
    assert render.duration(125) == "2 min 5 s"
    assert render.value({"a": [1, 2]}) == '{"a": [1, 2]}'
    assert render.value("x" * 400).endswith("…")


def test_etags_follow_the_payload() -> None:
    assert views.etag_of({"a": 1, "b": 2}) == views.etag_of({"b": 2, "a": 1})
    assert views.etag_of({"a": 1}) != views.etag_of({"a": 2})


def test_run_filter_links_keep_the_filters() -> None:
    wanted = views.RunFilter(pipeline="training", q="wine run", page=2)
    assert wanted.query() == "pipeline=training&q=wine+run&page=2"
    assert wanted.query(page=3).endswith("page=3")
    assert wanted.searching and not views.RunFilter(pipeline="x").searching


def test_form_values_are_json_unless_declared_text() -> None:
    values = parse_form_parameters(
        {"lr": "0.5", "layers": "[1, 2]", "name": "0.5", "note": "plain words"},
        {"lr": "float", "layers": "list", "name": "str", "note": "any"},
    )
    assert values == {"lr": 0.5, "layers": [1, 2], "name": "0.5", "note": "plain words"}


def test_unknown_or_missing_parameters_are_refused_with_a_suggestion() -> None:
    defaults = LaunchDefaults(
        pipeline="training",
        spec_hash="h",
        types={"lr": "float", "data": "str"},
        values={"lr": 0.1, "data": ""},
        required=["data"],
    )
    with pytest.raises(ParameterError, match=r"no parameter 'lrr'.*did you mean 'lr'"):
        check_parameters(defaults, {"lrr": 1, "data": "x"})
    with pytest.raises(ParameterError, match="needs a value for data"):
        check_parameters(defaults, {"lr": 1})
    check_parameters(defaults, {"lr": 0.2, "data": "wine.csv"})
    assert LaunchDefaults("p", "h", {}, {"a": 1.5, "b": "x", "c": [1]}).text_values == {
        "a": "1.5",
        "b": "x",
        "c": "[1]",
    }
