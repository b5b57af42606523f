"""The launched app's MCP server, through the `mcp` client: the tools it lists and their schemas,
each tool's picture and text, refusals that name the field, concurrent calls, shared queue."""
from __future__ import annotations

import asyncio
import base64
import io
import json
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import jsonschema
import numpy as np
import pytest
from gradio_client import Client
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from PIL import Image

from par_demo.heldout import HeldoutGrids
from par_demo.orders import ScheduleSpec, build_schedule
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.training_codes import shipped_estimator

TOOLS = {"generate_image", "compare_orderings", "schedule_figure", "edit_image", "dependency_map"}
PAGE_ENDPOINTS = {"/generate", "/stop", "/export", "/compare", "/export_compare", "/schedule",
                  "/schedule_step", "/schedule_animation", "/edit", "/edit_compare", "/export_edit",
                  "/branch"}
GRID = get_preset(DEFAULT_MODEL).args.grid  # 16
SHOWN_PX = 256  # the page's pictures: 64 px enlarged crisply


def png_base64(size: int = 48, seed: int = 0) -> str:
    image = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


PNG = png_base64()
HELDOUT = len(HeldoutGrids.load())
CORRECT_CALLS = {  # one correct call per tool, the smallest and the fullest
    "generate_image": [{"class_name": "heart"},
                       {"class_name": "14", "parallelism": 16, "ordering": "random",
                        "initial_tokens": False, "seed": 5, "model": DEFAULT_MODEL}],
    "compare_orderings": [{"class_name": "bird", "orderings": ["raster 16x", "distant 16x"]},
                          {"class_name": "bird", "orderings": ["raster 1x", "distant 4x",
                                                               "distant 16x", "random 4x"],
                           "seed": 2, "model": DEFAULT_MODEL}],
    "schedule_figure": [{}, {"grid": 24, "parallelism": 16, "ordering": "raster",
                             "initial_tokens": False}],
    "edit_image": [{"image": PNG, "region": "left", "class_name": "heart"},
                   {"image": "data:image/png;base64," + PNG, "region": "border",
                    "class_name": "3", "parallelism": 16, "ordering": "raster",
                    "initial_tokens": False, "seed": 7}],
    "dependency_map": [{"row": 0, "col": 0},
                       {"row": 8, "col": 3, "image": PNG, "picture_index": -1,
                        "class_name": "heart", "method": "model"}],
}


def mcp_url(app) -> str:
    return f"{app.url}gradio_api/mcp/"


def on_server(app, work):
    """`await work(session)` in one MCP client session with the launched app."""
    async def run():
        async with streamable_http_client(mcp_url(app)) as (read, write, _):
            async with ClientSession(read, write) as session:
                await session.initialize()
                return await work(session)
    return asyncio.run(run())


def call(app, name: str, arguments: dict):
    return on_server(app, lambda session: session.call_tool(name, arguments))


def picture(result) -> np.ndarray:
    """The result's image content, decoded, after checking the parts: image, its URL, the text."""
    assert not result.isError, result.content
    image, url, _ = result.content
    assert image.type == "image" and image.mimeType == "image/png"
    assert url.type == "text" and url.text.startswith("Image URL: http")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(image.data))).convert("RGB"))


def report(result):
    text = result.content[-1]
    assert text.type == "text"
    return json.loads(text.text)


def error_text(result) -> str:
    assert result.isError, result.content
    (text,) = result.content
    return text.text


@pytest.fixture(scope="module")
def tools(app) -> dict:
    listed = on_server(app, lambda session: session.list_tools())
    return {tool.name: tool for tool in listed.tools}


def test_the_server_lists_the_five_tools_and_none_of_the_pages_events(tools):
    assert set(tools) == TOOLS


def test_every_schema_is_typed_described_and_satisfied_by_correct_calls(tools):
    gen = tools["generate_image"].inputSchema["properties"]
    assert gen["parallelism"]["enum"] == [1, 4, 16] and "type" not in gen["parallelism"]
    assert gen["ordering"]["enum"] == ["raster", "distant", "random", "zipar", "diagonal",
                                       "random-cosine"]
    assert gen["window"]["type"] == "integer" and gen["steps"]["type"] == "integer"
    assert gen["initial_tokens"]["type"] == "boolean" and gen["seed"]["type"] == "integer"
    assert DEFAULT_MODEL in gen["model"]["enum"]
    assert tools["generate_image"].inputSchema["required"] == ["class_name"]
    orderings = tools["compare_orderings"].inputSchema["properties"]["orderings"]
    assert orderings["type"] == "array" and "distant 4x" in orderings["items"]["enum"]
    edit = tools["edit_image"].inputSchema
    assert edit["properties"]["region"]["enum"] == ["left", "right", "top", "bottom", "centre",
                                                    "border"]
    assert edit["properties"]["image"]["type"] == "string"  # a string, not a Gradio file
    assert edit["required"] == ["image", "region", "class_name"]
    dep = tools["dependency_map"].inputSchema
    assert dep["required"] == ["row", "col"] and dep["properties"]["row"]["type"] == "integer"
    for name, tool in tools.items():
        assert "Returns" in tool.description
        assert all(p.get("description") for p in tool.inputSchema["properties"].values())
        for arguments in CORRECT_CALLS[name]:
            jsonschema.validate(arguments, tool.inputSchema)


def test_the_page_documents_its_endpoints_and_runs_the_tools_undocumented(app):
    """The page's endpoints are documented for gradio_client; the MCP server (an app of its own,
    tools_app.py) lists none of them, and its tools run on the page, undocumented there."""
    with urllib.request.urlopen(f"{app.url}gradio_api/info?all_endpoints=True") as response:
        endpoints = json.load(response)["named_endpoints"]
    assert {name: endpoints[name]["api_visibility"] for name in PAGE_ENDPOINTS} == dict.fromkeys(
        PAGE_ENDPOINTS, "public")
    assert {name: endpoints[f"/{name}"]["api_visibility"] for name in TOOLS} == dict.fromkeys(
        TOOLS, "undocumented")


def test_generate_image_returns_the_picture_of_the_same_run_on_the_page(app):
    result = call(app, "generate_image", {"class_name": "heart", "seed": 3})
    image = picture(result)
    assert image.shape == (SHOWN_PX, SHOWN_PX, 3)
    details = report(result)
    steps = build_schedule(ScheduleSpec(GRID, "distant", 4, True)).num_steps
    assert details["steps"] == details["steps_done"] == steps and details["complete"]
    assert details["tokens_per_step_max"] == 4 and details["seed"] == 3
    assert details["device"].startswith(("cpu (", "cuda (")) and details["step_path"]
    assert details["wall_seconds"] >= details["seconds"] > 0

    sampling = get_preset(DEFAULT_MODEL).sampling  # the tool samples with the model's defaults
    page_image, *_ = Client(app.url, verbose=False).predict(
        DEFAULT_MODEL, "heart", 4, "distant", True, sampling.cfg_scale, sampling.temperature,
        sampling.top_k, 3, 3, 67, api_name="/generate")
    assert np.array_equal(image, np.asarray(Image.open(page_image).convert("RGB")))


def test_generate_image_runs_every_ordering_a_schedule_can_have(app):
    result = call(app, "generate_image", CORRECT_CALLS["generate_image"][1])
    details = report(result)
    assert picture(result).shape == (SHOWN_PX, SHOWN_PX, 3)
    assert details["class"] == 14 and details["ordering"].startswith("random 16x")
    assert details["steps"] == GRID * GRID // 16


def test_generate_image_runs_zipar_with_its_window(app):
    details = report(call(app, "generate_image", {"class_name": "heart", "ordering": "zipar",
                                                  "window": 4}))
    assert details["ordering"] == "zipar, window 4" and details["steps"] == 2 * GRID + 14 * 4


def test_compare_orderings_returns_the_panels_and_one_row_per_ordering(app):
    orderings = ["raster 1x", "distant 4x", "distant 16x"]
    result = call(app, "compare_orderings", {"class_name": "heart", "orderings": orderings})
    image = picture(result)
    rows = report(result)
    assert [r["ordering"] for r in rows] == orderings
    assert [r["steps"] for r in rows] == [
        build_schedule(ScheduleSpec(GRID, order, p, p > 1)).num_steps
        for order, p in (("raster", 1), ("distant", 4), ("distant", 16))]
    assert [r["tokens/step (max)"] for r in rows] == [1, 4, 16]
    assert all(isinstance(r["speedup (time, vs 1x)"], float) for r in rows)  # against raster 1x
    assert image.shape[1] > 3 * image.shape[0] / 2  # three panels side by side


def test_schedule_figure_returns_figure_3_and_its_step_count(app):
    result = call(app, "schedule_figure", {"grid": 24, "parallelism": 4})
    image = picture(result)
    details = report(result)
    assert details["steps"] == 147 and details["tokens"] == 576
    assert details["speedup_in_steps"] == pytest.approx(576 / 147, abs=1e-4)
    assert "147 steps" in details["description"]
    assert image.shape[0] == image.shape[1] and len(np.unique(image.reshape(-1, 3), axis=0)) > 8


def test_edit_image_keeps_the_cells_outside_the_region_and_reports_the_plan(app):
    result = call(app, "edit_image", {"image": PNG, "region": "right", "class_name": "heart",
                                      "seed": 1})
    image = picture(result)
    details = report(result)
    assert image.shape == (SHOWN_PX, SHOWN_PX, 3)
    assert details["kept_cells"] == details["generated_cells"] == GRID * GRID // 2
    assert details["steps"] > 0 and details["seconds"] > 0 and details["psnr"] > 0
    assert details["class"] == get_preset(DEFAULT_MODEL).class_names().resolve("heart") and details["ordering"].startswith("distant 4x")
    again = call(app, "edit_image", {"image": "data:image/png;base64," + PNG, "region": "right",
                                     "class_name": "heart", "seed": 1})
    assert np.array_equal(picture(again), image)  # the same arguments, the same picture


def test_a_tools_picture_url_is_an_input_of_edit_image_and_dependency_map(app):
    generated = call(app, "generate_image", {"class_name": "heart", "parallelism": 16})
    url = generated.content[1].text.removeprefix("Image URL: ")
    edited = call(app, "edit_image", {"image": url, "region": "centre", "class_name": "heart",
                                      "parallelism": 16})
    assert picture(edited).shape == (SHOWN_PX, SHOWN_PX, 3)
    assert report(edited)["generated_cells"] == (GRID // 2) ** 2
    mapped = call(app, "dependency_map", {"row": 2, "col": 5, "image": url, "method": "model"})
    picture(mapped)
    details = report(mapped)
    assert details["cell"] == [2, 5] and details["class"] is None and "psnr" in details


def test_dependency_map_by_default_is_the_papers_estimator_over_the_training_emoji(app):
    result = call(app, "dependency_map", {"row": 8, "col": 8})
    details = report(result)
    expected = shipped_estimator().dependency_map((8, 8))
    assert details["method"] == "estimator" and details["pictures"] == expected.pictures
    assert details["entropy"][8][8] is None
    np.testing.assert_allclose(details["prior_entropy"], expected.prior_entropy, atol=1e-3)
    assert details["information_error"] == round(expected.error, 4)
    distance = details["information_by_distance"]
    assert distance["1"] > distance["2"] > distance["4+"]
    assert picture(result).shape[1] > 2 * picture(result).shape[0]  # three maps side by side


def test_dependency_map_of_a_heldout_picture_returns_figure_9_and_its_maps(app):
    result = call(app, "dependency_map", {"row": 8, "col": 8, "picture_index": 0,
                                          "class_name": "0", "method": "model"})
    image = picture(result)
    details = report(result)
    assert image.shape[1] > 3 * image.shape[0]  # the picture and three maps side by side
    entropy, prior = np.array(details["entropy"]), np.array(details["prior_entropy"])
    assert entropy.shape == prior.shape == (GRID, GRID)
    assert entropy[8, 8] == 0 and (prior > 0).all() and details["class"] == 0
    assert details["method"] == "model"
    assert details["picture_class"] == 0
    information = prior - entropy
    neighbours = (information[7:10, 7:10].sum() - information[8, 8]) / 8
    assert details["information_neighbours"] == pytest.approx(neighbours, abs=1e-3)


REFUSED = [  # (tool, arguments, words the message must contain: the field, what it accepts)
    ("generate_image", {"class_name": "heart", "ordering": "zipar", "window": 0},
     ["window", "1..32"]),
    ("generate_image", {"class_name": "heart", "ordering": "zipar", "window": 17},
     ["window", "1 to 16"]),
    ("schedule_figure", {"grid": 4, "ordering": "random-cosine", "steps": 17},
     ["steps", "1 to 16"]),
    ("generate_image", {"class_name": "heart", "seed": -1}, ["seed", "0..2147483647"]),
    ("generate_image", {"class_name": "heart", "seed": 2**31}, ["seed", "0..2147483647"]),
    ("generate_image", {"class_name": "hippogriff"},
     ["class", f"index 0..{len(get_preset(DEFAULT_MODEL).class_names()) - 1}"]),
    ("generate_image", {"class_name": ""}, ["class", "a name or an index"]),
    ("generate_image", {"class_name": "heart", "model": "PAR-XL-4x"},
     ["PAR-XL-4x.pt", "not on this machine", "hf download"]),
    ("compare_orderings", {"class_name": "heart", "orderings": ["distant 4x"]},
     ["orderings", "2 to 4"]),
    ("compare_orderings", {"class_name": "heart", "orderings": ["distant 4x", "distant 4x"]},
     ["ordering", "only once"]),
    ("compare_orderings", {"class_name": "heart", "orderings": ["raster 1x"] + [
        "distant 4x", "distant 16x", "raster 4x", "random 4x"]}, ["orderings", "2 to 4"]),
    ("schedule_figure", {"grid": 33}, ["grid", "2..32"]),
    ("schedule_figure", {"grid": 1}, ["grid", "2..32"]),
    ("schedule_figure", {"grid": 7, "parallelism": 16}, ["grid"]),
    ("edit_image", {"image": "hello", "region": "left", "class_name": "heart"},
     ["image", "data: URL", "base64"]),
    ("edit_image", {"image": base64.b64encode(b"not a picture").decode(), "region": "left",
                    "class_name": "heart"}, ["image", "not an image"]),
    ("edit_image", {"image": "https://example.com/a.png", "region": "left",
                    "class_name": "heart"}, ["image", "not fetched"]),
    ("edit_image", {"image": "http://127.0.0.1:1/gradio_api/file=/etc/passwd", "region": "left",
                    "class_name": "heart"}, ["image", "not fetched"]),  # no file of the app's
    ("edit_image", {"image": "http://127.0.0.1:1/gradio_api/file=/tmp/par_demo_files/../../etc/"
                    "passwd", "region": "left", "class_name": "heart"}, ["image", "not fetched"]),
    ("edit_image", {"image": png_base64(8), "region": "left", "class_name": "heart"},
     ["image", "too small"]),
    ("edit_image", {"image": PNG, "region": "left", "class_name": "hippogriff"}, ["class"]),
    ("edit_image", {"image": PNG, "region": "left", "class_name": "heart", "seed": -1},
     ["seed", "0..2147483647"]),
    ("dependency_map", {"row": 16, "col": 0}, ["row", "0..15"]),
    ("dependency_map", {"row": 0, "col": -1}, ["col", "0..15"]),
    ("dependency_map", {"row": 0, "col": 0, "picture_index": 0}, ["picture_index", "model"]),
    ("dependency_map", {"row": 0, "col": 0, "image": PNG}, ["image", "model"]),
    ("dependency_map", {"row": 0, "col": 0, "method": "model", "picture_index": HELDOUT},
     ["picture_index", f"-1..{HELDOUT - 1}"]),
    ("dependency_map", {"row": 0, "col": 0, "method": "model"}, ["image"]),
    ("dependency_map", {"row": 0, "col": 0, "method": "model", "picture_index": 1,
                        "image": PNG}, ["image", "not both"]),
    ("dependency_map", {"row": 0, "col": 0, "method": "model", "image": "nope"}, ["image"]),
]
OFF_SCHEMA = [  # refused by the MCP layer's schema check, naming what the field accepts
    ("generate_image", {"class_name": "heart", "parallelism": "4"}, ["[1, 4, 16]"]),
    ("generate_image", {"class_name": "heart", "parallelism": 2}, ["[1, 4, 16]"]),
    ("generate_image", {"class_name": "heart", "ordering": "spiral"}, ["'distant'"]),
    ("generate_image", {"class_name": "heart", "seed": "0"}, ["integer"]),
    ("generate_image", {"class_name": "heart", "initial_tokens": "yes"}, ["boolean"]),
    ("generate_image", {"parallelism": 4}, ["class_name"]),
    ("compare_orderings", {"class_name": "heart", "orderings": "distant 4x"}, ["array"]),
    ("edit_image", {"image": PNG, "region": "middle", "class_name": "heart"}, ["'border'"]),
    ("dependency_map", {"row": "8", "col": 0}, ["integer"]),
    ("dependency_map", {"row": 8, "col": 0, "method": "guess"}, ["'estimator'"]),
]


@pytest.mark.parametrize("tool, arguments, words", REFUSED + OFF_SCHEMA)
def test_wrong_values_are_mcp_errors_naming_the_field(app, tool, arguments, words):
    message = error_text(call(app, tool, arguments))
    assert all(word in message for word in words), message
    assert "Traceback" not in message and "Server error" not in message


def test_concurrent_calls_return_the_pictures_of_solo_calls(app):
    arguments = [{"class_name": "red apple", "parallelism": 16, "seed": seed} for seed in range(8)]

    async def together(session):
        return await asyncio.gather(*(session.call_tool("generate_image", a) for a in arguments))

    async def alone(session):
        return [await session.call_tool("generate_image", a) for a in arguments]

    concurrent = [picture(r) for r in on_server(app, together)]
    solo = [picture(r) for r in on_server(app, alone)]
    assert all(np.array_equal(c, s) for c, s in zip(concurrent, solo))
    assert len({s.tobytes() for s in solo}) == len(arguments)  # different seeds, different images


def queue_size(app) -> int:
    with urllib.request.urlopen(f"{app.url}gradio_api/queue/status") as response:
        return json.load(response)["queue_size"]


def test_tool_calls_wait_for_the_same_slots_as_the_pages_runs(app):
    """A flood of tool calls fills the page's run slots: a visitor's run then waits its turn
    behind them (in a group of their own, it would start at once)."""
    raster = {"class_name": "heart", "parallelism": 1, "ordering": "raster",
              "initial_tokens": False}
    flood_calls = [raster | {"seed": seed} for seed in range(8)]

    async def flood(session):
        return await asyncio.gather(*(session.call_tool("generate_image", a) for a in flood_calls))

    with ThreadPoolExecutor(1) as pool:
        flooding = pool.submit(on_server, app, flood)
        while queue_size(app) < 2 and not flooding.done():
            time.sleep(0.01)
        sampling = get_preset(DEFAULT_MODEL).sampling
        visitor = Client(app.url, verbose=False).submit(
            DEFAULT_MODEL, "heart", 1, "raster", False, sampling.cfg_scale, sampling.temperature,
            sampling.top_k, 0, 3, 67, api_name="/generate")
        ranks = []
        while not visitor.done():
            ranks.append(visitor.status().rank or 0)
            time.sleep(0.01)
        results = flooding.result(timeout=300)
    assert max(ranks) >= 1, "the visitor's run never waited behind the tool calls"
    assert all(not r.isError for r in results)
    assert visitor.result()[-1]["complete"]


def test_a_picture_up_to_the_limit_reaches_the_tool_and_a_larger_one_is_a_tool_error(app):
    """The request limit (16 MB) carries a 10 MB picture as base64; over it, the call is a tool
    error naming the argument, and the client's session goes on."""
    def oversize(megabytes: float) -> str:
        return "data:image/png;base64," + "A" * int(megabytes * 2**20)

    async def work(session):
        base = {"region": "left", "class_name": "heart"}
        reached = await session.call_tool("edit_image", base | {"image": oversize(14)})
        refused = await session.call_tool("edit_image", base | {"image": oversize(20)})
        after = await session.call_tool("schedule_figure", {"grid": 8})
        return reached, refused, after

    reached, refused, after = on_server(app, work)
    assert error_text(reached) == "image: the file is larger than 10 MB"  # the tool's own check
    message = error_text(refused)
    assert message.startswith("image: the call is 20.0 MB, over the 16 MB an MCP call may carry")
    assert "at most 10 MB" in message
    assert report(after)["steps"] > 0
