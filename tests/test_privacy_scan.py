"""Issue 12, masking: every export and every callback response an unentitled role can reach is
scanned for the project's personal values — household heads' and grid heads' names, phones, and
sensitive key groups (低保, 特困, 归正人员, 残疾人 …) by key, Chinese and English name.

Roles: anonymous, viewer, planner (no personal data at all) and grid worker (only their own grid's
households: no phone of any other household). Outputs: the HTML map, xlsx, GeoPackage, GeoJSON
(every layer), PNG/PDF (no text layer to read: skipped), /present (page and every slide), the page
shell, the map figure and the side panel of every view with a selected grid of each community."""
import io
import json
import re
import shutil
import sqlite3
import zipfile

import pytest

from tests.auth_client import login as auth_login

from app import create_app
from callbacks import ids
from callbacks import presentation as P
from data.catalogue import key_groups
from data.gpkg_store import GpkgStore
from minsheng.cli import main
from minsheng.settings import Settings, sample_path
from tests.dash_client import call
from tests.test_app import params

PASSWORD = "correct horse 9"
ROLES = ("anonymous", "view", "plan", "worker")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    b = GpkgStore(path).load()
    g2 = b.plan_grids(b.adopted_plan_id())
    own = g2.loc[g2["level"] == 2, "id"].iloc[0]
    mp = pytest.MonkeyPatch()
    for user, role, grid in (("plan", "planner", None), ("worker", "grid_worker", own), ("view", "viewer", None)):
        mp.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
        argv = ["users", "add", "--data", str(path), "--username", user, "--role", role, "--password-stdin"]
        assert main(argv + (["--grid", grid] if grid else [])) == 0
    mp.undo()
    return path, own


@pytest.fixture(scope="module")
def app(project):
    return create_app(Settings(data=str(project[0]), secret_key="test-secret-key-0123456789abcdefgh"))


@pytest.fixture(scope="module")
def secrets(app, project):
    """What must not appear: per role, a set of literal values and the sensitive tag words."""
    b = app.server.config["MINSHENG_CONTEXT"].store.load()  # households too
    own = project[1]
    hh = b.households
    a = b.plan_assignments(b.adopted_plan_id())
    own_buildings = set(a.loc[a["grid_id"] == own, "building_id"])
    other = hh[~hh["building_id"].isin(own_buildings)]
    names = {str(v) for v in list(hh["head_name"]) + list(b.grids["head_name"]) if isinstance(v, str) and len(v) > 1}
    phones = {str(v) for v in list(hh["phone"]) + list(b.grids["head_phone"]) if isinstance(v, str) and len(v) >= 7}
    tags = set()
    for k in key_groups():
        if k.sensitive:
            tags |= {f'"{k.key}"', k.zh, k.en}   # keys as JSON strings; names as words
    assert "残疾人" in tags  # health data is sensitive (PIPL art. 28)
    own_phones = {str(v) for v in hh.loc[hh["building_id"].isin(own_buildings), "phone"] if isinstance(v, str)}
    # (synthetic phones repeat across households: a number the worker may see in their own grid is not a leak)
    other_phones = {str(v) for v in other["phone"] if isinstance(v, str)} - own_phones
    return {"anonymous": (names | phones, tags), "view": (names | phones, tags), "plan": (names | phones, tags),
            "worker": (other_phones, set())}


def client_for(app, role):
    c = app.server.test_client()
    if role != "anonymous":
        assert auth_login(c, role, PASSWORD)[1].status_code == 302
    return c


def readable(data: bytes, kind: str) -> str:
    """The text a reader of the file could see (xlsx cells, every GeoPackage row, JSON decoded)."""
    if kind == "xlsx":
        z = zipfile.ZipFile(io.BytesIO(data))
        return "\n".join(z.read(n).decode("utf-8", "ignore") for n in z.namelist() if n.endswith(".xml"))
    if kind == "gpkg":
        import tempfile
        with tempfile.NamedTemporaryFile(suffix=".gpkg") as f:
            f.write(data)
            f.flush()
            con = sqlite3.connect(f.name)
            rows = []
            for (tbl,) in con.execute("select name from sqlite_master where type='table'"):
                rows += [repr(r) for r in con.execute(f'select * from "{tbl}"')]
            con.close()
        return "\n".join(rows)
    text = data.decode("utf-8", "ignore")
    if kind == "html":  # the vendored Leaflet library is not data
        from data.exporters.html import offline_assets
        text = text.replace(offline_assets(), "")
    # JSON inside HTML/JS spells non-ASCII as \\uXXXX
    return text + "\n" + re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def _texts_of(node) -> list[str]:
    if isinstance(node, dict):
        return _texts_of(node.get("props", {}).get("children"))
    if isinstance(node, list):
        return [x for n in node for x in _texts_of(n)]
    return [] if node is None else [str(node)]


def _check_key_group_tables(node, tags, threshold: int = 5) -> int:
    """Find each key-group table (id key-groups), assert every sensitive row shows a suppressed
    value ("<5", "—") or a count of at least ``threshold``, then empty it. Returns tables seen."""
    seen = 0
    if isinstance(node, list):
        return sum(_check_key_group_tables(n, tags, threshold) for n in node)
    if not isinstance(node, dict):
        return 0
    props = node.get("props", {})
    if props.get("id") == "key-groups":
        for row in props.get("children") or []:
            cells = [" ".join(_texts_of(c)) for c in (row.get("props", {}).get("children") or [])]
            if cells and cells[0] in tags:
                v = cells[-1].replace(",", "").strip()
                assert v.startswith("<") or v in ("—", "-") or (v.isdigit() and int(v) >= threshold), cells
        props["children"] = []
        return 1
    for v in props.values():
        seen += _check_key_group_tables(v, tags, threshold)
    return seen


def leaks(text: str, values: set, tags: set) -> list:
    found = [v for v in values if v in text]
    # tag words as whole tokens (an English word like "Disabled" may be part of CSS/JS otherwise)
    found += [t for t in tags if re.search(rf"(?<![A-Za-z_-]){re.escape(t)}(?![A-Za-z_-])", text)]
    return found


EXPORTS = [("/export/map.html", "html"), ("/export/grids.xlsx", "xlsx"), ("/export/project.gpkg", "gpkg")] + [
    (f"/export/project.geojson?layer={lay}", "geojson") for lay in ("grids", "communities", "buildings",
                                                                     "service_points")]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url,kind", EXPORTS)
def test_exports_carry_no_personal_data_for_unentitled_roles(app, secrets, role, url, kind):
    c = client_for(app, role)
    values, tags = secrets[role]
    for lang in ("zh", "en"):
        r = c.get(url + ("&" if "?" in url else "?") + f"lang={lang}")
        assert r.status_code == 200, (url, r.status_code)
        found = leaks(readable(r.data, kind), values, tags)
        assert not found, (url, lang, found[:5])
        # personal=1 is refused for these roles, and the refusal page quotes nothing personal
        r = c.get(url + ("&" if "?" in url else "?") + f"lang={lang}&personal=1")
        assert r.status_code == 403 and not leaks(readable(r.data, "html"), values, tags)


@pytest.mark.parametrize("role", ROLES)
def test_every_callback_response_is_masked(app, secrets, project, role):
    c = client_for(app, role)
    b = app.server.config["MINSHENG_CONTEXT"].store.load()  # households too
    values, tags = secrets[role]
    g = b.plan_grids(b.adopted_plan_id())
    l2 = g[g["level"] == 2]
    chosen = [project[1]] + list(l2.groupby(l2["parent_id"]).head(1)["id"])[:2] + list(g.loc[g["level"] == 1, "id"][:1])
    out = []
    for path in ("/", "/present"):
        out.append(call(app, f"{ids.PAGE}.children", [(ids.URL, "search", ""), (ids.URL, "pathname", path)],
                        client=c))
    for i in range(len(P.SLIDES)):
        for lang in ("zh", "en"):
            out.append(call(app, f"{P.BODY}.children", [(P.SLIDE, "data", i), (P.LANG, "data", lang)], client=c))
    for view in ("overview", "coverage", "circle", "planner", "import", "admin"):
        out.append(call(app, f"{ids.MAP}.figure", params(b, view=view) + [(ids.FOCUS, "data", None)], client=c))
        for grid in [None, *chosen]:
            for lang in (("zh", "en") if grid is None else ("zh",)):
                out.append(call(app, f"{ids.PANEL}.children", params(b, view=view, selected=grid, lang=lang),
                                client=c))
    # the aggregate key-group table may name a sensitive group only with a suppressed or large count
    # (small-cell suppression, geo/suppress.py); it is checked here, then left out of the scan
    checked = _check_key_group_tables(out, tags)
    assert checked or role == "planner", "the panels showed no key-group table"
    text = readable(json.dumps(out, ensure_ascii=False, default=str).encode(), "json")
    found = leaks(text, values, tags)
    assert not found, (found[:5], text[max(0, text.find(found[0]) - 300):text.find(found[0]) + 40] if found else "")
    if role == "worker":  # the worker does see their own grid's ledger (so the scan can find names)
        own = b.grid_households(b.adopted_plan_id(), project[1])
        assert any(str(p) in text for p in own["phone"].dropna())
