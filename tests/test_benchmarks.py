"""The benchmarks' GPU arm run on the CPU with tiny architectures: the code a GPU session will run
is exercised here (structure and bookkeeping; the times themselves are not checked)."""
from dataclasses import replace

import pytest
import torch

from benchmarks.step_loop import released_rows, vq_rows
from par_demo.orders import build_schedule
from par_demo.presets import get_preset
from support import golden_args, golden_spec, golden_vq_args


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_released_rows_compare_both_paths_against_the_streaming_floor():
    presets = [replace(get_preset(name), args=golden_args(case), runs=golden_spec(case))
               for name, case in [("PAR-XL-4x", "par_tiny_4x"), ("LlamaGen-XL", "llamagen_tiny_1x")]]
    rows = released_rows(presets, batches=[1, 2], repeats=1, device="cpu", dtype=torch.float32)
    assert [(r["model"], r["batch"]) for r in rows] == [
        ("PAR-XL-4x", 1), ("PAR-XL-4x", 2), ("LlamaGen-XL", 1), ("LlamaGen-XL", 2)]
    for r, preset in zip(rows, [presets[0]] * 2 + [presets[1]] * 2):
        assert r["steps"] == build_schedule(preset.runs).num_steps
        assert r["ratio_image"] > 0 and r["floor_seconds"] > 0 and r["fast_over_floor"] > 0
        assert r["plain"]["previews"] == r["fast"]["previews"] == 0
    assert rows[0]["target_seconds"] == 0.12 and rows[1]["target_seconds"] is None


def test_vq_rows_time_each_batch():
    rows = vq_rows(golden_vq_args(), batches=[1, 2], repeats=1, device="cpu")
    assert [r["vq_decode_batch"] for r in rows] == [1, 2] and all(r["vq_decode_ms"] > 0 for r in rows)
