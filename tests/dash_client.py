"""Call Dash callbacks over HTTP (as the browser does) through Flask's test client."""
import json


def _id(i):
    return json.dumps(i, sort_keys=True, separators=(",", ":")) if isinstance(i, dict) else i


def _spec(i, p, v):
    item = {"id": i, "property": p, "value": v}
    return [item] if isinstance(i, dict) else item  # a dict id stands for an ALL wildcard input


def call(app, output: str, inputs: list[tuple[str, str, object]], state=(), client=None, expect=200):
    client = client or app.server.test_client()
    oid, prop = output.split(".")
    payload = {
        "output": output, "outputs": {"id": oid, "property": prop},
        "inputs": [_spec(i, p, v) for i, p, v in inputs],
        "changedPropIds": [f"{_id(i)}.{p}" for i, p, _ in inputs[:1]],
        "state": [_spec(i, p, v) for i, p, v in state],
    }
    r = client.post("/_dash-update-component", json=payload)
    if r.status_code == 204:
        return None
    assert r.status_code == expect, r.data[:500]
    if expect != 200:
        return r
    return json.loads(r.data)["response"][oid][prop]
