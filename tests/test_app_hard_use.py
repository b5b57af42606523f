"""Hard use of the launched app over HTTP: several hundred malformed calls over every endpoint
(values, and the shape of the call: too few or too many inputs, a picture that is no image
editor value, a URL or a file not uploaded, an example that does not exist), strict booleans,
Stop through the API (with or without inputs, and through /call) next to the client's
job.cancel(), concurrent clients, the upload bounds, call bodies over 16 MB, endpoints the
app lacks, the keyword API's refusals and Gradio's monitoring switched off."""
from __future__ import annotations

import io
import json
import re
import struct
import time
import zlib
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client
from gradio_client.utils import Status
from PIL import Image

from conftest import launched

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
    "model": TEXT, "class_query": ANYWHERE + ["", "hippogriff", True, 1.5, -1, 99999, 10**400]
    + UNICODE_DIGITS + ["4: mammal", "4: hippogriff", "-0", "-0: smiling face"],
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


def png_of_size(size: int, seed: int = 0) -> bytes:
    """A PNG of exactly `size` bytes: a small picture padded with a private chunk of random
    bytes (so that no two are alike: Gradio stores equal files once)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buffer, "PNG")
    picture = buffer.getvalue()
    padding = np.random.default_rng(seed).bytes(size - len(picture) - 12)
    chunk = struct.pack(">I", len(padding)) + b"prVt" + padding
    chunk += struct.pack(">I", zlib.crc32(b"prVt" + padding))
    return picture[:-12] + chunk + picture[-12:]  # before IEND


def upload(url: str, data: bytes, name: str = "picture.png"):
    """Gradio's /upload of one file: (HTTP status, body, headers (read case-blind))."""
    boundary = "par-demo-test-boundary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
            f"filename=\"{name}\"\r\nContent-Type: image/png\r\n\r\n").encode()
    body += data + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/upload", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace"), err.headers


def test_uploads_are_limited_to_a_picture(app):
    status, body, _ = upload(app.url, png_of_size(MAX_UPLOAD_BYTES))
    assert status == 200 and body.endswith('picture.png"]')
    status, body, _ = upload(app.url, png_of_size(MAX_UPLOAD_BYTES + 1))
    assert status == 413
    assert body == f"File size exceeded maximum allowed size of {MAX_UPLOAD_BYTES} bytes."
    for data, name in [(b"hello", "notes.txt"), (b"\0" * 1000, "zeros.png"),
                       (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "drawing.svg")]:
        status, body, _ = upload(app.url, data, name)
        assert status == 415 and "Only pictures are kept" in body and name in body
    stored = [p for p in (app.log.parent / "gradio").rglob("*") if p.is_file()]  # conftest
    assert not any(p.suffix in (".txt", ".svg") or p.name == "zeros.png" for p in stored)


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_an_upload_flood_is_refused_and_the_folder_kept_under_its_cap(tmp_path):
    """One client's 9 MB uploads: a budget of 45 MB in the window, a folder cap of 30 MB."""
    with launched(tmp_path, PAR_UPLOAD_BUDGET_MB="45", PAR_UPLOAD_FOLDER_MB="30") as flooded:
        folder = tmp_path / "gradio"
        answers = [upload(flooded.url, png_of_size(9 << 20, seed=i)) for i in range(8)]
        statuses = [status for status, _, _ in answers]
        assert statuses == [200] * 4 + [429] * 4
        status, reason, headers = answers[-1]
        assert reason.startswith("Upload budget used: at most 45 MB per 10 minutes per client")
        assert int(headers["Retry-After"]) > 0
        assert folder_bytes(folder) <= 30 << 20
        newest = Path(json.loads(answers[3][1])[0])
        oldest = Path(json.loads(answers[0][1])[0])
        assert newest.is_file() and not oldest.exists()  # the oldest went first
        status, reason, _ = upload(flooded.url, b"x", "tiny.txt")
        assert status == 415  # a few bytes still fit the budget; no picture, so not kept
        assert "Traceback" not in flooded.log_text()


@pytest.mark.parametrize("path", ["monitoring", "monitoring/summary", "monitoring/anything"])
def test_gradio_monitoring_is_off(app, path):
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{app.url}{path}", timeout=CALL_TIMEOUT_S)
    assert refused.value.code == 403
    assert json.load(refused.value) == {"detail": "Monitoring is not enabled."}
    assert "Monitoring URL" not in app.log_text()  # its key is not printed either


# ---------------------------------------------------------------- the shape of a call

EDIT = dict(model=DEFAULT_MODEL, picture=None, region="right", class_query="heart", parallel=16,
            order="distant", init_tokens=True, cfg=2.0, temperature=1.0, top_k=0, seed=0)
EDIT_COMPARE = dict(model=DEFAULT_MODEL, picture=None, region="right", class_query="heart",
                    orderings=["distant 16x", "raster 16x"], cfg=2.0, temperature=1.0, top_k=0,
                    seed=0)
SHAPED = ENDPOINTS | {"/edit": EDIT, "/edit_compare": EDIT_COMPARE, "/export_edit": EXPORT,
                      "/branch": dict(step=3, seed=0), "/stop": {},
                      "/load_example": dict(example=0), "/load_example_1": dict(example=0)}
META = {"_type": "gradio.FileData"}


def wrong_counts():
    """Every endpoint with no inputs, one, and one or two more than it takes."""
    for endpoint, good in SHAPED.items():
        values = list(good.values())
        for args in ([], values[:1], values + [0], values + [True, "x"]):
            if len(args) != len(values):
                yield endpoint, len(values), args


def editor_values(uploaded: str) -> list:
    """Picture payloads that are no ImageEditor value of files uploaded to this app."""
    def file(path, **more):
        return {"path": path, "meta": META} | more
    return ["abc", ["a"], 3, {"background": {"path": uploaded}},  # a FileData without meta
            {"background": file(42)}, {"background": file(uploaded), "layers": "x"},
            {"background": file(uploaded), "layers": [None]}, {"background": [file(uploaded)]},
            {"background": file("https://example.com/a.png")},
            {"background": file("http://127.0.0.1:1/a.png")},
            {"background": file(uploaded), "layers": [file("data:image/png;base64,AAAA")]},
            {"background": file("/etc/passwd")}, {"background": file(uploaded + "/../../..")},
            {"background": file(uploaded), "composite": file("ftp://example.com/a.png")}]


def test_every_call_of_the_wrong_shape_is_refused_naming_its_field(client, app):
    status, body, _ = upload(app.url, png_of_size(2000))
    uploaded = json.loads(body)[0]
    calls = [(e, f"takes {n} input", args) for e, n, args in wrong_counts()]
    for endpoint, good in (("/edit", EDIT), ("/edit_compare", EDIT_COMPARE)):
        calls += [(endpoint, "picture", list((good | {"picture": v}).values()))
                  for v in editor_values(uploaded)]
    calls += [(e, "example", [v]) for e in ("/load_example", "/load_example_1")
              for v in (99, 50, -1, 1.5, "abc", None, [], {}, True, [0])]
    url_file = {"path": "https://example.com/a.png", "meta": META}
    calls += [("/generate", "model", list((GENERATE | {"model": url_file}).values())),
              ("/generate", "seed", list((GENERATE | {"seed": [url_file]}).values())),
              ("/schedule", "grid", list((SCHEDULE | {"grid": {"path": "/etc/passwd"}}).values()))]
    assert len(calls) > 100
    for endpoint, words, args in calls:
        outcome, message = answer(app.url, client.session_hash, endpoint, args)
        where = f"{endpoint} {json.dumps(args, default=str)[:160]}"
        assert outcome == "refused", f"{where} was accepted"
        assert words in message, f"{where}: {message[:300]}"
        assert "server" not in message.lower() and "Traceback" not in message, where
        assert len(message) < 700, f"{where} echoed {len(message)} characters"
    log = app.log_text()
    assert "Traceback" not in log and "ERROR" not in log and "example.com" not in log


def test_small_refusals_say_what_is_accepted(client, app):
    session = client.session_hash
    *_, details = client.predict(*GENERATE.values(), api_name="/generate")
    steps = details["steps"]
    for step in (steps, steps + 1):  # the range it names is the one it accepts
        outcome, message = answer(app.url, session, "/branch", [step, 0])
        assert outcome == "refused" and f"step must be in 0..{steps - 1}, got {step}" in message
    outcome, message = answer(app.url, session, "/generate",
                              list((GENERATE | {"seed": 1e308}).values()))
    assert "seed must be in 0..2147483647, got 1e+308" in message and "digits" not in message
    for query in ("-0", "-00", "-0: smiling face"):
        outcome, message = answer(app.url, session, "/generate",
                                  list((GENERATE | {"class_query": query}).values()))
        assert outcome == "refused" and "class" in message, query
    fresh = Client(app.url, verbose=False).session_hash
    outcome, message = answer(app.url, fresh, "/export_edit", [True, 100])
    assert outcome == "refused" and "edit a picture first" in message


def stop_through_call(url: str, session: str) -> tuple[str, list]:
    """POST /gradio_api/call/stop, then its event's stream: (event, data) of its last event.
    The stream must close: a read that never ends fails the test."""
    body = json.dumps({"data": [], "session_hash": session}).encode()
    call = f"{url}gradio_api/call/stop"
    request = urllib.request.Request(call, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
        event = json.load(response)["event_id"]
    try:
        with urllib.request.urlopen(f"{call}/{event}", timeout=CALL_TIMEOUT_S) as response:
            stream = response.read().decode()
    except TimeoutError:
        pytest.fail(f"the stream of /call/stop never closed in {CALL_TIMEOUT_S} s")
    kind, data = re.findall(r"^event: (\w+)\ndata: (.*)$", stream, re.M)[-1]
    return kind, json.loads(data)


def test_stop_through_call_answers_closes_and_the_run_result_arrives(app):
    mine = Client(app.url, verbose=False)
    for attempt in range(6):  # as above: a run may finish before Stop reaches it
        job = start_long_run(mine, 20 + attempt)
        kind, (status, details) = stop_through_call(app.url, mine.session_hash)
        *_, final_status, final_details = job.result(timeout=CALL_TIMEOUT_S)
        if final_details["complete"]:
            continue
        assert kind == "complete" and final_details["stopped"]
        assert (status, details) == (final_status, final_details)
        kind, (status, _) = stop_through_call(app.url, mine.session_hash)
        assert status == "No run in progress: there was nothing to stop."
        return
    pytest.fail("every run finished before Stop reached it")


@pytest.mark.parametrize("endpoint, body, status, words", [
    ("/generate_image", {"class_name": "heart"}, 404, "no endpoint of the keyword API"),
    ("/no_such_thing", {}, 404, "no endpoint of the keyword API"),
    ("/generate", [1], 422, "a JSON object of its arguments"),
    ("/generate", {"class_name": "heart", "nope": 1}, 422, "takes no argument 'nope'"),
])
def test_the_keyword_api_refuses_with_a_reason(app, endpoint, body, status, words):
    request = urllib.request.Request(f"{app.url}gradio_api/call/v2{endpoint}",
                                     json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S)
    assert refused.value.code == status and words in json.load(refused.value)["detail"]
    assert "Traceback" not in app.log_text()


def test_a_call_body_over_16_megabytes_is_refused_before_gradio_reads_it(app):
    body = json.dumps({"data": ["x" * (17 << 20)] + list(GENERATE.values())[1:],
                       "session_hash": "large"}).encode()
    request = urllib.request.Request(f"{app.url}gradio_api/call/generate", body,
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S)
    assert refused.value.code == 413
    assert refused.value.read().decode().startswith("A call's body may be at most 16777216 bytes")


@pytest.mark.parametrize("route, body", [
    ("queue/join", {"data": [], "fn_index": 999, "session_hash": "s"}),
    ("queue/join", {"data": [], "fn_index": -1, "session_hash": "s"}),
    ("queue/join", {"data": [], "fn_index": "1", "session_hash": "s"}),
    ("run/no_such_thing", {"data": []}),
    ("call/no_such_thing", {"data": []}),
    ("run/predict", {"data": []}),
    ("run/generate", {"data": [], "fn_index": 10**6}),
])
def test_a_call_to_an_endpoint_the_app_lacks_is_answered_404(app, route, body):
    request = urllib.request.Request(f"{app.url}gradio_api/{route}", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S)
    detail = json.load(refused.value)["detail"]
    assert refused.value.code == 404 and detail.startswith("the app has no endpoint")
    assert "/generate" in detail and "Traceback" not in app.log_text()


def editor_part(url: str, size: int = 1000, files: int = 1, **fields) -> tuple[int, str]:
    """A call of the ImageEditor's accept_blobs (how the page sends a painted picture's parts):
    (HTTP status, body)."""
    with urllib.request.urlopen(f"{url}config", timeout=CALL_TIMEOUT_S) as response:
        editor = next(c["id"] for c in json.load(response)["components"]
                      if c.get("type") == "imageeditor")
    fields = {"component_id": editor, "session_hash": "parts", "fn_name": "accept_blobs",
              "type": "layer", "index": 0, "id": "abc"} | fields
    boundary = "par-demo-test-boundary"
    body = b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n"
                    f"{v}\r\n".encode() for k, v in fields.items())
    body += b"".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                     f"filename=\"layer_{i}.png\"\r\nContent-Type: image/png\r\n\r\n".encode()
                     + png_of_size(size, seed=i) + b"\r\n" for i in range(files))
    body += f"--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{url}gradio_api/component_server", body, {
        "Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")


@pytest.mark.parametrize("call, status, words", [
    (dict(index=10**9), 422, "index must be a layer 0..7"),  # a list of 10**9 slots: 8 GB
    (dict(index=-1), 422, "index must be a layer"),
    (dict(type="everything"), 422, "type must be one of"),
    (dict(id="x" * 65), 422, "an id of at most 64"),
    (dict(files=2), 400, "no form of one picture part"),
    (dict(fn_name="preprocess"), 404, "only its picture editor's accept_blobs"),
    (dict(component_id=1), 404, "only its picture editor's accept_blobs"),
    (dict(size=MAX_UPLOAD_BYTES + (1 << 20)), 413, "An upload takes at most"),
])
def test_the_editors_parts_are_bounded_like_uploads(app, call, status, words):
    assert editor_part(app.url) == (200, "null")  # the page's own call
    got, body = editor_part(app.url, **call)
    assert got == status and words in body, body
    assert "Traceback" not in app.log_text()
