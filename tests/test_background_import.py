"""Issue 12, long work: imports are Dash background callbacks on a real manager (diskcache by
default): the request answers at once with a job handle, the job reports its stage, and a
cancel button is wired to it."""
import json

import pytest

from app import background_manager, task_dir
from callbacks import ids
from minsheng.settings import Settings
from tests.dash_client import end_id
from tests.test_import_ui import data_url, login, setup  # noqa: F401  (fixture)


def test_manager_is_diskcache_in_a_shared_folder_per_project(tmp_path):
    from dash import DiskcacheManager
    s = Settings(data=str(tmp_path / "p.gpkg"))
    m = background_manager(s)
    assert isinstance(m, DiskcacheManager) and m.handle.directory == task_dir(s)
    assert task_dir(s) == task_dir(Settings(data=str(tmp_path / "p.gpkg")))  # every worker: one folder
    assert task_dir(s) != task_dir(Settings(data=str(tmp_path / "q.gpkg")))
    assert background_manager(Settings(task_dir=str(tmp_path / "jobs"))).handle.directory == str(tmp_path / "jobs")


def test_imports_are_background_callbacks_with_progress_and_cancel(setup):  # noqa: F811
    app, path = setup
    specs = {k: v for k, v in list(app.callback_map.items())
             if ids.IMPORT_GRIDS_RESULT in k or k.startswith(ids.IMPORT_HOUSEHOLDS_RESULT)}
    assert len(specs) == 2
    for k, v in specs.items():
        bg = v.get("background") or {}
        assert bg.get("progress") and bg.get("cancel"), k


def test_grid_upload_answers_with_a_job_then_progress_then_the_report(setup):  # noqa: F811
    app, path = setup
    c = login(app, "plan")
    dup = next(k.split("plan.options@")[1].split(".")[0] for k in list(app.callback_map)
               if "import-grids-result" in k and "plan.options@" in k)
    payload = {"output": f"..{ids.IMPORT_GRIDS_RESULT}.children...plan.options@{dup}..",
               "outputs": [{"id": ids.IMPORT_GRIDS_RESULT, "property": "children"},
                           {"id": ids.PLAN, "property": f"options@{dup}"}],
               "inputs": [{"id": ids.UPLOAD_GRIDS, "property": "contents", "value": data_url(b"not geojson")}],
               "changedPropIds": [f"{ids.UPLOAD_GRIDS}.contents"],
               "state": [{"id": ids.UPLOAD_GRIDS, "property": "filename", "value": "坏.geojson"},
                         {"id": ids.IMPORT_DATUM, "property": "value", "value": "auto"},
                         {"id": ids.IMPORT_ALLOW_EMPTY, "property": "value", "value": []},
                         {"id": ids.LANG, "property": "data", "value": "zh"}]}
    q = {"endId": end_id(c)}
    first = c.post("/_dash-update-component", json=payload, query_string=q).get_json()
    assert "cacheKey" in first and "job" in first and "response" not in first   # not blocked on the import
    assert first["cancel"] == [{"id": ids.IMPORT_GRIDS_CANCEL, "property": "n_clicks"}]
    q.update(cacheKey=first["cacheKey"], job=first["job"])
    seen, answer = [], None
    import time
    deadline = time.monotonic() + 120
    while answer is None and time.monotonic() < deadline:
        b = c.post("/_dash-update-component", json=payload, query_string=q).get_json()
        if "progress" in b:
            seen.append(b["progress"][f"{ids.IMPORT_GRIDS_PROGRESS}.value"])
        answer = b.get("response")
        time.sleep(0.05)
    assert answer is not None
    assert "导入失败" in json.dumps(answer, ensure_ascii=False) and "坏.geojson" in json.dumps(answer, ensure_ascii=False)
    assert not seen or set(seen) <= {"0", "1", "2", "3"}


# -- the upload's private folder is removed on success, failure and cancel (issue 12, leftovers) --

def _households_payload(content: bytes, filename="台账.csv"):
    return {"output": f"{ids.IMPORT_HOUSEHOLDS_RESULT}.children",
            "outputs": {"id": ids.IMPORT_HOUSEHOLDS_RESULT, "property": "children"},
            "inputs": [{"id": ids.UPLOAD_HOUSEHOLDS, "property": "contents", "value": data_url(content)}],
            "changedPropIds": [f"{ids.UPLOAD_HOUSEHOLDS}.contents"],
            "state": [{"id": ids.UPLOAD_HOUSEHOLDS, "property": "filename", "value": filename},
                      {"id": ids.IMPORT_REPLACE_ROOMS, "property": "value", "value": []},
                      {"id": ids.LANG, "property": "data", "value": "zh"}]}


def _uploads(root):
    return sorted(p for p in root.glob("minsheng-upload-*"))


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Temporary folders of this test (inherited by the background jobs the app forks)."""
    import tempfile
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


def test_cancelled_import_leaves_no_upload_folder(tmp_path, monkeypatch, private_tmp):
    import shutil
    import time

    from app import create_app
    from data.gpkg_store import GpkgStore
    from minsheng.settings import sample_path
    from tests.test_import_ui import PASSWORD, login as ui_login
    import io
    from minsheng.cli import main
    path = tmp_path / "p.gpkg"
    shutil.copyfile(sample_path(), path)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["users", "add", "--data", str(path), "--username", "admin", "--role", "admin",
                 "--password-stdin"]) == 0

    def slow_import(store, upload, **kw):  # runs in the job's process: holds the upload until killed
        assert upload.exists()
        time.sleep(120)
    monkeypatch.setattr("data.importers.households.import_households", slow_import)
    app = create_app(Settings(data=str(path), secret_key="z" * 32, task_dir=str(tmp_path / "jobs")))
    c = ui_login(app, "admin")
    version = GpkgStore(path).read_model().version
    q = {"endId": end_id(c)}
    first = c.post("/_dash-update-component", json=_households_payload(b"id,building\n1,B1\n"), query_string=q)
    first = first.get_json()
    assert "job" in first
    deadline = time.monotonic() + 60
    while not _uploads(private_tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    held = _uploads(private_tmp)
    assert len(held) == 1 and (held[0] / "台账.csv").read_bytes() == b"id,building\n1,B1\n"   # the job holds it
    # the cancel button, as the renderer sends it
    cancel = {"output": f"{ids.IMPORT_HOUSEHOLDS_CANCEL}.id",
              "outputs": {"id": ids.IMPORT_HOUSEHOLDS_CANCEL, "property": "id"},
              "inputs": [{"id": ids.IMPORT_HOUSEHOLDS_CANCEL, "property": "n_clicks", "value": 1}],
              "changedPropIds": [f"{ids.IMPORT_HOUSEHOLDS_CANCEL}.n_clicks"], "state": []}
    r = c.post("/_dash-update-component", json=cancel, query_string={**q, "cancelJob": first["job"]})
    assert r.status_code in (200, 204)
    assert not _uploads(private_tmp)                        # gone with the killed job, at once
    assert GpkgStore(path).read_model().version == version   # and nothing was written


def test_failed_and_successful_imports_leave_no_upload_folder(setup, private_tmp):  # noqa: F811
    from tests.dash_client import post
    from tests.test_import_ui import login as ui_login
    app, path = setup
    c = ui_login(app, "admin")
    r = post(c, _households_payload(b"\xff\xfe not a ledger", "坏.csv"))
    assert "导入失败" in json.dumps(r.get_json(), ensure_ascii=False)
    assert not _uploads(private_tmp)
    from data.gpkg_store import GpkgStore
    b = GpkgStore(path).read_model()
    bid = str(b.buildings["id"].iloc[0])
    r = post(c, _households_payload(f"户号,楼栋编号,单元,房号,人数\nHX1,{bid},99,9901,2\n".encode(), "ok.csv"))
    assert "import-households-done" in json.dumps(r.get_json()), r.get_json()
    assert not _uploads(private_tmp)


def test_folders_of_dead_processes_are_swept_and_sigterm_cleans_up(tmp_path, private_tmp):
    import os
    import signal
    import subprocess
    import sys
    import time

    from data.scratch import sweep
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    orphan = private_tmp / f"minsheng-upload-{dead.pid}-abc"
    orphan.mkdir()
    (orphan / "台账.xlsx").write_bytes(b"personal data")
    alive = private_tmp / f"minsheng-export-{os.getppid()}-abc"   # a live process's folder stays
    alive.mkdir()
    other = private_tmp / "someone-elses-folder"
    other.mkdir()
    assert sweep() == [orphan] and alive.exists() and other.exists()
    # a job that gets SIGTERM (Celery's revoke) removes its folder before it dies
    code = ("import sys, time, tempfile; tempfile.tempdir = sys.argv[1]\n"
            "from data.scratch import private_dir\n"
            "with private_dir('upload') as d:\n"
            "    (d / 'x').write_text('x'); print(d, flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(private_tmp)], stdout=subprocess.PIPE, text=True,
                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    d = p.stdout.readline().strip()
    assert os.path.isdir(d)
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=30)
    time.sleep(0.1)
    assert not os.path.exists(d)
