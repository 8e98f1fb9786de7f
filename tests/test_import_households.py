"""data/importers/households: ledgers from CSV (UTF-8, UTF-8-BOM, GBK) and xlsx. Every bad input
gets a clear error (file, row, field) and leaves the store unchanged; unmatched rows are kept."""

import numpy as np
import pandas as pd
import pytest

from data.bundle import DataError, make_bundle
from data.gpkg_store import GpkgStore
from data.importers.households import decode_bytes, import_households
from fixtures_io import bundle_layers, make_store
from minsheng.cli import main

HEADER = "户号,地址,人数,重点人群,户主,联系电话"
ROWS = ["H1,3号楼2单元501,3,空巢老人;残疾人,张三,13800001111",
        "H2,清华园小区5栋1单元101,2,,李四,",
        "H3,99号楼1单元1,1,Empty-nest elderly,王五,",
        "H4,,1,low_income,,"]
CSV = "\n".join([HEADER, *ROWS]) + "\n"


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def write(tmp_path, name, text, encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


def refused(store, path, match, **kw):
    before = store.version()
    with pytest.raises(DataError, match=match) as e:
        import_households(store, path, **kw)
    assert store.version() == before
    return e.value


def stored(store):
    return store.load().households.set_index("id")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_csv_encodings(store, tmp_path, encoding):
    res = import_households(store, write(tmp_path, "l.csv", CSV, encoding))
    h = stored(store)
    assert h.loc["H1", "building_id"] == "b03" and h.loc["H1", "unit"] == 2 and h.loc["H1", "room"] == "501"
    assert h.loc["H1", "tags"] == ["empty_nest_elderly", "disabled"] and h.loc["H1", "head_name"] == "张三"
    assert h.loc["H2", "building_id"] == "b05" and h.loc["H3", "tags"] == ["empty_nest_elderly"]
    assert h.loc["H4", "tags"] == ["low_income"]
    assert not h.loc[["H1", "H2", "H3", "H4"], "synthetic"].any()
    assert len(h) == 48 + 4 and res.matched == 2


def test_xlsx(store, tmp_path):
    df = pd.read_csv(pd.io.common.StringIO(CSV), dtype=str, keep_default_na=False)
    df.to_excel(tmp_path / "l.xlsx", index=False, sheet_name="台账")
    res = import_households(store, tmp_path / "l.xlsx")
    assert res.rows == 4 and stored(store).loc["H2", "building_id"] == "b05"


def test_unmatched_rows_are_kept_as_orphans_and_reported(store, tmp_path):
    res = import_households(store, write(tmp_path, "l.csv", CSV))
    h = stored(store)
    assert pd.isna(h.loc["H3", "building_id"]) and pd.isna(h.loc["H4", "building_id"])
    assert res.unmatched["row"].tolist() == [3, 4]
    reasons = dict(zip(res.unmatched["row"], res.unmatched["reason"]))
    assert "no building numbered 99" in reasons[3] and "no building or address" in reasons[4]
    assert "张三" not in res.unmatched.to_string()  # reports carry no personal data
    assert store.load().audit_log["action"].tolist() == ["import_households"]


def test_match_by_building_code_id_or_name(store, tmp_path):
    text = "户号,楼栋编号,单元,房号,人数\nA,B07,1单元,101,2\nB,b08,2,202,1\nC,9号楼,3,303,1\nD,B99,1,1,1\n"
    res = import_households(store, write(tmp_path, "l.csv", text))
    h = stored(store)
    assert [h.loc[k, "building_id"] for k in "ABC"] == ["b07", "b08", "b09"]
    assert h.loc["A", "unit"] == 1 and pd.isna(h.loc["D", "building_id"])
    assert "building B99 not found" in res.unmatched["reason"].iloc[0]


def test_compound_disambiguates_addresses(tmp_path):
    layers = bundle_layers()
    b = layers["buildings"]
    b.loc[8:, "name"] = [f"{k}号楼" for k in range(1, 9)]  # 学清苑 1..8号楼 repeat 清华园's numbers
    b.loc[8:, "address"] = [f"学清苑{k}号楼" for k in range(1, 9)]
    store = GpkgStore(tmp_path / "p.gpkg")
    store.write_all(make_bundle(layers))
    text = "户号,地址,小区\nA,3号楼1单元101,\nB,学清苑3号楼1单元101,\nC,3号楼1单元101,清华园小区\nD,3号楼2单元1,学清苑\n"
    res = import_households(store, write(tmp_path, "l.csv", text))
    h = stored(store)
    assert pd.isna(h.loc["A", "building_id"])
    assert "matches 2 buildings numbered 3" in res.unmatched["reason"].iloc[0]
    assert h.loc["B", "building_id"] == "b11" and h.loc["C", "building_id"] == "b03" and h.loc["D", "building_id"] == "b11"
    res2 = import_households(store, write(tmp_path, "m.csv", "户号,地址\nE,3号楼1单元102\n"), compound="学清苑")
    assert stored(store).loc["E", "building_id"] == "b11" and res2.unmatched.empty


def test_undecodable_file_names_offset_and_line(store, tmp_path):
    data = "户号,地址\nH1,3号楼\n".encode("utf-8") + b"H2,\x80\xff\xfe\n"
    e = refused(store, write(tmp_path, "bad.csv", data), r"bad\.csv: cannot decode.*not UTF-8 \(bad byte at offset \d+, "
                                                            r"line 3\).*not GBK/GB18030")
    assert e.file.endswith("bad.csv")


def test_decode_bytes_prefers_utf8():
    assert decode_bytes("户号".encode("utf-8"))[1] == "utf-8"
    assert decode_bytes("户号".encode("utf-8-sig"))[1] == "utf-8-sig"
    assert decode_bytes("户号".encode("gbk")) == ("户号", "gb18030")


def test_empty_header_only_and_blank_files(store, tmp_path):
    refused(store, write(tmp_path, "e.csv", b""), r"e\.csv: the file is empty \(0 bytes\)")
    refused(store, write(tmp_path, "w.csv", "\n \n"), r"w\.csv: the file is empty")
    refused(store, write(tmp_path, "h.csv", HEADER + "\n"), r"h\.csv: the file has a header but no data rows")
    refused(store, write(tmp_path, "hb.csv", HEADER + "\n,,,,,\n"), "header but no data rows")
    pd.DataFrame(columns=["户号", "地址"]).to_excel(tmp_path / "h.xlsx", index=False)
    refused(store, tmp_path / "h.xlsx", r"h\.xlsx: the file has a header but no data rows")
    refused(store, tmp_path / "nope.csv", "file not found")
    refused(store, write(tmp_path, "x.xlsx", b"not a workbook"), r"x\.xlsx: cannot read the Excel workbook")
    refused(store, write(tmp_path, "old.xls", b"\xd0\xcf\x11\xe0"), r"old \.xls workbooks are not read")


def test_missing_required_columns_are_named(store, tmp_path):
    e = refused(store, write(tmp_path, "m.csv", "姓名,人数\n张三,2\n"),
                r"missing required column\(s\): 户号/id; 楼栋/building or 地址/address \(found: 姓名, 人数\)")
    assert "户号/id" in e.field
    refused(store, write(tmp_path, "m2.csv", "户号,人数\nH1,2\n"), r"楼栋/building or 地址/address")
    refused(store, write(tmp_path, "m3.csv", CSV), r"column 'Addr' given for address is not in the file",
            address="Addr")


def test_duplicate_ids_are_refused_with_rows(store, tmp_path):
    text = "\n".join([HEADER, ROWS[0], ROWS[1], ROWS[0].replace("3号楼", "4号楼"), ROWS[2]]) + "\n"
    e = refused(store, write(tmp_path, "d.csv", text), r"row 1, field 户号: duplicate household id 'H1' in rows 1, 3")
    assert (e.row, e.field) == (1, "户号")


def test_empty_id_is_refused(store, tmp_path):
    refused(store, write(tmp_path, "d.csv", HEADER + "\nH1,3号楼,1,,,\n,4号楼,1,,,\n"), r"row 2, field 户号: household id is empty")


def test_unknown_tag_and_bad_numbers(store, tmp_path):
    e = refused(store, write(tmp_path, "t.csv", HEADER + "\nH1,3号楼,1,空巢老人,,\nH2,3号楼,1,独居老人;外星人,,\n"),
                r"row 2, field 重点人群: unknown key-group tag \(known: 空巢老人/empty_nest_elderly")
    assert e.row == 2
    refused(store, write(tmp_path, "p.csv", HEADER + "\nH1,3号楼,两,,,\n"), r"row 1, field 人数: not a whole number$")
    refused(store, write(tmp_path, "p2.csv", HEADER + "\nH1,3号楼,1,,,\nH2,3号楼,-1,,,\n"), r"row 2, field 人数")
    refused(store, write(tmp_path, "u.csv", "户号,地址,单元\nH1,3号楼,东\n"), r"row 1, field 单元: not a whole number$")


def test_row_numbers_skip_blank_lines_consistently(store, tmp_path):
    text = HEADER + "\nH1,3号楼,1,,,\n,,,,,\nH2,3号楼,x,,,\n"
    refused(store, write(tmp_path, "b.csv", text), r"row 3, field 人数")


def test_tags_by_key_and_english_name(store, tmp_path):
    text = "id,building,tags\nA,B01,party_member|veteran\nB,B01,Elderly living alone; Disabled\nC,B01,党员、退役军人\n"
    import_households(store, write(tmp_path, "t.csv", text))
    h = stored(store)
    assert h.loc["A", "tags"] == ["party_member", "veteran"]
    assert h.loc["B", "tags"] == ["living_alone_elderly", "disabled"]
    assert h.loc["C", "tags"] == ["party_member", "veteran"]


def test_merge_and_replace_modes(store, tmp_path):
    text = "户号,楼栋编号,人数\nh001,B02,5\nNEW,B02,1\n"
    res = import_households(store, write(tmp_path, "m.csv", text))
    h = stored(store)
    assert res.replaced == 1 and len(h) == 49 and h.loc["h001", "persons"] == 5 and not h.loc["h001", "synthetic"]
    res = import_households(store, write(tmp_path, "r.csv", text), mode="replace")
    assert res.replaced == 49 and sorted(stored(store).index) == ["NEW", "h001"]
    refused(store, write(tmp_path, "x.csv", text), "unknown mode 'upsert'", mode="upsert")


def test_dry_run_writes_nothing(store, tmp_path):
    before = store.version()
    res = import_households(store, write(tmp_path, "l.csv", CSV), dry_run=True)
    assert store.version() == before and res.rows == 4 and res.version == ""


def test_large_ledger_imports_and_row_limit_refuses(store, tmp_path):
    n = 200_000
    i = np.arange(n)
    df = pd.DataFrame({"户号": np.char.add("X", i.astype(str)),
                       "地址": np.char.add(np.char.add((i % 16 + 1).astype(str), "号楼"), (i % 3 + 1).astype(str)),
                       "人数": i % 4 + 1, "重点人群": np.where(i % 5 == 0, "空巢老人", "")})
    df["地址"] = df["地址"] + "单元" + (5000 + i // 48).astype(str)  # one household per room
    path = tmp_path / "big.csv"
    df.to_csv(path, index=False, encoding="gbk")
    refused(store, path, r"big\.csv: 200000 rows, over the limit of 100000; split the ledger", max_rows=100_000)
    res = import_households(store, path)  # (its speed is a benchmark's business, not a test's)
    assert res.rows == n and res.matched == n
    assert len(store.load().households) == 48 + n


def test_cli_import_households(store, tmp_path, capsys):
    assert main(["import-households", str(write(tmp_path, "l.csv", CSV, "gbk")), "--data", str(store.path)]) == 0
    io = capsys.readouterr()
    assert "4 households read, 2 matched" in io.out and "row 3: no building numbered 99" in io.err
    assert "张三" not in io.out + io.err and "13800001111" not in io.out + io.err
    before = store.version()
    assert main(["import-households", str(write(tmp_path, "e.csv", b"")), "--data", str(store.path)]) == 2
    assert "e.csv: the file is empty" in capsys.readouterr().err and store.version() == before


def test_malformed_csv_and_missing_sheet(store, tmp_path):
    refused(store, write(tmp_path, "r.csv", "户号,地址\nH1,3号楼\nH2,3号楼,多余,字段\n"), r"r\.csv: malformed CSV.*line 3")
    pd.DataFrame({"户号": ["H1"], "地址": ["3号楼"]}).to_excel(tmp_path / "s.xlsx", index=False, sheet_name="台账")
    refused(store, tmp_path / "s.xlsx", r"s\.xlsx: cannot read the Excel workbook.*'其他'", sheet="其他")
    res = import_households(store, tmp_path / "s.xlsx", sheet="台账")
    assert res.matched == 1


class _RacingStore(GpkgStore):
    """Someone else saves between our load and our write."""

    def load(self, layers=None):
        b = super().load(layers)
        other = b.households.assign(persons=9)
        GpkgStore(self.path).replace_layers({"households": other})
        return b


def test_concurrent_change_is_refused_and_nothing_written(tmp_path):
    from data.store import ConflictError
    make_store(tmp_path)
    racing = _RacingStore(tmp_path / "project.gpkg")
    with pytest.raises(ConflictError):
        import_households(racing, write(tmp_path, "l.csv", CSV))
    h = GpkgStore(tmp_path / "project.gpkg").load().households
    assert len(h) == 48 and (h["persons"] == 9).all()  # the other save stands, ours is not half-written


def test_uploaded_file_names_the_upload_in_errors(store):
    import base64

    from data.importers.upload import decode_upload, uploaded_file
    contents = "data:text/csv;base64," + base64.b64encode(CSV.encode("gbk")).decode()
    with uploaded_file("台账.csv", decode_upload(contents)) as path:
        assert import_households(store, path, dry_run=True).rows == 4
    before = store.version()
    with pytest.raises(DataError) as e:
        with uploaded_file("坏.csv", (HEADER + "\nH1,3号楼,x,,,\n").encode()) as path:
            import_households(store, path)
    assert str(e.value) == "file 坏.csv, row 1, field 人数: not a whole number"
    assert store.version() == before


def test_building_column_with_names_in_several_compounds(tmp_path):
    layers = bundle_layers()
    b = layers["buildings"]
    b.loc[8:, "name"] = [f"{k}号楼" for k in range(1, 9)]
    store = GpkgStore(tmp_path / "p.gpkg")
    store.write_all(make_bundle(layers))
    text = "户号,楼栋,小区,单元,房号\nA,3号楼,学清苑,1,101\nB,3号楼,清华园,1,101\nC,3号楼,,1,101\n"
    res = import_households(store, write(tmp_path, "l.csv", text))
    h = stored(store)
    assert h.loc["A", "building_id"] == "b11" and h.loc["B", "building_id"] == "b03"
    assert pd.isna(h.loc["C", "building_id"]) and res.unmatched["row"].tolist() == [3]


# -- spreadsheet damage, rooms, headers (issue 13) -------------------------------------------
from data.importers.messages import Refusal  # noqa: E402


@pytest.fixture
def coded_store(tmp_path):
    """The fixture with 16-digit numeric building codes, as 楼栋编码 often are."""
    layers = bundle_layers()
    layers["buildings"]["code"] = [f"110108012001{k:04d}" for k in range(1, len(layers["buildings"]) + 1)]
    store = GpkgStore(tmp_path / "coded.gpkg")
    store.write_all(make_bundle(layers))
    return store


def _xlsx(tmp_path, header, rows, name="l.xlsx"):
    import openpyxl
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(tmp_path / name)
    return tmp_path / name


def test_excel_numbers_that_lost_digits_are_refused_naming_the_row(store, tmp_path):
    import datetime as dt
    ok = _xlsx(tmp_path, ["户号", "楼栋编号", "房号", "人数"],
               [[1101080120010001, "B01", "9001", 2], ["A2", "B02", "9002", 1]], "ok.xlsx")
    import_households(store, ok)  # a numeric cell up to 2**53 keeps every digit (and gets no ".0")
    assert "1101080120010001" in stored(store).index
    lost = _xlsx(tmp_path, ["户号", "楼栋编号", "房号", "人数"],
                 [["A1", "B01", "9003", 2], [1.10108199001011e17, "B02", "9004", 1]], "lost.xlsx")
    e = refused(store, lost, r"lost\.xlsx, row 2, field 户号: .*more than 15 significant digits")
    assert isinstance(e, Refusal) and "第 2 行" in e.text("zh") and "字段 户号" in e.text("zh")
    date = _xlsx(tmp_path, ["户号", "楼栋编号", "房号"], [["D1", "B01", dt.datetime(2026, 5, 1)]], "date.xlsx")
    refused(store, date, r"row 1, field 房号: Excel turned this cell into a date \(2026-05-01 00:00:00\)")


def test_dot_zero_and_scientific_codes_are_repaired_or_refused(coded_store, tmp_path):
    store = coded_store
    text = ("户号,楼栋编码,单元,房号,联系电话\n"
            "S1,1101080120010001.0,1,9001,13810000000.0\n"
            "S2,1.101080120010002E+15,1,9002,1.3810000001E+10\n")
    res = import_households(store, write(tmp_path, "s.csv", text))
    h = stored(store)
    assert h.loc["S1", "building_id"] == "b01" and h.loc["S2", "building_id"] == "b02"
    assert h.loc["S1", "phone"] == "13810000000" and h.loc["S2", "phone"] == "13810000001"
    assert res.matched == 2 and any('".0"' in w for w in res.warnings)
    assert any("scientific notation" in w and "楼栋编码" in w for w in res.warnings)
    before = len(stored(store))
    refused(store, write(tmp_path, "x.csv", "户号,楼栋编码\nS3,1101080120010003\nS4,1.10108E+15\n"),
            r"row 2, field 楼栋编码: 1\.10108E\+15 is in scientific notation and keeps only 6 digit")
    assert len(stored(store)) == before


def test_one_household_per_room(store, tmp_path):
    # h000 lives in b01 unit 1 room 101 (fixture)
    text = "户号,楼栋编号,单元,房号,人数\nR1,B01,1,101,2\n"
    e = refused(store, write(tmp_path, "r.csv", text), r"row 1, field 房号: the room \(building b01, unit 1, "
                                                          r"room 101\) already holds household h000")
    assert "--replace" in str(e)
    res = import_households(store, write(tmp_path, "r.csv", text), replace_rooms=True)
    h = stored(store)
    assert "R1" in h.index and "h000" not in h.index and len(h) == 48
    assert res.replaced == 1 and res.replaced_rooms == 1 and "1 existing replaced (1 by room)" in res.summary()
    twice = "户号,楼栋编号,单元,房号\nT1,B02,1,9001\nT2,B03,1,9001\nT3,B02,1,9001\n"
    refused(store, write(tmp_path, "t.csv", twice), r"row 1, field 房号: rows 1, 3 are the same room")
    assert main(["import-households", str(write(tmp_path, "r2.csv", "户号,楼栋编号,单元,房号\nR2,B01,1,101\n")),
                 "--data", str(store.path)]) == 2
    assert main(["import-households", str(tmp_path / "r2.csv"), "--data", str(store.path), "--replace"]) == 0
    assert "R2" in stored(store).index and "R1" not in stored(store).index


def test_headers_with_inner_or_full_width_spaces_are_recognised(store, tmp_path):
    text = "户 号,地\u3000址,人　数\nW1,3号楼2单元9501,3\n"
    res = import_households(store, write(tmp_path, "w.csv", text))
    assert stored(store).loc["W1", "building_id"] == "b03" and stored(store).loc["W1", "persons"] == 3
    assert sum("header" in w for w in res.warnings) == 3
