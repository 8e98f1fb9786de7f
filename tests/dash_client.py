"""Call Dash callbacks over HTTP (as the browser does) through Flask's test client."""
import json
import re
import time


def end_id(client) -> str:
    """The signed page-load token the renderer sends with every callback (background callbacks'
    handles are signed against it): read once from the page's _dash-config."""
    tok = getattr(client, "_dash_end_id", None)
    if tok is None:
        page = client.get("/").get_data(as_text=True)
        m = re.search(r'<script id="_dash-config" type="application/json">(.*?)</script>', page, re.S)
        tok = json.loads(m.group(1)).get("end_id", "") if m else ""
        client._dash_end_id = tok
    return tok


def post(client, payload, timeout=180):
    """POST a callback as the renderer does; a background callback's job is polled (with its
    signed cacheKey/job) until its answer arrives (progress-only answers are skipped)."""
    q = {"endId": end_id(client)}
    r = client.post("/_dash-update-component", json=payload, query_string=q)
    body = r.get_json(silent=True) if r.status_code == 200 else None
    if not (isinstance(body, dict) and "cacheKey" in body and "job" in body):
        return r
    q.update(cacheKey=body["cacheKey"], job=body["job"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.post("/_dash-update-component", json=payload, query_string=q)
        b = r.get_json(silent=True) if r.status_code == 200 else None
        if r.status_code != 200 or (isinstance(b, dict) and "response" in b):
            return r
        time.sleep(0.2)
    raise AssertionError("background callback did not finish")


def _id(i):
    return json.dumps(i, sort_keys=True, separators=(",", ":")) if isinstance(i, dict) else i


def _spec(i, p, v):
    item = {"id": i, "property": p, "value": v}
    return [item] if isinstance(i, dict) else item  # a dict id stands for an ALL wildcard input


def _callback_key(app, output: str) -> str:
    """The callback map key holding `output` (a callback with several outputs is keyed
    "..a.x...b.y.."); the output itself when no callback has it."""
    if output in app.callback_map:
        return output
    for key in list(app.callback_map):
        if key.startswith("..") and output in key.strip(".").split("..."):
            return key
    return output


def call(app, output: str, inputs: list[tuple[str, str, object]], state=(), client=None, expect=200,
         changed: int | list = 1):
    """POST one callback as the renderer does and return the value of `output` (for a callback
    with several outputs, the one asked for). changed: how many leading inputs count as changed,
    or the component ids that did."""
    client = client or app.server.test_client()
    oid, prop = output.split(".")
    key = _callback_key(app, output)
    outs = [o.rsplit(".", 1) for o in key.strip(".").split("...")] if key.startswith("..") else [[oid, prop]]
    spec = app.callback_map.get(key, {})
    inputs, state = list(inputs), list(state)
    for have, want in ((inputs, spec.get("inputs", [])), (state, spec.get("state", []))):
        # inputs and states left out (those the test does not care about) are sent as None
        have += [(d["id"], d["property"], None) for d in want[len(have):] if isinstance(d.get("id"), str)]
    payload = {
        "output": key,
        "outputs": [{"id": i, "property": p} for i, p in outs] if len(outs) > 1 else {"id": oid, "property": prop},
        "inputs": [_spec(i, p, v) for i, p, v in inputs],
        "changedPropIds": [f"{_id(i)}.{p}" for i, p, _ in
                           (inputs[:changed] if isinstance(changed, int) else [x for x in inputs if x[0] in changed])],
        "state": [_spec(i, p, v) for i, p, v in state],
    }
    r = post(client, payload)
    if r.status_code == 204:
        return None
    assert r.status_code == expect, r.data[:500]
    if expect != 200:
        return r
    return json.loads(r.data)["response"].get(oid, {}).get(prop)
