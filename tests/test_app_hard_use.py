"""Hard use of the launched app over HTTP: several hundred malformed calls over every endpoint,
strict booleans, Stop through the API (with or without inputs) next to the client's
job.cancel(), concurrent clients, the upload limit and Gradio's monitoring switched off."""
from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from gradio_client import Client
from gradio_client.utils import Status

from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.ui.inputs import MAX_UPLOAD_BYTES

CALL_TIMEOUT_S = 120  # a call still unanswered by then has hung
LOG_WAIT_S = 60
VOCAB = get_preset(DEFAULT_MODEL).args.vocab_size  # top-k's upper bound

GENERATE = dict(model=DEFAULT_MODEL, class_query="heart", parallel=16, order="distant",
                init_tokens=True, cfg=2.0, temperature=1.0, top_k=0, seed=0, window=3,
                steps=67)
COMPARE = dict(model=DEFAULT_MODEL, class_query="heart", orderings=["distant 16x", "raster 16x"],
               overlay=True, cfg=2.0, temperature=1.0, top_k=0, seed=0)
EXPORT = dict(overlay=True, frame_ms=100)
SCHEDULE = dict(grid=24, parallel=4, order="distant", init_tokens=True, window=3, steps=67)

# values that no field accepts, whatever its type
ANYWHERE = [None, [], {}, [1, 2], {"a": 1}, "x" * 100_000]
OVERFLOW = "<1e999>"  # sent as the JSON number 1e999, which parses as infinity
NUMBERS = ANYWHERE + ["", "abc", "4", True, False, float("inf"), float("-inf"), float("nan"),
                     OVERFLOW, "Infinity", 10**400, -10**400, 1e308, -1e308, -1]
TINY = [5e-324, 1e-40]  # refused where only whole numbers or larger ones make sense
BOOLEANS = ANYWHERE + ["", "yes", "no", "1", 0, 1, 2.5, -1]
TEXT = ANYWHERE + ["", 1, 4.5, True, "no such thing"]
# digits int() or str.isdigit() would take, which no class index accepts
UNICODE_DIGITS = ["²", "⁴", "①", "'²: heart'", "²: heart", "٤", "۴", "४", "𝟒", "４"]
BAD = {
    "model": TEXT, "class_query": ANYWHERE + ["", "hippogriff", True, 1.5, -1, 999, 10**400]
    + UNICODE_DIGITS + ["4: mammal", "4: hippogriff"],
    "parallel": NUMBERS + TINY + [0, 2, 3, 9, 17, 4.5],
    "order": TEXT + ["spiral", "DISTANT"], "init_tokens": BOOLEANS, "cfg": NUMBERS + [20.5],
    "temperature": NUMBERS + TINY + [0, 0.01, 10.5], "top_k": NUMBERS + TINY + [VOCAB + 1, 0.5],
    "seed": NUMBERS + TINY + [2**31, 1.5], "orderings": ANYWHERE + [
        "distant 4x", 4, ["distant 4x"], [["distant 4x", "raster 1x"]], ["a", "b"],
        ["distant 4x", "distant 4x"], ["raster 1x", "distant 4x", "distant 16x", "raster 4x",
                                       "random 4x"], [1, 2]],
    "overlay": BOOLEANS, "frame_ms": NUMBERS + TINY + [0, 19, 2001, 80.5],
    # a grid no schedule cuts (7 at distant 4x) is explained in place, not refused
    "grid": NUMBERS + TINY + [0, 1, 33, 2.5], "step": NUMBERS + TINY + [0, 10**6, 1.5],
    "window": NUMBERS + TINY + [0, 33, 2.5], "steps": NUMBERS + TINY + [0, 1025, 2.5],
}
# the word each field's refusal must name
NAMES = {"model": "model", "class_query": "class", "parallel": "parallelism",
         "order": "ordering", "init_tokens": "initial tokens", "cfg": "guidance scale",
         "temperature": "temperature", "top_k": "top-k", "seed": "seed",
         "orderings": "ordering", "overlay": "overlay", "frame_ms": "frame duration",
         "grid": "grid", "step": "step", "window": "window", "steps": "steps"}
ENDPOINTS = {"/generate": GENERATE, "/compare": COMPARE, "/export": EXPORT,
             "/export_compare": EXPORT, "/schedule": SCHEDULE,
             "/schedule_step": SCHEDULE | {"step": 1},
             "/schedule_animation": SCHEDULE | {"frame_ms": 100}}


def malformed_calls():
    for endpoint, good in ENDPOINTS.items():
        for field in good:
            for value in BAD[field]:
                yield endpoint, field, value, list((good | {field: value}).values())


def answer(url: str, session: str, endpoint: str, args: list) -> tuple[str, str]:
    """("ok", "") or ("refused", message) from Gradio's HTTP API, with the JSON written as a
    hostile client would (Infinity, NaN, 1e999 and huge integers included); fails on a hang."""
    body = json.dumps({"data": args, "session_hash": session}).replace(f'"{OVERFLOW}"', "1e999")
    call = f"{url}gradio_api/call{endpoint}"
    request = urllib.request.Request(call, body.encode(), {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            event = json.load(response)["event_id"]
        with urllib.request.urlopen(f"{call}/{event}", timeout=CALL_TIMEOUT_S) as response:
            stream = response.read().decode()
    except TimeoutError:
        pytest.fail(f"{endpoint} {args!r:.200} hung for {CALL_TIMEOUT_S} s")
    except urllib.error.HTTPError as err:
        return "refused", err.read().decode(errors="replace")
    kind, data = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.M)[-1]
    return ("refused", data) if kind == "error" else ("ok", "")  # data: the error as JSON


def wait_for_log(app, pattern: str, count: int = 1) -> tuple[str, ...]:
    """The groups of the `count`-th match of `pattern` in the server log, once it is there."""
    deadline = time.monotonic() + LOG_WAIT_S
    while time.monotonic() < deadline:
        found = list(re.finditer(pattern, app.log_text()))
        if len(found) >= count:
            return found[count - 1].groups()
        time.sleep(0.2)
    pytest.fail(f"the server log never said {pattern!r}:\n{app.log_text()[-2000:]}")


@pytest.fixture(scope="module")
def client(app) -> Client:
    """A session that has a run and a comparison, so exports check their own inputs."""
    c = Client(app.url, verbose=False)
    c.predict(*GENERATE.values(), api_name="/generate")
    c.predict(*COMPARE.values(), api_name="/compare")
    return c


def test_every_malformed_call_is_refused_with_a_message_naming_its_field(client, app):
    calls = list(malformed_calls())
    assert len(calls) > 400
    kinds = {}
    for endpoint, field, value, args in calls:
        outcome, message = answer(app.url, client.session_hash, endpoint, args)
        where = f"{endpoint} {field}={value!r:.80}"
        assert outcome == "refused", f"{where} was accepted"
        assert NAMES[field] in message.lower(), f"{where}: {message[:300]}"
        assert "server" not in message.lower() and "Traceback" not in message, where
        assert len(message) < 600, f"{where} echoed {len(message)} characters"
        kinds[(endpoint, field)] = kinds.get((endpoint, field), 0) + 1
    assert len(kinds) == sum(len(good) for good in ENDPOINTS.values())  # every field tried
    assert "Traceback" not in app.log_text() and "ERROR" not in app.log_text()


def test_booleans_are_read_strictly(client, app):
    args = GENERATE | {"init_tokens": "false"}
    *_, details = client.predict(*args.values(), api_name="/generate")
    assert details["ordering"] == "distant 16x, without initial tokens"
    *_, details = client.predict(*(args | {"init_tokens": "true"}).values(),
                                 api_name="/generate")
    assert details["ordering"] == "distant 16x, with initial tokens"
    for loose in (0, 1, "False", "false ", "no"):
        outcome, message = answer(app.url, client.session_hash, "/generate",
                                  list((args | {"init_tokens": loose}).values()))
        assert outcome == "refused" and "initial tokens must be true or false" in message


def live(job) -> bool:
    return any(isinstance(o[4], str) and o[4].startswith("Step") for o in job.outputs())


def start_long_run(client: Client, seed: int):
    """A 256-step run; returns its job once it has streamed a live step."""
    job = client.submit(*(GENERATE | {"parallel": 1, "order": "raster", "seed": seed}).values(),
                        api_name="/generate")
    while not live(job) and not job.done():
        time.sleep(0.01)
    return job


def test_stop_through_the_api_stops_the_callers_run_only(app):
    mine, other = Client(app.url, verbose=False), Client(app.url, verbose=False)
    for attempt in range(6):  # a machine fast enough to finish before Stop arrives: try again
        others = start_long_run(other, 2)
        job = start_long_run(mine, 1)  # Stop follows its first live step at once
        status, details = mine.predict(api_name="/stop")
        *_, final_status, final_details = job.result(timeout=CALL_TIMEOUT_S)
        if final_details["complete"]:
            continue
        assert final_details["stopped"] and final_details["steps_done"] < 256
        assert f"Stopped at step {final_details['steps_done']} of 256" in final_status
        assert status == final_status and details == final_details  # Stop says where it ended
        *_, other_details = others.result(timeout=CALL_TIMEOUT_S)
        assert other_details["complete"] and other_details["steps_done"] == 256
        wait_for_log(app, rf"run stopped after step {final_details['steps_done']} of 256")
        return
    pytest.fail("every run finished before Stop reached it")


def stop_without_inputs(url: str, session: str | None) -> tuple[int, list]:
    """Gradio's /run/stop with `data: []`: (HTTP status, the answer's data)."""
    body = {"data": []} | ({"session_hash": session} if session else {})
    request = urllib.request.Request(f"{url}gradio_api/run/stop", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
        return response.status, json.load(response)["data"]


def test_stop_takes_no_inputs_over_http(app):
    nothing = "No run in progress: there was nothing to stop."
    for session in (None, "no-such-session"):
        code, (status, _) = stop_without_inputs(app.url, session)
        assert code == 200 and status == nothing
    mine = Client(app.url, verbose=False)
    for attempt in range(6):  # as above: a run may finish before Stop reaches it
        job = start_long_run(mine, 4 + attempt)
        code, (status, details) = stop_without_inputs(app.url, mine.session_hash)
        *_, final_details = job.result(timeout=CALL_TIMEOUT_S)
        if final_details["complete"]:
            continue
        assert code == 200 and details == final_details and final_details["stopped"]
        assert f"Stopped at step {final_details['steps_done']} of 256" in status
        assert stop_without_inputs(app.url, mine.session_hash)[1][0] == nothing
        return
    pytest.fail("every run finished before Stop reached it")


def test_job_cancel_ends_the_run_on_the_server(app):
    client = Client(app.url, verbose=False)
    ends = r"run (cancelled|finished) after step (\d+) of 256"
    for attempt in range(3):  # as above: a run may finish before the cancel reaches it
        before = len(re.findall(ends, app.log_text()))
        job = start_long_run(client, 3 + attempt)
        assert job.cancel()
        how, steps = wait_for_log(app, ends, count=before + 1)
        if how == "finished":
            continue
        assert int(steps) < 256 and job.status().code == Status.CANCELLED
        *_, details = client.predict(*GENERATE.values(), api_name="/generate")
        assert details["complete"]  # the app serves the same session afterwards
        return
    pytest.fail("every run finished before the cancel reached it")


def test_concurrent_clients_get_the_images_of_solo_runs(app):
    seeds = [0, 1, 2, 3]

    def run(seed):
        image, *_, details = Client(app.url, verbose=False).predict(
            *(GENERATE | {"seed": seed}).values(), api_name="/generate")
        assert details["complete"]
        return open(image, "rb").read()

    with ThreadPoolExecutor(len(seeds)) as pool:
        together = list(pool.map(run, seeds))
    alone = [run(seed) for seed in seeds]
    assert together == alone
    assert len(set(alone)) == len(seeds)  # different seeds, different images


def upload(url: str, size: int) -> tuple[int, str]:
    """Gradio's /upload of one `size`-byte file: (HTTP status, body)."""
    boundary = "par-demo-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"picture.png\"\r\nContent-Type: image/png\r\n\r\n").encode()
    body += b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


def test_uploads_are_limited_to_a_picture(app):
    status, body = upload(app.url, MAX_UPLOAD_BYTES)
    assert status == 200 and body.endswith('picture.png"]')
    status, body = upload(app.url, MAX_UPLOAD_BYTES + 1)
    assert status == 413
    assert body == f"File size exceeded maximum allowed size of {MAX_UPLOAD_BYTES} bytes."


@pytest.mark.parametrize("path", ["monitoring", "monitoring/summary", "monitoring/anything"])
def test_gradio_monitoring_is_off(app, path):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{app.url}{path}", timeout=CALL_TIMEOUT_S)
    assert refused.value.code == 403
    assert json.load(refused.value) == {"detail": "Monitoring is not enabled."}
    assert "Monitoring URL" not in app.log_text()  # its key is not printed either
