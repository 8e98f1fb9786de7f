"""Issue 12, long work: imports are Dash background callbacks on a real manager (diskcache by
default): the request answers at once with a job handle, the job reports its stage, and a
cancel button is wired to it."""
import json

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
