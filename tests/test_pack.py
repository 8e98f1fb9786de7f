"""The joint-meeting pack (data/exporters/pack, minsheng pack): pages, contents, suppression on
every page, masking, the frozen quarter snapshot, the PDF's and the PPTX's page counts."""
import json
import math
import re
import shutil
import stat

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


def test_snapshot_frozen_read_only_and_used_next_quarter(bundle, tmp_path):
    snaps_dir = tmp_path / "snaps"
    r1 = make_pack(bundle, Settings(), "2026Q3", tmp_path / "out", snapshots=snaps_dir, formats=())
    assert r1["frozen_now"] and r1["snapshot"].exists()
    assert not (r1["snapshot"].stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    data = json.loads(r1["snapshot"].read_text(encoding="utf-8"))
    assert data["quarter"] == "2026Q3" and data["totals"]["households"] == len(bundle.households)
    assert "head_name" not in r1["snapshot"].read_text(encoding="utf-8")
    r2 = make_pack(bundle, Settings(), "2026Q3", tmp_path / "out", snapshots=snaps_dir, formats=())
    assert not r2["frozen_now"] and json.loads(r2["snapshot"].read_text(encoding="utf-8")) == data
    r3 = make_pack(bundle, Settings(), "2026Q4", tmp_path / "out", snapshots=snaps_dir, formats=())
    assert r3["previous"]["quarter"] == "2026Q3"
    audit = r3["pack"].pages[1]
    cmp_ = audit.tables[-1]
    row = next(r for r in cmp_.rows if r[0] == "户数")
    assert row[2] == f"{len(bundle.households):,}" and row[3] in ("+0", "0")
    assert snapshots.previous_quarter("2027Q1") == "2026Q4"


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


def test_cli_pack(tmp_path, monkeypatch):
    from minsheng.cli import main
    from minsheng.settings import sample_path
    if not sample_path().exists():
        pytest.skip("shipped sample not built")
    rc = main(["pack", "--quarter", "2026Q4", "--out-dir", str(tmp_path), "--format", "pptx",
               "--snapshots", str(tmp_path / "s")])
    assert rc == 0
    assert (tmp_path / "联席会议材料-2026Q4.pptx").exists() and (tmp_path / "s" / "2026Q4.json").exists()
    assert main(["pack", "--quarter", "Q4", "--out-dir", str(tmp_path), "--snapshots", str(tmp_path / "s")]) == 2
