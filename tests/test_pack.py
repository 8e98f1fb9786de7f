"""The joint-meeting pack (data/exporters/pack, minsheng pack): pages, contents, suppression on
every page, masking, the frozen quarter snapshot, the PDF's and the PPTX's page counts."""
import json
import math
import re
import shutil

import pandas as pd
import pytest

from benchmarks.synthetic_city import make_city
from data import snapshots
from data.bundle import DataError, make_bundle
from data.exporters import image as image_mod
from data.exporters.pack import GRID_ROWS_PER_PAGE, ROWS_PER_PAGE, build_pack, make_pack, pack_html
from minsheng.i18n import TEXT
from minsheng.settings import Settings

HAS_CHROMIUM = any(shutil.which(c) for c in image_mod.CANDIDATES)
SENSITIVE_ZH = ("残疾人", "低保", "特困", "归正人员")


@pytest.fixture(scope="module")
def bundle():
    layers = make_city(n_grids=40, n_buildings=400, n_households=3000, seed=1)
    plans = pd.concat([layers["plans"], pd.DataFrame([{"id": "P2", "name": "调整草案", "status": "draft", "version": 1,
                                                       "created_at": "2026-11-01T00:00:00Z", "created_by": "t"}])])
    g2 = layers["grids"].assign(plan_id="P2")
    a2 = layers["assignments"].assign(plan_id="P2")
    move = a2["grid_id"] == "G0"
    a2.loc[move, "grid_id"] = "G1"  # every building of G0 moves to G1
    layers.update(plans=plans, grids=pd.concat([layers["grids"], g2], ignore_index=True),
                  assignments=pd.concat([layers["assignments"], a2], ignore_index=True))
    return make_bundle(layers)


@pytest.fixture(scope="module")
def pack(bundle):
    return build_pack(bundle, Settings(), "2026Q4", lang="zh")


def n_communities(bundle):
    return len(bundle.communities)


def expected_pages(bundle, grid_pages=False):
    grids = bundle.plan_grids("P1")
    l2 = grids[grids["level"] == 2]
    l1_parent = grids.set_index("id")["parent_id"]
    per_comm = l2["parent_id"].map(l1_parent).value_counts()
    comm_pages = sum(math.ceil(per_comm.get(c, 0) / GRID_ROWS_PER_PAGE) or 1 for c in bundle.communities["id"])
    return (1 + 1 + 1 + math.ceil(n_communities(bundle) / ROWS_PER_PAGE) + comm_pages + 2 + 1
            + (len(l2) if grid_pages else 0))


def test_page_count_and_order(bundle, pack):
    assert len(pack.pages) == expected_pages(bundle)
    k = pack.kinds()
    assert k[:3] == ["cover", "audit", "circle"] and k[-1] == "problems"
    assert k.count("community") == n_communities(bundle)
    assert k.count("changes") == 2  # flows and the grid workers' gains / losses
    with_grids = build_pack(bundle, Settings(), "2026Q4", grid_pages=True)
    assert len(with_grids.pages) == expected_pages(bundle, grid_pages=True)


def test_cover_and_audit_figures(bundle, pack):
    cover = pack.pages[0]
    assert "2026 年第 4 季度" in cover.title and "联席会议" in cover.title
    figs = dict((lbl, v) for v, lbl in cover.figures)
    assert figs["户"] == f"{len(bundle.households):,}"
    assert figs["人"] == f"{int(bundle.households['persons'].sum()):,}"
    assert any("合成数据" in n for n in cover.notes)
    audit = pack.pages[1]
    assert audit.title == "网格覆盖检查结果"
    assert "无上季度存档" in " ".join(audit.notes)


def test_community_pages_have_map_figures_key_groups_and_workload(bundle, pack):
    pages = [p for p in pack.pages if p.kind == "community"]
    names = set(bundle.communities["name"])
    for p in pages:
        assert p.title.split("：", 1)[1] in names
        n_l2 = int(p.figures[0][0].split("/")[1])
        assert p.map is not None and len(p.map.shapes) == n_l2 == len(p.tables[0].rows)
        head = p.tables[0].header
        assert "走访/月" in head and "独居老人" in head and "低保" in head
        assert p.tables[0].total[1] == "合计"


def test_plan_change_pages_count_people(bundle, pack):
    from geo.stats import building_stats
    moved_b = bundle.plan_assignments("P1").query("grid_id == 'G0'")["building_id"]
    st = building_stats(bundle.households)
    hh = int(st[st["building_id"].isin(moved_b)]["households"].sum())
    persons = int(st[st["building_id"].isin(moved_b)]["persons"].sum())
    flows, per = [p for p in pack.pages if p.kind == "changes"]
    figs = dict((lbl, v) for v, lbl in flows.figures)
    assert figs["户数"] == f"{hh:,}" and figs["人数"] == f"{persons:,}"
    row = flows.tables[0].rows[0]
    assert row[0] == "G0" and row[1] == "G1" and row[3] == f"{hh:,}"
    per_rows = {r[0]: r for r in per.tables[0].rows}
    assert per_rows["G1"][4] == f"+{hh}" and per_rows["G0"][4] == f"-{hh}"
    assert per_rows["G1"][1] == "网**"  # the grid worker, masked for roles without personal access


def _reader_can_recover(cells, hh, total, t=5):
    """Brute force over what a reader sees in one column: True if some suppressed cell is pinned."""
    import itertools
    lo, hi, known = [], [], 0
    for c, h in zip(cells, hh):
        if c == f"<{t}":
            lo.append(0), hi.append(min(t - 1, h))
        elif c == "—":
            lo.append(t), hi.append(min(h, t + 12))
        else:
            known += int(c.replace(",", ""))
    if not lo:
        return False
    sols = []
    for combo in itertools.product(*[range(a, b + 1) for a, b in zip(lo, hi)]):
        s = known + sum(combo)
        if total == f"<{t}" and s >= t or total == "—" and s < t:
            continue
        if total not in (f"<{t}", "—", None) and s != int(total.replace(",", "")):
            continue
        sols.append(combo)
    assert sols
    return any(len({s[k] for s in sols}) < 2 for k in range(len(lo)) if hi[k] > 0)


def test_no_suppressed_cell_recoverable_on_any_community_page(pack):
    checked = 0
    for p in pack.pages:
        if p.kind != "community":
            continue
        tb = p.tables[0]
        hh_col = tb.header.index("户数")
        hh = [int(r[hh_col].replace(",", "")) for r in tb.rows]
        for name in SENSITIVE_ZH:
            j = tb.header.index(name)
            cells = [r[j] for r in tb.rows]
            assert all(c in ("<5", "—") or int(c.replace(",", "")) >= 5 for c in cells)
            assert not _reader_can_recover(cells, hh, tb.total[j]), (p.title, name, cells, tb.total[j])
            checked += 1
        wl = tb.header.index("走访/月")
        assert all(r[wl].startswith("≈") for r in tb.rows if any(r[tb.header.index(n)] in ("<5", "—")
                                                                  for n in SENSITIVE_ZH))
    assert checked >= 4


def test_personal_pack_shows_exact_counts_and_names(bundle):
    p = build_pack(bundle, Settings(), "2026Q4", personal=True)
    page = next(x for x in p.pages if x.kind == "community")
    tb = page.tables[0]
    j = tb.header.index("归正人员")
    assert all(re.fullmatch(r"[\d,]+", r[j]) for r in tb.rows)
    assert any(r[2].startswith("网格员G") for r in tb.rows)
    assert not any(x.startswith("≈") for r in tb.rows for x in r)


def test_zh_pack_has_no_english_ui_text(pack):
    html = pack_html(pack, attribution="")
    text = re.sub(r"<[^>]+>", " ", html.split("<body>", 1)[1])
    for entry in TEXT.values():
        en = entry["en"]
        if len(en) > 6 and en != entry["zh"] and not re.search(r"[\d{}]", en):
            assert en not in text, en
    assert "Households" not in text and "Community" not in text


def test_bad_quarter_is_a_clear_error(bundle):
    with pytest.raises(DataError) as e:
        build_pack(bundle, Settings(), "2026-4")
    assert e.value.field == "quarter"


STORES = ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)]


@pytest.fixture(params=STORES)
def project_store(request, bundle, tmp_path):
    """The synthetic city written into a store of each kind (the pack's project)."""
    from data.gpkg_store import GpkgStore
    if request.param == "gpkg":
        s = GpkgStore(tmp_path / "city.gpkg")
    else:
        from data.postgis_store import PostgisStore
        s = PostgisStore(request.getfixturevalue("pg_dsn"))
    s.write_all(bundle)
    yield s
    getattr(s, "close", lambda: None)()


def test_snapshot_frozen_once_in_the_store_and_used_next_quarter(bundle, project_store, tmp_path):
    from data.store import QuarterFrozen
    store = project_store
    version = store.version()
    r1 = make_pack(bundle, Settings(), "2026q3", tmp_path / "out", store=store, user="planner", formats=())
    assert r1["frozen_now"] and r1["refused"] is None and r1["quarter"] == "2026Q3"
    assert store.quarter_list() == ["2026Q3"]
    data = store.quarter_snapshot("2026Q3")
    assert data == r1["snapshot"] and data["quarter"] == "2026Q3"
    assert data["totals"]["households"] == len(bundle.households)
    assert "head_name" not in json.dumps(data, ensure_ascii=False)  # aggregates only
    workers = [n for n in bundle.grids["head_name"] if isinstance(n, str) and n]
    assert workers and not any(n in json.dumps(data, ensure_ascii=False) for n in workers)  # no names
    assert store.version() == version  # a snapshot is not part of the dataset: nothing to refresh
    log = store.audit_rows(action="freeze_quarter")
    assert len(log) == 1 and log["object"].iloc[0] == "quarter:2026Q3" and log["user"].iloc[0] == "planner"
    # a second freeze of the quarter is refused, the pack is still made, the table is unchanged
    r2 = make_pack(bundle, Settings(), "2026Q3", tmp_path / "out", store=store, user="other", formats=("pptx",))
    assert not r2["frozen_now"] and isinstance(r2["refused"], QuarterFrozen) and r2["files"]["pptx"].exists()
    assert "原存档保留不变" in r2["refused"].text("zh") and "kept" in r2["refused"].text("en")
    assert store.quarter_snapshots() == [dict(store.quarter_snapshots()[0], payload=data)]
    assert store.quarter_snapshots()[0]["created_by"] == "planner"
    assert len(store.audit_rows(action="freeze_quarter")) == 1
    # the next quarter's pack compares with the frozen one
    r3 = make_pack(bundle, Settings(), "2026Q4", tmp_path / "out", store=store, formats=(), freeze=False)
    assert r3["previous"] == data and not r3["frozen_now"] and store.quarter_list() == ["2026Q3"]
    audit = r3["pack"].pages[1]
    assert "与上季度（2026 年第 3 季度）相比" in " ".join(audit.notes)
    cmp_ = audit.tables[-1]
    row = next(r for r in cmp_.rows if r[0] == "户数")
    assert row[2] == f"{len(bundle.households):,}" and row[3] in ("+0", "0")
    assert snapshots.previous_quarter("2027Q1") == "2026Q4"


def test_pack_shows_the_change_against_the_previous_snapshot(bundle, tmp_path):
    """Last quarter had fewer households in one community: the audit page and that
    community's page show the difference."""
    from data.gpkg_store import GpkgStore
    store = GpkgStore(tmp_path / "city.gpkg")
    store.write_all(bundle)
    now = build_pack(bundle, Settings(), "2026Q3")
    before = json.loads(json.dumps(now.snapshot))
    cid = next(iter(before["communities"]))
    before["communities"][cid]["households"] -= 37
    before["totals"]["households"] -= 37
    before["totals"]["problems"] += 2
    snapshots.freeze(store, "2026Q3", before, "planner")
    res = make_pack(bundle, Settings(), "2026Q4", tmp_path / "out", store=store, formats=(), freeze=False)
    rows = {r[0]: r for r in res["pack"].pages[1].tables[-1].rows}
    assert rows["户数"][1] == f"{len(bundle.households):,}" and rows["户数"][3] == "+37"
    assert rows["覆盖问题"][3] == "-2"
    name = bundle.communities.set_index("id").loc[cid, "name"]
    page = next(p for p in res["pack"].pages if p.kind == "community" and p.title.endswith(str(name)))
    assert ("+37", "与上季度（2026 年第 3 季度）相比 · 户数") in page.figures


def test_old_snapshot_files_are_imported_once(bundle, tmp_path):
    from data.gpkg_store import GpkgStore
    store = GpkgStore(tmp_path / "city.gpkg")
    store.write_all(bundle)
    legacy = tmp_path / "city.gpkg.snapshots"
    legacy.mkdir()
    old = dict(build_pack(bundle, Settings(), "2026Q3").snapshot, quarter="2026Q3")
    (legacy / "2026Q3.json").write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    (legacy / "2026Q3.json").chmod(0o444)
    (legacy / "notes.json").write_text("{}", encoding="utf-8")  # not a quarter: ignored
    assert snapshots.import_legacy(store, legacy, user="admin") == ["2026Q3"]
    assert snapshots.import_legacy(store, legacy, user="admin") == []  # once
    assert store.quarter_snapshot("2026Q3") == json.loads(json.dumps(old))
    assert store.quarter_snapshots()[0]["created_at"] == old["created_at"]
    assert len(store.audit_rows(action="import_snapshot")) == 1
    res = make_pack(bundle, Settings(), "2026Q4", tmp_path / "out", store=store, formats=(), freeze=False)
    assert res["previous"]["quarter"] == "2026Q3"
    (legacy / "2025Q1.json").write_text("not json", encoding="utf-8")
    with pytest.raises(DataError) as e:
        snapshots.import_legacy(store, legacy)
    assert "2025Q1.json" in str(e.value) and store.quarter_list() == ["2026Q3"]


def test_pptx_one_slide_per_page(bundle, pack, tmp_path):
    from pptx import Presentation
    from data.exporters.pack import write_pptx
    out = write_pptx(pack, tmp_path / "p.pptx")
    prs = Presentation(str(out))
    assert len(prs.slides) == len(pack.pages)
    texts = [" ".join(sh.text_frame.text for sh in s.shapes if sh.has_text_frame) for s in prs.slides]
    assert "联席会议" in texts[0]
    comm = [i for i, p in enumerate(pack.pages) if p.kind == "community"][0]
    slide = prs.slides[comm]
    assert any(sh.has_table for sh in slide.shapes)
    assert sum(1 for sh in slide.shapes if sh.shape_type == 5 or "G" in sh.name) >= 8  # freeform grid shapes


@pytest.mark.parametrize("engine", ["reportlab", "chromium"])
def test_pdf_one_page_per_page(bundle, pack, tmp_path, engine):
    from data.exporters.pack import cjk_truetype_font, write_pdf
    if engine == "chromium" and not HAS_CHROMIUM:
        pytest.skip("needs headless Chromium")
    if engine == "reportlab" and not cjk_truetype_font():
        pytest.skip("needs a TrueType CJK font (fonts-wqy-zenhei)")
    out = write_pdf(pack, tmp_path / "p.pdf", engine=engine)
    data = out.read_bytes()
    assert data[:4] == b"%PDF"
    pages = len(re.findall(rb"/Type\s*/Page(?!s)", data))
    assert pages == len(pack.pages)
    if engine == "reportlab":
        assert b"FontFile2" in data  # the CJK font is embedded (subset), so any viewer shows the Chinese


def test_cli_pack(tmp_path, capsys):
    from data.gpkg_store import GpkgStore
    from minsheng.cli import main
    from minsheng.settings import sample_path
    if not sample_path().exists():
        pytest.skip("shipped sample not built")
    project = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), project)
    args = ["pack", "--quarter", "2026Q4", "--data", str(project), "--out-dir", str(tmp_path), "--format", "pptx"]
    assert main(args + ["--lang", "en"]) == 0
    err = capsys.readouterr().err
    assert (tmp_path / "joint-meeting-pack-2026Q4.pptx").exists() and "2026Q4 is frozen" in err
    assert "Writing the PPTX: page" in err
    store = GpkgStore(project)
    assert store.quarter_list() == ["2026Q4"]
    frozen = store.quarter_snapshots()
    assert main(args) == 0  # the pack is made again; the frozen quarter is kept as it was
    assert "2026Q4 已存档" in capsys.readouterr().err and (tmp_path / "联席会议材料-2026Q4.pptx").exists()
    assert store.quarter_snapshots() == frozen
    assert main(["pack", "--quarter", "Q4", "--data", str(project), "--out-dir", str(tmp_path)]) == 2
