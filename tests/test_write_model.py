"""The one write model (data/sqlstore.py) on both stores: row-level transactions that a killed
writer cannot half-do, an append-only audit log that concurrent writes never lose, many
processes (and gunicorn workers) that see each other's writes on the next request, and saves
that are never computed from a stale copy."""
from __future__ import annotations

import http.cookiejar
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from data import auth_store
from data.bundle import DataError, make_bundle
from data.gpkg_store import GpkgStore
from minsheng.auth import hash_password
from minsheng.settings import sample_path
from tests.test_store import sample_layers

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse 9"
MARKER = "KILLTEST-张三丰"


def _store(kind, tmp_path, request):
    if kind == "gpkg":
        return GpkgStore(tmp_path / "project.gpkg")
    from data.postgis_store import PostgisStore
    return PostgisStore(request.getfixturevalue("pg_dsn"))


KINDS = ["gpkg", pytest.param("postgis", marks=pytest.mark.postgis)]


# -- a killed writer leaves the store exactly as it was -----------------------------------------
CHILD = """
import sys, time
sys.path.insert(0, {root!r})
import pandas as pd
from data.gpkg_store import GpkgStore
from data.postgis_store import PostgisStore
kind, where = sys.argv[1], sys.argv[2]
store = GpkgStore(where) if kind == "gpkg" else PostgisStore(where)
n = 20000
hh = pd.DataFrame({{"id": [f"k{{i}}" for i in range(n)], "building_id": ["b1"] * n, "unit": 1,
                   "room": [str(i) for i in range(n)], "persons": 2, "tags": [["disabled"]] * n,
                   "head_name": {marker!r}, "phone": "13900000000", "synthetic": False}})
orig = type(store)._insert_frame
def slow(self, conn, layer, df):
    orig(self, conn, layer, df)
    if layer.name == "households":
        print("INSIDE", flush=True)   # rows written, transaction still open
        time.sleep(120)
type(store)._insert_frame = slow
store.replace_layers({{"households": hh}})
print("COMMITTED", flush=True)
"""


@pytest.mark.parametrize("kind", KINDS)
def test_kill_9_mid_write_leaves_the_store_as_it_was(kind, tmp_path, request):
    (tmp_path / "proj").mkdir()
    store = _store(kind, tmp_path / "proj", request)
    store.write_all(make_bundle(sample_layers()))
    store.append_audit("admin", "login", "session", "")
    before_version, before = store.version(), store.load()
    where = str(store.path) if kind == "gpkg" else store.dsn
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(root=str(ROOT), marker=MARKER))
    child = subprocess.Popen([sys.executable, str(script), kind, where], stdout=subprocess.PIPE, text=True,
                             cwd=tmp_path)
    try:
        line = child.stdout.readline()
        assert line.strip() == "INSIDE"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    after_store = type(store)(where)
    deadline = time.time() + 20
    while kind == "postgis" and time.time() < deadline:  # the server notices the dead client
        try:
            assert after_store.version() == before_version
            break
        except Exception:  # noqa: BLE001 - lock still held by the dying backend
            time.sleep(0.2)
    assert after_store.version() == before_version
    after = after_store.load()
    for name in ("households", "grids", "assignments", "plans", "buildings", "audit_log"):
        assert len(after.layers[name]) == len(before.layers[name]), name
    assert after.households["id"].tolist() == before.households["id"].tolist()
    assert after.building_stats["households"].sum() == before.building_stats["households"].sum()
    assert MARKER not in set(after.households["head_name"].dropna())
    # the store still takes writes
    after_store.append_audit("admin", "after_kill", "session", "")
    assert "after_kill" in set(after_store.audit_rows(limit=5)["action"])
    if kind == "gpkg":
        import sqlite3
        conn = sqlite3.connect(str(store.path))
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
        # no temporary copy of the project, and no byte of the killed write's personal data, is left
        names = sorted(p.name for p in (tmp_path / "proj").iterdir())
        assert names == ["project.gpkg"], names
        for p in (tmp_path / "proj").iterdir():
            assert MARKER.encode() not in p.read_bytes(), p.name
    else:
        after_store.close()
        store.close()


# -- nothing loaded is written into foreign files ------------------------------------------------
def test_a_file_that_is_not_a_project_is_refused_and_left_untouched(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point
    foreign = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[Point(116.3, 40.0)], crs=4326).to_file(foreign, layer="roads")
    csv = tmp_path / "ledger.csv"
    csv.write_text("户号,地址\n1,3号楼\n", encoding="utf-8")
    cut = tmp_path / "cut.gpkg"
    cut.write_bytes(sample_path().read_bytes()[:50_000])
    for path, words in ((foreign, "not a Minsheng project"), (csv, "not a GeoPackage"),
                        (cut, "GeoPackage")):
        before = path.read_bytes()
        for op in (lambda s: s.version(), lambda s: s.read_model(), lambda s: s.append_audit("a", "b", "c")):
            with pytest.raises(DataError) as e:
                op(GpkgStore(path))
            assert words in str(e.value) and str(path) in str(e.value)
        assert path.read_bytes() == before
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(path.name)) == [path.name]


def test_cli_on_a_foreign_file_exits_2_without_writing(tmp_path, capsys):
    import geopandas as gpd
    from shapely.geometry import Point

    from minsheng.cli import main
    foreign = tmp_path / "roads.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[Point(116.3, 40.0)], crs=4326).to_file(foreign, layer="roads")
    before = foreign.read_bytes()
    assert main(["check", "--data", str(foreign)]) == 2
    assert "not a Minsheng project" in capsys.readouterr().err
    assert foreign.read_bytes() == before


# -- the audit log is append-only: interleaved writes lose no row -------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_audit_rows_survive_interleaved_copies_adoptions_exports_and_imports(kind, tmp_path, request):
    from data.exporters import record_export
    from data.plans import archive_plan, copy_plan_to_draft
    store = _store(kind, tmp_path, request)
    store.write_all(make_bundle(sample_layers()))
    base = store.load()
    hh = base.households
    errors: list = []
    copies: list = []

    def run(fn):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(e))

    def failed_logins(k):
        for i in range(15):
            store.append_audit(f"mallory{k}", "login_failed", "session", "")

    def copies_and_status():
        for i in range(4):
            pid = copy_plan_to_draft(store, "p1", f"草案 {i}", "planner")
            copies.append(pid)
        archive_plan(store, copies[0], "planner")

    def exports():
        for i in range(8):
            record_export(store, fmt="xlsx", out=f"x{i}.xlsx", user="admin", allow_personal=True, plan_id="p1")

    def imports():
        for i in range(3):
            v = store.version()
            try:
                store.replace_layers({"households": hh.assign(persons=hh["persons"].fillna(0) + i)},
                                     expected_version=v)
            except Exception as e:  # a concurrent copy may make it stale: that is a clear refusal
                from data.store import ConflictError
                assert isinstance(e, ConflictError)
            store.upsert_households(hh.iloc[:1].assign(persons=9), user="admin", detail="1 row")

    threads = [threading.Thread(target=run, args=(f,)) for f in
               (lambda: failed_logins(1), lambda: failed_logins(2), copies_and_status, exports, imports)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    log = store.audit_rows(limit=10_000)
    counts = log["action"].value_counts()
    assert counts.get("login_failed", 0) == 30
    assert counts.get("copy_plan", 0) == 4
    assert counts.get("archive_plan", 0) == 1
    assert counts.get("export_personal", 0) == 8
    assert counts.get("import_households", 0) == 3
    assert len(log) == 30 + 4 + 1 + 8 + 3
    # and the audit log cannot be replaced wholesale
    with pytest.raises(DataError):
        store.replace_layers({"audit_log": log.iloc[:1]})
    assert len(store.audit_rows(limit=10_000)) == len(log)


@pytest.mark.parametrize("kind", KINDS)
def test_concurrent_saves_one_winner_losers_told_at_once(kind, tmp_path, request):
    from data.plans import copy_plan_to_draft, save_plan, stored_plan
    from data.store import ConflictError
    from geo.plan import move_buildings
    store = _store(kind, tmp_path, request)
    store.write_all(make_bundle(sample_layers()))
    pid = copy_plan_to_draft(store, "p1", "草案", "planner")
    plan, v = stored_plan(store, pid)
    rm = store.read_model()
    a = plan.assignments
    g2 = plan.grids[plan.grids["level"] == 2]
    target = g2["id"].iloc[-1]
    moving = a.loc[a["grid_id"] != target, "building_id"].iloc[:1].tolist()
    edited = move_buildings(plan, moving, target, empty="keep")
    claims, results = [], []
    real_claim = type(store).claim_plan

    def timed_claim(self, *args, **kw):
        t0 = time.perf_counter()
        try:
            return real_claim(self, *args, **kw)
        finally:
            claims.append(time.perf_counter() - t0)

    type(store).claim_plan = timed_claim
    try:
        def one():
            try:
                results.append(save_plan(store, edited, v, "planner", bundle=rm))
            except ConflictError:
                results.append("conflict")
        threads = [threading.Thread(target=one) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        type(store).claim_plan = real_claim
    assert sorted(map(str, results)) == [str(v + 1)] + ["conflict"] * 7
    assert store.plan_version(pid) == v + 1
    saved = store.plan_frames(pid)[1].set_index("building_id")["grid_id"]
    assert saved[moving[0]] == target
    # nobody waited for the winner's work: every claim is a short transaction
    assert len(claims) == 8


@pytest.mark.parametrize("kind", KINDS)
def test_read_model_has_no_households_and_refreshes_only_changed_layers(kind, tmp_path, request):
    store = _store(kind, tmp_path, request)
    store.write_all(make_bundle(sample_layers()))
    rm = store.read_model()
    for name in ("households", "users", "audit_log"):
        with pytest.raises(AttributeError):
            getattr(rm, name)
    st = rm.building_stats.set_index("building_id")
    assert st.loc["b1", "households"] == 2 and st.loc["b1", "persons"] == 3
    assert st.loc["b2", "disabled"] == 1 and st.loc["b1", "party_member"] == 1
    assert store.read_model(rm) is rm  # same version: nothing read
    store.append_audit("u", "login", "session", "")
    assert store.version() == rm.version  # the audit log is not part of the dataset
    from data.plans import copy_plan_to_draft
    copy_plan_to_draft(store, "p1", "草案", "planner")
    rm2 = store.read_model(rm)
    assert rm2.version != rm.version and len(rm2.plans) == len(rm.plans) + 1
    for name in ("buildings", "walk_edges", "communities", "service_points", "meta"):
        assert rm2.layers[name] is rm.layers[name], name  # unchanged layers are not re-read
    assert rm2.building_stats is rm.building_stats
    hh = store.grid_households("p1", rm.plan_grids("p1")["id"].iloc[0])
    assert set(hh.columns) >= {"id", "building_id", "head_name", "phone", "tags"}
    assert set(store.households(["b1"])["id"]) == {"h1", "h2"}


# -- many processes, one truth -------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http:
    """A signed-in browser: cookies, form login, Dash callbacks over HTTP."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def login(self, user: str, password: str = PASSWORD) -> int:
        from tests.auth_client import CSRF_RE
        with self.opener.open(self.base + "/login", timeout=30) as r:
            token = CSRF_RE.search(r.read().decode()).group(1)
        data = urllib.parse.urlencode({"username": user, "password": password, "csrf": token}).encode()
        req = urllib.request.Request(self.base + "/login", data=data)

        class NoRedirect(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *a, **k):
                return None
        opener = urllib.request.build_opener(NoRedirect, *[h for h in self.opener.handlers
                                                           if isinstance(h, urllib.request.HTTPCookieProcessor)])
        try:
            return opener.open(req, timeout=30).status
        except urllib.error.HTTPError as e:
            return e.code

    def callback(self, payload: dict) -> dict:
        req = urllib.request.Request(self.base + "/_dash-update-component", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        with self.opener.open(req, timeout=60) as r:
            return json.loads(r.read())["response"]


def _targets(client: Http, plan_id: str) -> list:
    from callbacks import ids
    r = client.callback({"output": f"{ids.PLANNER_TARGET}.options",
                         "outputs": {"id": ids.PLANNER_TARGET, "property": "options"},
                         "inputs": [{"id": ids.PLAN, "property": "value", "value": plan_id},
                                    {"id": ids.PLANNER_STATE, "property": "data", "value": None}],
                         "changedPropIds": [f"{ids.PLAN}.value"], "state": []})
    return [o["value"] for o in r[ids.PLANNER_TARGET]["options"]]


def _save(client: Http, dup: str, plan_id: str, base_version: int, edits: list) -> str:
    from callbacks import ids
    from tests.test_planner_ui import BUTTONS
    state = {"plan_id": plan_id, "base_version": base_version, "edits": edits, "cursor": len(edits)}
    r = client.callback({
        "output": "..planner-state.data...planner-message.children...plan.options...plan.value..."
                  "planner-selection.data@" + dup + "..",
        "outputs": [{"id": ids.PLANNER_STATE, "property": "data"}, {"id": ids.PLANNER_MSG, "property": "children"},
                    {"id": ids.PLAN, "property": "options"}, {"id": ids.PLAN, "property": "value"},
                    {"id": ids.PLANNER_SELECTION, "property": "data@" + dup}],
        "inputs": [{"id": b, "property": "n_clicks", "value": 1 if b == ids.BTN_SAVE else None} for b in BUTTONS],
        "changedPropIds": [f"{ids.BTN_SAVE}.n_clicks"],
        "state": [{"id": ids.PLANNER_STATE, "property": "data", "value": state},
                  {"id": ids.PLANNER_SELECTION, "property": "data", "value": []},
                  {"id": ids.PLANNER_TARGET, "property": "value", "value": None},
                  {"id": ids.PLAN, "property": "value", "value": plan_id},
                  {"id": ids.LANG, "property": "data", "value": "zh"}]})
    return str(r[ids.PLANNER_MSG]["children"])


def _wait_up(url: str, proc, seconds: float = 60) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stdout.read() if proc.stdout else ''}")
        try:
            urllib.request.urlopen(url + "/login", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not come up")


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_two_processes_and_gunicorn_workers_share_one_truth(kind, tmp_path, request):
    from data.plans import copy_plan_to_draft, stored_plan
    env = {**os.environ, "MINSHENG_SECRET_KEY": "k" * 40, "PYTHONPATH": str(ROOT)}
    if kind == "gpkg":
        path = tmp_path / "p.gpkg"
        shutil.copyfile(sample_path(), path)
        store = GpkgStore(path)
        env["MINSHENG_DATA"] = str(path)
        env.pop("DATABASE_URL", None)
    else:
        from minsheng.cli import main
        dsn = request.getfixturevalue("pg_dsn")
        assert main(["load", "--data", str(sample_path()), "--dsn", dsn]) == 0
        from data.postgis_store import PostgisStore
        store = PostgisStore(dsn)
        env["DATABASE_URL"] = dsn
    auth_store.add_user(store, "plan", hash_password(PASSWORD), "planner")
    pa, pb = _free_port(), _free_port()
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{pa}", "--timeout", "120", "app:wsgi()"]
    dev = [sys.executable, "-c", textwrap.dedent(f"""
        import sys; sys.path.insert(0, {str(ROOT)!r})
        from app import create_app
        from minsheng.settings import from_env
        create_app(from_env()).run(host="127.0.0.1", port={pb})""")]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for cmd in (gunicorn, dev)]
    try:
        a_url, b_url = f"http://127.0.0.1:{pa}", f"http://127.0.0.1:{pb}"
        _wait_up(a_url, procs[0])
        _wait_up(b_url, procs[1])
        a, b = Http(a_url), Http(b_url)
        assert a.login("plan") == 302 and b.login("plan") == 302
        assert _targets(a, "P1") and _targets(b, "P1")  # both processes hold a read model now
        # a user added by another process (the CLI) signs in at once, on every process
        auth_store.add_user(store, "late", hash_password(PASSWORD), "viewer")
        for _ in range(4):  # several requests, so both gunicorn workers answer
            assert Http(a_url).login("late") == 302
        assert Http(b_url).login("late") == 302
        assert Http(b_url).login("late", "wrong password 1") == 401
        # a plan made by another process is there on the next interaction
        pid = copy_plan_to_draft(store, "P1", "外部草案", "cli")
        for _ in range(4):
            assert _targets(a, pid)
        assert _targets(b, pid)
        # saves on different processes: no lost update
        plan, v = stored_plan(store, pid)
        g2 = plan.grids[plan.grids["level"] == 2]
        bg = plan.building_grid()
        src = bg.value_counts().index[0]
        parent = g2.set_index("id").loc[src, "parent_id"]
        sibs = [g for g in g2.loc[g2["parent_id"] == parent, "id"] if g != src]
        first, second = bg.index[bg == src][:2]
        from app import create_app
        from minsheng.settings import Settings
        from tests.test_planner_ui import _dup_hash
        dup = _dup_hash(create_app(Settings(data=str(sample_path()), secret_key="d" * 40)))
        msg = _save(a, dup, pid, v, [["move_buildings", {"building_ids": [first], "to_grid_id": sibs[0]}]])
        assert f"版本 {v + 1}" in msg, msg
        stale = _save(b, dup, pid, v, [["move_buildings", {"building_ids": [second], "to_grid_id": sibs[0]}]])
        assert "拒绝" in stale, stale
        assert store.plan_version(pid) == v + 1
        msg = _save(b, dup, pid, v + 1, [["move_buildings", {"building_ids": [second], "to_grid_id": sibs[0]}]])
        assert f"版本 {v + 2}" in msg, msg
        saved = store.plan_frames(pid)[1].set_index("building_id")["grid_id"]
        assert saved[first] == sibs[0] and saved[second] == sibs[0]  # both moves kept
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        if kind == "postgis":
            store.close()
