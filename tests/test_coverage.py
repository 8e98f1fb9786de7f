"""geo/coverage tables (counts by hand), the `minsheng check` CLI end to end, and the shipped sample."""
import json

import pandas as pd
import pytest

from data.bundle import make_bundle
from data.gpkg_store import GpkgStore
from geo.coverage import audit_bundle
from minsheng.cli import main
from minsheng.settings import Band, Settings, sample_path
from test_validate import P, audit, clean_plan, set_geom, box_m

TAGS = ["empty_nest_elderly", "party_member", "veteran"]


def test_grid_table_counts_by_hand():
    t = audit(clean_plan()).grids.set_index("id")
    cols = ["level", "parent_id", "community_id", "buildings", "households", "persons"] + TAGS
    expect = {  # b1(3 hh: 1+2+3 persons) b2(1 hh: 4) in A1; b3(2 hh: 2+2) in A2; b4(1: 1) in B1; b5(2: 3+1) in B2
        "A1": [2, "A", "C1", 2, 4, 10, 2, 1, 1],
        "A2": [2, "A", "C1", 1, 2, 4, 0, 0, 0],
        "B1": [2, "B", "C1", 1, 1, 1, 0, 0, 0],
        "B2": [2, "B", "C1", 1, 2, 4, 0, 1, 0],
        "A": [1, "C1", "C1", 3, 6, 14, 2, 1, 1],
        "B": [1, "C1", "C1", 2, 3, 5, 0, 1, 0],
    }
    for gid, row in expect.items():
        assert [v.item() if hasattr(v, "item") else v for v in t.loc[gid, cols]] == row, gid
    assert t.loc["A", "code"] == P + "0010100"
    assert (t["band"] == "ok").all() and t.loc["A1", "band_low"] == 1 and t.loc["A", "band_high"] == 10


def test_community_rollup_and_totals():
    a = audit(clean_plan())
    c = a.communities.set_index("id")
    assert c.loc["C1", ["level1_grids", "level2_grids", "buildings", "households", "persons"]].tolist() == [2, 4, 5, 9, 19]
    assert c.loc["C1", "empty_nest_elderly"] == 2 and c.loc["C1", "band"] == "ok"
    assert a.totals == {"buildings": 5, "buildings_in_grids": 5, "households": 9, "households_in_grids": 9,
                        "households_unassigned_building": 0, "households_orphan": 0, "persons": 19,
                        "persons_in_grids": 19}


def test_tag_listed_twice_counts_once_and_unknown_tags_ignored():
    plan = clean_plan()
    plan["households"].at[0, "tags"] = ["empty_nest_elderly", "empty_nest_elderly", "martian"]
    t = audit(plan).grids.set_index("id")
    assert t.loc["A1", "empty_nest_elderly"] == 2 and "martian" not in t.columns


def test_settings_bands_are_used_per_level():
    s = Settings(band_level1=Band(7, 9), band_level2=Band(1, 5), band_community=Band(1, 100))
    a = audit(clean_plan(), bands=s)
    assert {p.ids for p in a.problems if p.kind == "out_of_band"} == {("A",), ("B",)}


def _write(tmp_path, plan):
    layers = {k: v for k, v in plan.items()}
    layers["plans"] = pd.DataFrame({"id": ["P1"], "name": ["现行方案"], "status": ["adopted"], "version": [1],
                                    "created_at": ["2026-01-01"], "created_by": ["test"]})
    path = tmp_path / "project.gpkg"
    GpkgStore(path).write_all(make_bundle(layers))
    return path


def test_cli_json_clean_plan_exits_0(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MINSHENG_DATA", raising=False)
    path = _write(tmp_path, clean_plan())
    # the shipped default bands: these tiny grids are all "low"; check the JSON shape first
    rc = main(["check", "--data", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"ok", "problems", "grids"}
    assert rc == 1 and out["ok"] is False
    assert {p["kind"] for p in out["problems"]} == {"out_of_band"}
    assert all(set(p) == {"kind", "ids", "detail"} for p in out["problems"])
    g = {r["id"]: r for r in out["grids"]}
    assert g["A1"]["households"] == 4 and g["A1"]["buildings"] == 2 and g["A1"]["persons"] == 10
    assert g["A1"]["level"] == 2 and g["A1"]["band"] == "low" and g["A1"]["party_member"] == 1
    assert "low_income" not in g["A1"]  # sensitive key groups are not printed


def test_cli_exit_codes_and_no_personal_data(tmp_path, capsys, monkeypatch):
    plan = clean_plan()
    # scale households so the default bands (community 1,100-2,400; L1 300-800; L2 80-300) are met
    per_grid = {"b1": 200, "b2": 80, "b3": 280, "b4": 280, "b5": 280}  # L2 280, L1 560, community 1,120
    rows = [{"id": f"{b}-{i}", "building_id": b, "persons": 2, "tags": [], "head_name": "王某", "phone": "13912345678"}
            for b, n in per_grid.items() for i in range(n)]
    plan["households"] = pd.DataFrame(rows)
    path = _write(tmp_path, plan)
    rc = main(["check", "--data", str(path), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0 and out == {"ok": True, "problems": [], "grids": out["grids"]} and len(out["grids"]) == 6
    rc = main(["check", "--data", str(path)])
    text = capsys.readouterr().out
    assert rc == 0 and "OK" in text and "A1" in text
    # break it: a gap and a missing head
    plan["grids"] = set_geom(plan["grids"], "B1", box_m(100, 0, 190, 50))
    plan["grids"].loc[plan["grids"]["id"] == "B", "head_name"] = None
    path = _write(tmp_path, plan)
    rc = main(["check", "--data", str(path)])
    text = capsys.readouterr().out
    assert rc == 1 and "[gap]" in text and "[missing_head]" in text
    for secret in ("王某", "1391234", "张三", "13800000000"):
        assert secret not in text
    assert main(["check", "--data", str(path), "--plan", "nope"]) == 2


@pytest.mark.slow
def test_shipped_sample_adopted_plan_audit():
    """Real behaviour of the shipped sample (boundaries tessellated from building outlines): no
    gap, overlap, nesting, split or misplaced building, code, head or household problem; only
    level-2 grids whose buildings cannot be cut finer may sit above the default band."""
    bundle = GpkgStore(sample_path()).load()
    a = audit_bundle(bundle, settings=Settings(), code_prefix="1001110108012")
    counts = a.counts_by_kind()
    assert set(counts) <= {"out_of_band"}, counts
    assert a.totals["households_in_grids"] == a.totals["households"] == len(bundle.households)
    assert a.totals["buildings_in_grids"] == len(bundle.buildings)
    assert (a.communities["band"] == "ok").all()
    assert counts.get("out_of_band", 0) <= 3


def test_layers_coverage_traces_band_legend_and_problem_shapes():
    import plotly.graph_objects as go
    from layers.coverage import coverage_traces
    plan = clean_plan()
    plan["grids"] = set_geom(plan["grids"], "B1", box_m(100, 0, 190, 50))  # gap
    plan["grids"] = set_geom(plan["grids"], "A2", box_m(0, 40, 100, 100))  # overlap
    plan["assignments"].loc[plan["assignments"]["building_id"] == "b4", "grid_id"] = "A1"  # misplaced
    a = audit(plan, bands={0: (5, 20), 1: (3, 10), 2: (2, 3)})
    traces = coverage_traces(a, plan["grids"], level=2, lang="en")
    bands = [t for t in traces if isinstance(t, go.Choroplethmap) and t.legendgroup.startswith("band-")]
    assert [t.legendgroup for t in bands] == ["band-low", "band-ok", "band-high"]
    by_band = {t.legendgroup: sorted(t.locations) for t in bands}
    assert by_band == {"band-low": ["B1"], "band-ok": ["A2", "B2"], "band-high": ["A1"]}  # A1 has 5 households
    assert all(t.showlegend for t in bands) and "Above band (> 3 households)" == bands[2].name
    groups = {t.legendgroup for t in traces}
    assert {"gap", "overlap", "misplaced_building"} <= groups
    hatch = [t for t in traces if isinstance(t, go.Scattermap) and t.legendgroup == "gap"][0]
    assert None in hatch.lon and len(hatch.lon) > 10  # outline + hatch lines, parts separated
    go.Figure(traces).to_json()
