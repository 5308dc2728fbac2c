"""Flamegraphs on synthetic stacks: widths, differential colours, escaping, icicle, speedscope."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workbench.profiling import flamegraph

SVG = "{http://www.w3.org/2000/svg}"


def frames(svg: str) -> dict[str, ET.Element]:
    """Each drawn frame's <rect>, keyed by the name its tooltip starts with."""
    root = ET.fromstring(svg)
    out = {}
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        rect = group.find(f"{SVG}rect")
        assert title is not None and rect is not None
        name = re.split(r" \(\d[\d,]* samples|: \d", title.text or "")[0]
        out[name] = rect
    return out


def width(rect: ET.Element) -> float:
    return float(rect.attrib["width"])


def rgb(rect: ET.Element) -> tuple[int, ...]:
    match = re.fullmatch(r"rgb\((\d+),(\d+),(\d+)\)", rect.attrib["fill"])
    assert match, rect.attrib["fill"]
    return tuple(int(v) for v in match.groups())


STACKS = {
    "main (app.py);parse (app.py)": 30,
    "main (app.py);embed (app.py)": 10,
    "idle (app.py)": 20,
}


def test_widths_proportional_to_samples() -> None:
    drawn = frames(flamegraph.flamegraph_svg(STACKS, title="t", width=1220))
    assert set(drawn) == {
        "all",
        "main (app.py)",
        "parse (app.py)",
        "embed (app.py)",
        "idle (app.py)",
    }
    unit = width(drawn["all"]) / 60
    assert width(drawn["all"]) == pytest.approx(1200)
    for name, samples in [
        ("main (app.py)", 40),
        ("parse (app.py)", 30),
        ("embed (app.py)", 10),
        ("idle (app.py)", 20),
    ]:
        assert width(drawn[name]) == pytest.approx(samples * unit, abs=0.01)
    # children sit on their parent, one row up; siblings do not overlap
    main, parse, embed = drawn["main (app.py)"], drawn["parse (app.py)"], drawn["embed (app.py)"]
    assert float(parse.attrib["y"]) < float(main.attrib["y"])
    assert float(embed.attrib["x"]) + width(embed) <= float(parse.attrib["x"]) + 0.01


def test_tooltips_carry_samples_and_share() -> None:
    svg = flamegraph.flamegraph_svg(STACKS, title="t")
    titles = [t.text for t in ET.fromstring(svg).iter(f"{SVG}title")]
    assert "parse (app.py) (30 samples, 50.00%)" in titles


def test_narrow_frames_dropped() -> None:
    stacks = {"a;wide": 10_000, "a;sliver": 5}
    drawn = frames(flamegraph.flamegraph_svg(stacks, title="t"))
    assert "wide" in drawn and "sliver" not in drawn
    assert "sliver" in frames(flamegraph.flamegraph_svg(stacks, title="t", min_share=0))


def test_names_are_escaped() -> None:
    evil = '<script>alert("x")</script> (a&b.py)'
    svg = flamegraph.flamegraph_svg({f"main;{evil}": 5}, title="<b>title</b>")
    assert "<script>" not in svg and "<b>" not in svg
    root = ET.fromstring(svg)  # still well-formed XML
    assert any(evil in (t.text or "") for t in root.iter(f"{SVG}title"))
    assert root.find(f"{SVG}script") is None


def test_empty_profile_still_renders() -> None:
    svg = flamegraph.flamegraph_svg({}, title="nothing")
    assert "no samples" in svg
    ET.fromstring(svg)


def test_differential_colours_by_normalised_share() -> None:
    base = {"main;grew": 10, "main;shrank": 10, "main;same": 20}
    cand = {"main;grew": 60, "main;shrank": 0, "main;same": 40, "main;new": 20}
    # shares: grew 25% -> 50%, shrank 25% -> 0 (not drawn), same 50% -> 33%, new 0 -> 17%
    drawn = frames(flamegraph.differential_svg(base, cand, title="d"))
    red, blue = rgb(drawn["grew"]), rgb(drawn["same"])
    assert red[0] == 255 and red[1] < 255 and red[2] < 255
    assert blue[2] == 255 and blue[0] < 255
    assert rgb(drawn["new"])[0] == 255
    assert "shrank" not in drawn  # widths come from the candidate
    assert rgb(drawn["grew"])[1] < rgb(drawn["new"])[1]  # bigger growth, deeper red
    assert width(drawn["grew"]) == pytest.approx(3 * width(drawn["new"]), abs=0.01)
    assert rgb(drawn["all"]) == rgb(drawn["main"])  # 100% -> 100%: neutral


def test_differential_ignores_sample_count_scale() -> None:
    base = {"a;b": 10, "a;c": 30}
    cand = {"a;b": 100, "a;c": 300}  # ten times longer run, same shape
    drawn = frames(flamegraph.differential_svg(base, cand, title="d"))
    colours = {rgb(r) for r in drawn.values()}
    assert len(colours) == 1 and min(next(iter(colours))) > 240


def test_icicle_ids_and_parents_consistent() -> None:
    figure = flamegraph.icicle_figure(STACKS, title="icicle")
    trace = figure.data[0]
    ids, parents, values = list(trace.ids), list(trace.parents), list(trace.values)
    assert len(set(ids)) == len(ids)
    assert parents.count("") == 1 and values[parents.index("")] == 60
    index = {i: n for n, i in enumerate(ids)}
    paths: dict[str, str] = {}
    for node, parent, label in zip(ids, parents, trace.labels, strict=True):
        if parent:
            assert index[parent] < index[node]  # a parent comes before its children
            paths[node] = f"{paths[parent]};{label}"
            children = [values[n] for n, p in enumerate(parents) if p == node]
            assert sum(children) <= values[index[node]]
        else:
            paths[node] = label
    assert trace.branchvalues == "total"
    by_path = {path: values[index[node]] for node, path in paths.items()}
    assert by_path["all;main (app.py);parse (app.py)"] == 30
    # ids stay short however deep the stack: a node's id does not spell out its path
    assert max(len(i) for i in ids) <= len(str(len(ids)))


def test_speedscope_shape_and_weights() -> None:
    doc = flamegraph.speedscope_json(STACKS, name="demo", rate_hz=100)
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    frame_list = doc["shared"]["frames"]
    assert {"name": "parse", "file": "app.py"} in frame_list
    [profile] = doc["profiles"]
    assert profile["type"] == "sampled" and profile["unit"] == "seconds"
    assert len(profile["samples"]) == len(profile["weights"]) == 3
    assert sum(profile["weights"]) * 100 == pytest.approx(sum(STACKS.values()))
    assert profile["endValue"] == pytest.approx(0.6)
    for sample in profile["samples"]:
        assert all(0 <= i < len(frame_list) for i in sample)
    main = frame_list.index({"name": "main", "file": "app.py"})
    assert [s[0] for s in profile["samples"]].count(main) == 2  # root first


def test_speedscope_rejects_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        flamegraph.speedscope_json(STACKS, name="x", rate_hz=0)


_name = st.text("abcxyz_<>. ", min_size=1, max_size=8).map(str.strip).filter(bool)
_frame = st.builds("{} ({})".format, _name, st.text("abc/._", min_size=1, max_size=8))


@given(
    st.dictionaries(st.lists(_frame, min_size=1, max_size=5).map(";".join), st.integers(1, 10**6))
)
def test_collapsed_round_trip(stacks: dict[str, int]) -> None:
    assert flamegraph.parse_collapsed(flamegraph.format_collapsed(stacks)) == stacks


def test_parse_collapsed_adds_repeats_and_skips_junk() -> None:
    text = "a;b 3\na;b 2\n\nnot a count\n 1\n"
    assert flamegraph.parse_collapsed(text) == {"a;b": 5, "": 1}
