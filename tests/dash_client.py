"""Call Dash callbacks over HTTP (as the browser does) through Flask's test client."""
import json


def call(app, output: str, inputs: list[tuple[str, str, object]], state=()):
    client = app.server.test_client()
    oid, prop = output.split(".")
    payload = {
        "output": output, "outputs": {"id": oid, "property": prop},
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "changedPropIds": [f"{i}.{p}" for i, p, _ in inputs[:1]],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
    }
    r = client.post("/_dash-update-component", json=payload)
    if r.status_code == 204:
        return None
    assert r.status_code == 200, r.data[:500]
    return json.loads(r.data)["response"][oid][prop]
