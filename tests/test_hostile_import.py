"""Issue 12: masked placeholders from our own (masked) exports are never stored back as data;
import errors never quote a personal cell value. Each refusal names file, row and field and
leaves the store unchanged."""
import pytest

from data.bundle import DataError
from data.importers.grids import import_grids
from data.importers.households import import_households
from fixtures_io import grid_polygons, make_store

HEADER = "户号,地址,人数,重点人群,户主,联系电话"


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def refused(store, fn, path, match):
    before = store.version()
    with pytest.raises(DataError, match=match) as e:
        fn(store, path)
    assert store.version() == before
    return e.value


@pytest.mark.parametrize("name,phone,field,row", [
    ("梁**", "13800001111", "户主", 2), ("梁静艳", "199****9531", "联系电话", 2), ("***", "", "户主", 2)])
def test_household_import_refuses_masked_values(store, tmp_path, name, phone, field, row):
    p = tmp_path / "ledger.csv"
    p.write_text(f"{HEADER}\nH1,3号楼2单元501,3,,张三,13800002222\nH2,3号楼2单元502,2,,{name},{phone}\n",
                 encoding="utf-8")
    e = refused(store, import_households, p, rf"file .*ledger\.csv, row {row}, field {field}: masked value")
    assert e.row == row and e.field == field
    assert "张三" not in str(e) and "梁" not in str(e) and "9531" not in str(e) and "1111" not in str(e)


@pytest.mark.parametrize("col,value", [("负责人", "梁**"), ("电话", "199****9531")])
def test_grid_import_refuses_masked_heads(store, tmp_path, col, value):
    g = grid_polygons()
    g[col] = None
    g.loc[2, col] = value
    p = tmp_path / "grids.geojson"
    g.to_file(p, driver="GeoJSON")
    e = refused(store, import_grids, p, rf"row 3, field {col}: masked value")
    assert value not in str(e)


def test_import_errors_do_not_quote_cell_values(store, tmp_path):
    # a ledger whose columns slipped: the head's name sits in the persons and tags columns
    p = tmp_path / "slipped.csv"
    p.write_text(f"{HEADER}\nH1,3号楼2单元501,梁静艳,,,\n", encoding="utf-8")
    e = refused(store, import_households, p, r"row 1, field 人数: not a whole number")
    assert "梁静艳" not in str(e)
    p.write_text(f"{HEADER}\nH1,3号楼2单元501,2,梁静艳,,\n", encoding="utf-8")
    e = refused(store, import_households, p, r"row 1, field 重点人群: unknown key-group tag")
    assert "梁静艳" not in str(e)


@pytest.mark.parametrize("kind", [pytest.param("gpkg"), pytest.param("postgis", marks=pytest.mark.postgis)])
def test_the_masked_export_reimported_is_refused_on_both_stores(kind, tmp_path, request):
    """The finding as probed: export the grids as anyone can (heads masked "梁**", "199****9531"),
    import that file back: refused naming the file, row and field; nothing stored. The household
    ledger (its rows as every masked output shows them) likewise."""
    import geopandas as gpd

    from app import create_app
    from minsheng.settings import Settings
    from tests.auth_client import KEY, project_store
    store, kw = project_store(kind, tmp_path, request, users=())
    app = create_app(Settings(secret_key=KEY, **kw), store=store)
    c = app.server.test_client()
    r = c.get("/export/project.geojson?layer=grids")
    assert r.status_code == 200
    exported = tmp_path / "grids.geojson"
    exported.write_bytes(r.data)
    heads = gpd.read_file(exported)
    assert heads["head_phone"].dropna().str.contains(r"\*\*\*\*").all() and len(heads["head_phone"].dropna())
    before = store.version()
    e = refused(store, import_grids, exported, r"grids\.geojson, row \d+, field (head_name|head_phone): masked value")
    assert "****" not in str(e).split("masked value")[0]
    assert store.version() == before
    # households: stored rows as a masked output shows them, written back as a ledger
    b = store.load()
    hh = b.households.head(5).copy()
    from data.privacy import mask_households
    masked = mask_households(hh)   # what every masked output shows
    p = tmp_path / "ledger.csv"
    p.write_text("户号,楼栋编号,单元,房号,人数,户主,联系电话\n" + "".join(
        f"{r.id},{r.building_id},{r.unit or ''},{r.room or ''},{r.persons or 1},{r.head_name},{r.phone}\n"
        for r in masked.itertuples()), encoding="utf-8")
    e = refused(store, import_households, p, r"ledger\.csv, row 1, field (户主|联系电话): masked value")
    assert store.version() == before
    assert not any(str(v) in str(e) for v in masked["head_name"]) and not any(str(v) in str(e) for v in masked["phone"])
