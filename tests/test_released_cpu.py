"""Released models on a CPU: availability with and without their files and a GPU, loading in
the run format without a second copy, and the bf16 format's greedy tokens against fp32's on the
golden cases."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from par_demo.checkpoints import load_model
from par_demo.models.fast import FastDecoder, stacked_rows
from par_demo.models.slots import slot_layout
from par_demo.models.transformer import ModelArgs, Transformer
from par_demo.models.packed import PackedLinear, is_packed, pack_linears, packing_available
from par_demo.models.weight_format import cpu_formats, fastest_cpu_format, weight_bytes
from par_demo.orders import build_schedule
from par_demo.sampler import Prefix, sample_steps
from par_demo.sampling import SamplingConfig
from par_demo.presets import get_preset
from par_demo.ui import views
from par_demo.ui.cpu_lane import CPU_LANE, CpuLane
from par_demo.cpu_cost import CPU_COSTS, CpuCosts, step_rows
from par_demo.ui.machine import check_availability
from support import (INDEX, TRANSFORMER_CASES, HubCache, golden_expected, golden_spec,
                     golden_weights, tiny_released_preset)

REPO = "test-org/PAR-tiny"
ROOT = Path(__file__).resolve().parents[1]
GUIDANCE = (1.0, 1.5)
BF16_TEACHER_FORCED_SHARE = 0.95  # measured: 0.969 (LlamaGen tiny, guided) to 1.0 per case


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = HubCache(tmp_path / "hub")
    cache.add(REPO, "PAR-XL-4x.pt", golden_weights("par_tiny_4x"))
    cache.add(REPO, "vq_tiny.pt", golden_weights("vq_tiny"), wrapper=None)
    return cache


@pytest.mark.parametrize("gpu", [False, True], ids=["no GPU", "GPU"])
def test_a_released_model_with_its_files_runs_and_says_where(hub, gpu):
    state = check_availability(tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO), gpu=gpu,
                               cache_dir=hub.root)
    assert state.ok and state.on_cpu == (not gpu)
    if gpu:
        assert state.cost_note is None and state.label == "PAR-XL-4x-tiny"
    else:
        assert state.cost_note.startswith("runs on this CPU, about ")
        assert "s per image" in state.cost_note
        assert state.label.startswith("PAR-XL-4x-tiny (CPU, about ")


@pytest.mark.parametrize("gpu", [False, True], ids=["no GPU", "GPU"])
def test_a_released_model_without_its_files_names_the_missing_one(hub, gpu):
    preset = tiny_released_preset("PAR-XXL-4x", "par_tiny_4x", REPO)  # PAR-XXL-4x.pt absent
    state = check_availability(preset, gpu=gpu, cache_dir=hub.root)
    assert not state.ok and not state.on_cpu
    assert state.reason.startswith("PAR-XXL-4x.pt is not on this machine; fetch it with")
    assert state.label == "PAR-XXL-4x-tiny (unavailable)"


def test_a_run_replaces_the_measured_estimate():
    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO)
    costs = CpuCosts()
    first = costs.cost(preset)
    assert first.format in cpu_formats() and first.image_seconds > 0
    assert "measured here" in first.note
    costs.remember_run(preset, 12.5)
    assert costs.cost(preset).note == ("runs on this CPU, about 12 s per image "
                                       "(your last run on this machine)")
    assert costs.cost(preset).format == first.format


def test_step_rows_follow_the_schedule_and_guidance():
    preset = get_preset("PAR-XL-4x")
    rows = step_rows(preset)
    assert len(rows) == preset.check(preset.runs).num_steps
    assert set(rows) == {2, 8}  # guided: the initial tokens one at a time, then 4 per step
    assert set(step_rows(get_preset("LlamaGen-XL"))) == {2}


@pytest.mark.parametrize("name, manifest", [("PAR-XL-4x", "PAR-XL-4x"),
                                            ("PAR-3B-16x", "PAR-3B-16x"),
                                            ("LlamaGen-XL", "LlamaGen-c2i-XL-384")])
def test_a_step_reads_the_released_matrices(name, manifest):
    """The bandwidth floor's bytes: every matrix of the official layout but the embeddings."""
    matrices = sum(int(np.prod(shape)) for key, (shape, _) in INDEX["manifests"][manifest].items()
                   if key.startswith(("layers.", "output.")) and len(shape) == 2)
    assert weight_bytes(get_preset(name).args, torch.bfloat16) == 2 * matrices


def test_the_fastest_format_is_one_of_the_cpu_formats():
    args = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO).args
    fmt, seconds = fastest_cpu_format(args, [2, 8, 8])
    assert fmt in cpu_formats() and seconds > 0
    assert any(f.packed for f in cpu_formats()) == packing_available()


def test_loading_in_bf16_converts_every_weight_and_packs_the_feed_forward(hub):
    loaded = load_model(tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO), dtype=torch.bfloat16,
                        cache_dir=hub.root)
    model = loaded.transformer
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    reference = golden_weights("par_tiny_4x")
    for block_index, block in enumerate(model.layers):
        ff = block.feed_forward
        assert stacked_rows(ff.w1.weight, ff.w3.weight) is not None
        key = f"layers.{block_index}.feed_forward.w3.weight"
        assert torch.equal(ff.w3.weight, reference[key].to(torch.bfloat16))


NEEDS_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
NEEDS_PACKING = pytest.mark.skipif(not packing_available(), reason="oneDNN without bf16 here")


def _teacher_forced_share(model, case: str, cfg: float) -> float:
    """Share of the golden greedy tokens the model picks when fed the golden tokens before
    them (each step's choice alone, not the drift of a free run)."""
    schedule = build_schedule(golden_spec(case))
    layout = slot_layout(schedule)
    device = model.tok_embeddings.weight.device
    expected = golden_expected(case)[f"greedy_cfg{cfg}_raster"].to(device)
    cond = torch.tensor([1, 7], device=device)
    if cfg > 1:
        cond = torch.cat([cond, torch.full_like(cond, model.args.num_classes)])
    step = FastDecoder(model, len(cond), layout.kind.size).run(layout, cond)
    agree = []
    with torch.inference_mode():
        for t in range(schedule.num_steps):
            logits = step(t, expected)
            if cfg > 1:
                cond_logits, uncond_logits = logits.chunk(2)
                logits = uncond_logits + (cond_logits - uncond_logits) * cfg
            targets = layout.target[layout.starts[t]:layout.starts[t + 1]]
            agree.append((logits.argmax(-1) == expected[:, targets]).flatten())
    return torch.cat(agree).float().mean().item()


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=NEEDS_CUDA)])
@pytest.mark.parametrize("cfg", GUIDANCE)
@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_bf16_picks_fp32s_greedy_tokens_on_the_golden_cases(case, cfg, device):
    """The CPU's run format on the same tokens as fp32; on CUDA too (benchmarks/gpu_check.sh)."""
    base = {"par_tiny_4x": "PAR-XL-4x", "par_tiny_16x": "PAR-3B-16x",
            "llamagen_tiny_1x": "LlamaGen-XL"}[case]
    preset = tiny_released_preset(base, case, REPO)
    shares = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = Transformer(preset.args)
        model.load_state_dict(golden_weights(case))
        shares[dtype] = _teacher_forced_share(model.to(device, dtype).eval(), case, cfg)
    assert shares[torch.float32] == 1.0
    assert shares[torch.bfloat16] >= BF16_TEACHER_FORCED_SHARE, shares


@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_bf16_fast_steps_from_a_prefix_follow_the_plain_path(case):
    """The CPU's bf16 fast step (a run resumed from a prefix: the skipped steps under the
    layout's mask, then one query a row through attend) against the module's own forward,
    greedy, in bf16 both: the same tokens but for rounding (measured 99.5 to 100 %)."""
    base = {"par_tiny_4x": "PAR-XL-4x", "par_tiny_16x": "PAR-3B-16x",
            "llamagen_tiny_1x": "LlamaGen-XL"}[case]
    model = Transformer(tiny_released_preset(base, case, REPO).args)
    model.load_state_dict(golden_weights(case))
    model = model.to(torch.bfloat16).eval()
    schedule = build_schedule(golden_spec(case))
    greedy = SamplingConfig(greedy=True, cfg_scale=1.5)
    first = [e.tokens for e in sample_steps(model, schedule, [1, 7], greedy, fast=False)]
    half = schedule.num_steps // 2
    prefix = Prefix(first[half - 1], steps_done=half)
    plain, fast = (np.stack([e.tokens for e in sample_steps(model, schedule, [1, 7], greedy,
                                                             prefix=prefix, fast=path)])
                   for path in (False, True))
    assert np.mean(plain == fast) >= 0.99


@NEEDS_PACKING
@pytest.mark.parametrize("case", list(TRANSFORMER_CASES))
def test_prepacked_bf16_gives_plain_bf16s_logits_bit_for_bit(case):
    """The prepacked layout changes how the matrices are read, not the products: the same
    logits as plain bf16 on the golden cases, so the same tokens and the same share above."""
    base = {"par_tiny_4x": "PAR-XL-4x", "par_tiny_16x": "PAR-3B-16x",
            "llamagen_tiny_1x": "LlamaGen-XL"}[case]
    args = tiny_released_preset(base, case, REPO).args
    models = []
    for _ in range(2):
        model = Transformer(args)
        model.load_state_dict(golden_weights(case))
        models.append(model.to(torch.bfloat16).eval())
    pack_linears(models[1])
    assert isinstance(models[1].layers[0].feed_forward.w1, PackedLinear)
    schedule = build_schedule(golden_spec(case))
    layout = slot_layout(schedule)
    cond = torch.tensor([1, 7, args.num_classes, args.num_classes])
    expected = golden_expected(case)["greedy_cfg1.5_raster"]
    steps = [FastDecoder(m, len(cond), layout.kind.size).run(layout, cond) for m in models]
    with torch.inference_mode():
        for t in range(schedule.num_steps):
            plain, packed = (step(t, expected) for step in steps)
            assert torch.equal(plain, packed), t
    # the module's own forward (the plain step path) calls the packed layers too
    greedy = SamplingConfig(greedy=True, cfg_scale=1.5)
    plain, packed = ([e.tokens for e in sample_steps(m, schedule, [1, 7], greedy, fast=False)]
                     for m in models)
    np.testing.assert_array_equal(np.stack(plain), np.stack(packed))


def test_the_status_line_compares_the_estimate_with_the_run():
    schedule = get_preset("PAR-XL-4x").check(get_preset("PAR-XL-4x").runs)
    line = views.done_line(schedule, 18.0, None, 20.0, "cpu (test)", False, estimate=15.0)
    assert "estimated 15.0 s before the run, took 18.0 s (1.20× the estimate)" in line
    assert "estimated" not in views.done_line(schedule, 18.0, None, 20.0, "cpu (test)", False)


LOAD_AND_REPORT = """
import sys, torch
from dataclasses import replace
from pathlib import Path
from par_demo.checkpoints import load_transformer
from par_demo.models.packed import pack_linears
from par_demo.models.transformer import ModelArgs, Transformer
from par_demo.presets import get_preset

def memory(field):
    return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
                if line.startswith(field + ":"))

preset = replace(get_preset("PAR-XL-4x"), args=ModelArgs(**eval(sys.argv[2])))
with torch.device("meta"):  # the first meta model imports 80 MB of torch's code: not weights
    Transformer(preset.args)
open("/proc/self/clear_refs", "w").write("5")  # the peak (VmHWM) restarts from here
before = memory("VmRSS")
model = load_transformer(preset, Path(sys.argv[1]), dtype=torch.bfloat16)
if sys.argv[3] == "prepacked":
    pack_linears(model)
print(memory("VmHWM") - before)
"""


@pytest.mark.parametrize("layout", ["plain", pytest.param("prepacked", marks=NEEDS_PACKING)])
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_loading_holds_the_file_and_the_run_format_never_a_second_fp32_copy(tmp_path, suffix,
                                                                             layout):
    """In a fresh process, the peak memory while loading a 112 MB fp32 checkpoint into bf16
    (and prepacking it): at most the file (mapped, or read a tensor at a time) plus the bf16
    weights, with 16 MB to spare; a second fp32 copy would add 112 MB, a second bf16 one 56."""
    config = dict(dim=512, n_layer=7, n_head=8, vocab_size=4096, grid=8, num_classes=10,
                  num_fillers=3)
    model = Transformer(ModelArgs(**config)).init_weights(torch.Generator().manual_seed(0))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path = tmp_path / f"mid{suffix}"
    if suffix == ".pt":
        torch.save({"model": state}, path)
    else:
        save_file(state, str(path))
    bf16_bytes = sum(v.numel() for v in state.values()) * 2
    del model, state
    out = subprocess.run([sys.executable, "-c", LOAD_AND_REPORT, str(path), repr(config), layout],
                         capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    peak = int(out.stdout.split()[-1])
    assert peak <= path.stat().st_size + bf16_bytes + (16 << 20), peak


def test_the_fast_step_reads_the_loaded_weights_without_a_fused_copy(hub):
    model = load_model(tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO),
                       dtype=torch.bfloat16, cache_dir=hub.root).transformer
    decoder = FastDecoder(model, rows=2, length=64)
    for block, weights in zip(model.layers, decoder.layers):
        w13 = weights["gate_up"].keywords["w13"]
        assert w13.untyped_storage().data_ptr() == block.feed_forward.w1.weight.untyped_storage().data_ptr()
        assert torch.equal(w13, torch.cat([block.feed_forward.w1.weight,
                                           block.feed_forward.w3.weight]))


def test_a_released_layout_model_streams_on_the_cpu_through_the_app(hub, tmp_path, monkeypatch):
    """The Generate callback with a tiny PAR-4x in the official layout, found in the local hub
    cache on a machine without a GPU: live frames from the colour table (flat cells), the last
    one decoded, the status line with the estimate and the time it took."""
    import huggingface_hub.constants as hub_constants
    from par_demo import presets
    from par_demo.ui import generate as gen, machine
    from par_demo.ui.runs import RunViews, live_colours

    preset = tiny_released_preset("PAR-XL-4x", "par_tiny_4x", REPO)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hub.root))
    monkeypatch.setenv("PAR_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(presets.PRESETS, preset.name, preset)
    monkeypatch.setattr(machine, "gpu_available", lambda: False)  # the machine, not the code
    machine.availability.cache_clear()
    ahead = CPU_LANE.join()  # another released-model run holds the CPU
    try:
        run = gen.generate(preset.name, "1", 4, "distant", True, 1.5, 1.0, 0, 3, timings={})
        waiting = next(run)
        assert waiting.status.startswith("Waiting for the CPU: 1 released-model run ahead")
        CPU_LANE.leave(ahead)
        ahead = None
        outs = list(run)
    finally:
        if ahead is not None:
            CPU_LANE.leave(ahead)
        machine.availability.cache_clear()
    run_model = machine.MODELS.get(preset.name, "cpu").transformer
    assert run_model.tok_embeddings.weight.dtype in {f.dtype for f in cpu_formats()}
    assert is_packed(run_model) == CPU_COSTS.cost(preset).format.packed
    assert "on this CPU" in outs[0].status
    last = outs[-1]
    assert last.run.complete and last.run.device.startswith("cpu")
    assert "estimated" in last.status and "before the run, took" in last.status
    table = live_colours(machine.MODELS.get(preset.name, "cpu"))
    frames = [out.pictures.image for out in outs if isinstance(out.pictures, RunViews)]
    cell = frames[0].shape[0] // 8
    cells = frames[0].reshape(8, cell, 8, cell, 3)
    first_token = last.run.tokens[0]
    row, col = divmod(int(np.flatnonzero(first_token >= 0)[0]), 8)
    assert (cells[row, :, col] == table[first_token[row * 8 + col]]).all()  # a flat table cell
    final = frames[-1].reshape(8, cell, 8, cell, 3)
    assert final.std(axis=(1, 3)).max() > 0  # decoded: the cells have texture


def test_the_cpu_lane_runs_one_at_a_time_in_arrival_order():
    lane = CpuLane()
    first, second, third = lane.join(), lane.join(), lane.join()
    assert [lane.position(t) for t in (first, second, third)] == [0, 1, 2]
    threading.Timer(0.05, lane.leave, [first]).start()
    assert lane.wait(third, timeout=30) == 1  # woken by the change, not the timeout
    lane.leave(second)
    assert lane.position(third) == 0
    lane.leave(third)
