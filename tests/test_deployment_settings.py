"""Issue 12, deployment settings file: street/community codes and catalogue overrides are used,
not code constants; bad values stop the start with a message naming the file and the field."""
import json
import shutil
import sys

import numpy as np
import pytest

from data.catalogue import catalogue
from data.gpkg_store import GpkgStore
from geo.codes import check_codes, community_parts
from minsheng.cli import main
from minsheng.settings import Settings, SettingsError, from_env, read_settings_file, sample_path
from tests.dash_client import call

KEY = "test-secret-key-0123456789abcdefgh"


@pytest.fixture()
def project(tmp_path):
    path = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    return path


def _toml(tmp_path, text: str, name="minsheng.toml"):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return f


def _plan_ids(path):
    return list(GpkgStore(path).read_model().plans["id"].astype(str))


# -- codes ------------------------------------------------------------------------------------

def test_community_parts_use_given_codes_and_keep_numbers_distinct():
    streets, nums = community_parts(["C1", "C2", "C3", "C4"], ["甲社区", "乙社区", "丙社区", "丁社区"],
                                    ["学院路街道", "学院路街道", "学院路街道", "清河街道"], [1, 2, 3, 1],
                                    street_codes=(("学院路街道", "034"),), community_codes=(("乙社区", "001"),),
                                    default_street="012")
    assert streets.tolist() == ["034", "034", "034", "012"]
    # 乙 takes 001 by name; 甲 (own number 1) moves to the first free number; 丙 keeps 3; 丁 is another street
    assert nums.tolist() == [2, 1, 3, 1]
    with pytest.raises(ValueError, match="more than one community"):
        community_parts(["C1", "C2"], ["a", "b"], ["s", "s"], [1, 2], community_codes=(("C1", "005"), ("b", "005")))


def test_settings_street_code_yields_proposed_codes_that_pass_check(project, tmp_path, capsys):
    f = _toml(tmp_path, '[codes]\nstreet = "021"\n[codes.streets]\n"学院路街道" = "034"\n'
                        '[codes.communities]\n"C002" = "007"\n')
    before = set(_plan_ids(project))
    assert main(["propose", "--data", str(project), "--settings", str(f), "--out-plan", "按设置编码"]) == 0
    new = (set(_plan_ids(project)) - before).pop()
    g = GpkgStore(project).read_model().plan_grids(new)
    codes = g["code"].astype(str)
    assert codes.str.fullmatch(r"\d{20}").all()
    assert codes.str.startswith("1001" "110108" "034").all()          # the street of the settings, not 012
    l1 = g[g["level"] == 1]
    assert set(l1.loc[l1["parent_id"] == "C002", "code"].str[13:16]) == {"007"}   # [codes.communities]
    assert not check_codes(g["id"], g["level"], g["parent_id"], g["code"], prefix="1001110108034")
    capsys.readouterr()
    main(["check", "--data", str(project), "--plan", new, "--code-prefix", "1001110108034", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert not [p for p in out["problems"] if p["kind"] == "bad_code"]


def test_planner_edit_renumbers_with_the_settings_street(project):
    from geo.plan import make_context, plan_from_bundle, renumber_codes
    b = GpkgStore(project).read_model()
    s = Settings(street_codes=(("学院路街道", "034"),), community_codes=(("C001", "009"),))
    plan = renumber_codes(plan_from_bundle(b, b.adopted_plan_id(), context=make_context(b.buildings, b.communities,
                                                                                         settings=s)))
    g = plan.grids
    assert g["code"].str[10:13].eq("034").all()
    assert set(g.loc[g["id"].str.startswith("C001"), "code"].str[13:16]) == {"009"}
    assert not check_codes(g["id"], g["level"], g["parent_id"], g["code"], prefix="1001110108034")


def test_imported_grids_without_codes_get_the_settings_street(project, tmp_path):
    from data.importers.grids import import_grids
    store = GpkgStore(project)
    b = store.read_model()
    g = b.plan_grids(b.adopted_plan_id())
    g2 = g[g["level"] == 2][["id", "name", "geometry"]].copy()
    src = tmp_path / "grids.geojson"
    g2.to_file(src, driver="GeoJSON")
    s = Settings(data=str(project), street_codes=(("学院路街道", "045"),))
    rep = import_grids(store, src, created_by="t", settings=s)
    new = store.read_model().plan_grids(rep.plan_id)
    assert new["code"].astype(str).str[10:13].eq("045").all()
    assert not check_codes(new["id"], new["level"], new["parent_id"], new["code"], prefix="1001110108045")


# -- catalogue overrides ----------------------------------------------------------------------

@pytest.fixture()
def overrides(tmp_path):
    (tmp_path / "service_types.csv").write_text(
        "key,zh,en,minutes\nclinic,社区卫生室（本地）,Local health room,15\n"
        "night_school,夜校,Night school,20\n", encoding="utf-8")
    (tmp_path / "key_groups.csv").write_text("key,zh,en,sensitive\nveteran,优抚对象,Entitled veteran,true\n",
                                             encoding="utf-8")
    (tmp_path / "visits.csv").write_text("key,frequency\nveteran,weekly\n", encoding="utf-8")
    return _toml(tmp_path, '[catalogues]\nservice_types = "service_types.csv"\nkey_groups = "key_groups.csv"\n'
                           'visit_frequency = "visits.csv"\n')


def test_catalogue_overrides_are_applied(overrides):
    s = from_env(settings_file=str(overrides))
    cat = s.catalogue()
    clinic = cat.service_type("clinic")
    assert (clinic.zh, clinic.en, clinic.minutes) == ("社区卫生室（本地）", "Local health room", 15)
    assert clinic.osm_tags == catalogue().service_type("clinic").osm_tags        # unfilled columns kept
    assert cat.service_type("night_school").minutes == 20                        # a deployment's own type
    assert "veteran" in cat.sensitive_keys and "veteran" in cat.small_cell_keys
    assert "veteran" not in catalogue().sensitive_keys                            # the shipped one unchanged
    from geo.workload import rates_of
    assert rates_of(s)["veteran"] == pytest.approx(52 / 12)                      # visit rates from [catalogues]


def test_catalogue_override_visible_in_the_cli(project, overrides, capsys):
    assert main(["circle", "--data", str(project), "--settings", str(overrides), "--catalogue-minutes",
                 "--type", "clinic,market"]) == 0
    out = capsys.readouterr().out
    clinic = next(line for line in out.splitlines() if line.startswith("clinic"))
    market = next(line for line in out.splitlines() if line.startswith("market"))
    assert clinic.split()[1] == "1200" and market.split()[1] == "800"           # 15 min x 80 m/min; 10 min
    main(["check", "--data", str(project), "--settings", str(overrides), "--json"])
    rows = json.loads(capsys.readouterr().out)["grids"]
    assert rows and "veteran" not in rows[0] and "party_member" in rows[0]      # now sensitive: not printed
    out = project.parent / "map.html"
    assert main(["export", "--data", str(project), "--settings", str(overrides), "--out", str(out)]) == 0
    assert "社区卫生室（本地）" in out.read_text(encoding="utf-8")


def test_catalogue_override_visible_in_the_app(project, overrides):
    from app import create_app
    from callbacks import ids
    s = from_env(settings_file=str(overrides), data=str(project), secret_key=KEY)
    app = create_app(s)
    page = json.dumps(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", "/")]),
                      ensure_ascii=False)
    assert "社区卫生室（本地）" in page and "卫生服务站" not in page
    en = json.dumps(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", "?lang=en"), (ids.URL, "pathname", "/")]))
    assert "Local health room" in en
    c = app.server.test_client()
    html = c.get("/export/map.html").get_data(as_text=True)
    assert "社区卫生室（本地）" in html or "\\u793e\\u533a\\u536b\\u751f\\u5ba4" in html
    import io
    import openpyxl
    wb = openpyxl.load_workbook(io.BytesIO(c.get("/export/grids.xlsx?lang=zh").data))
    heads = {str(c.value) for ws in wb.worksheets for c in ws[1]}
    assert "党员" in heads and "优抚对象" not in heads and "退役军人" not in heads   # sensitive now: not exported


# -- bad values -------------------------------------------------------------------------------

@pytest.mark.parametrize("csv_text,field", [
    ("key,minutes\nclinic,soon\n", "field minutes"),
    ("key,color\nclinic,#fff\n", "field color"),
    ("key,colour\nclinic,#ffffff\n", "field colour"),
    ("key,zh\nnew_type,新\n", "field en"),
    ("key,osm_tags\nclinic,amenity\n", "field osm_tags"),
])
def test_bad_service_type_override_names_settings_file_csv_row_and_field(tmp_path, csv_text, field):
    (tmp_path / "st.csv").write_text(csv_text, encoding="utf-8")
    f = _toml(tmp_path, '[catalogues]\nservice_types = "st.csv"\n')
    with pytest.raises(SettingsError) as e:
        read_settings_file(f)
    msg = str(e.value)
    assert str(f) in msg and "[catalogues] service_types" in msg and "st.csv" in msg
    assert field in msg and ("row 2" in msg or "unknown column" in msg)


@pytest.mark.parametrize("csv_text,match", [
    ("key,sensitive\nnew_group,true\n", "unknown key group"),
    ("key,sensitive\ndisabled,false\n", "cannot be made public"),
    ("key,sensitive\nveteran,maybe\n", "true or false"),
])
def test_bad_key_group_override(tmp_path, csv_text, match):
    (tmp_path / "kg.csv").write_text(csv_text, encoding="utf-8")
    f = _toml(tmp_path, '[catalogues]\nkey_groups = "kg.csv"\n')
    with pytest.raises(SettingsError, match=match):
        read_settings_file(f)


def test_bad_settings_stop_cli_and_app_with_a_message_not_a_traceback(project, tmp_path, capsys):
    f = _toml(tmp_path, '[codes]\nstreet = "12"\n')
    assert main(["check", "--data", str(project), "--settings", str(f)]) == 2
    err = capsys.readouterr().err
    assert "设置文件错误 / settings error" in err and str(f) in err and "[codes] street" in err
    assert "3 位数字" in err and "3 digits" in err and "Traceback" not in err
    import app
    assert app.main(["--data", str(project), "--settings", str(f), "--dev"]) == 2
    err = capsys.readouterr().err
    assert "[codes] street" in err and "Traceback" not in err
    import subprocess
    r = subprocess.run([sys.executable, "-c", "import app; app.wsgi()"], capture_output=True, text=True,
                       env={**__import__("os").environ, "MINSHENG_SETTINGS": str(f), "MINSHENG_DATA": str(project)},
                       cwd=str(__import__("pathlib").Path(app.__file__).parent), timeout=120)
    assert r.returncode == 2 and "[codes] street" in r.stderr and "Traceback" not in r.stderr


def test_relative_catalogue_paths_are_beside_the_settings_file(tmp_path):
    d = tmp_path / "etc"
    d.mkdir()
    (d / "st.csv").write_text("key,zh\nclinic,卫生室\n", encoding="utf-8")
    f = _toml(d, '[catalogues]\nservice_types = "st.csv"\n')
    assert dict(read_settings_file(f)["catalogues"]) == {"service_types": str(d / "st.csv")}
    assert np.all([s.zh for s in catalogue(read_settings_file(f)["catalogues"]).service_types if s.key == "clinic"]
                  == ["卫生室"])


def test_a_district_with_more_than_999_communities_keeps_their_own_street_codes():
    """2,550 communities of one street name whose own 12-digit codes carry three street codes
    (the synthetic district): each keeps its street and number; 1,000 communities in one street
    code with nothing to tell them apart is a clear error, not a crash."""
    import pytest
    from geo.codes import community_parts, own_street_codes
    n = 2550
    codes = [f"110108{i // 999 + 1:03d}{i % 999 + 1:03d}" for i in range(n)]
    streets, nums = community_parts([f"C{i}" for i in range(n)], [f"社区{i}" for i in range(n)], ["合成街道"] * n,
                                    [i % 999 + 1 for i in range(n)], own_streets=own_street_codes(codes))
    assert [f"110108{s}{k:03d}" for s, k in zip(streets, nums)] == codes
    with pytest.raises(ValueError, match="999"):
        community_parts([f"C{i}" for i in range(1000)], [""] * 1000, ["街"] * 1000, list(range(1, 1001)))
