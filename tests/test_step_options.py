"""How the app takes its steps: the fast path by default, the plain one on request, the device
in every summary, and ZeroGPU reservations that follow the request."""
import numpy as np

from par_demo.ui.machine import gpu_seconds, step_options
from par_demo.ui.inputs import plan_run
from par_demo.ui.runs import generation_stream


def run_summary(**overrides):
    plan = plan_run(**{"model": "PAR-emoji (embedded)", "class_query": "heart", "parallel": 16,
                       "order": "distant", "init_tokens": False, "cfg": 2.0, "temperature": 1.0,
                       "top_k": 0, "seed": 4, **overrides})
    record = None
    for record, _ in generation_stream(plan):
        pass
    return record


def test_the_fast_path_is_the_default_and_the_plain_one_a_flag(monkeypatch):
    assert step_options()["fast"]
    fast = run_summary()
    monkeypatch.setenv("PAR_PLAIN_STEPS", "1")
    assert not step_options()["fast"]
    plain = run_summary()
    assert fast.summary()["step_path"] == "fast"
    assert plain.summary()["step_path"] == "plain (reference)"
    assert np.array_equal(np.stack(fast.tokens), np.stack(plain.tokens))
    assert fast.summary()["device"].startswith("cpu (")


def test_gpu_reservations_grow_with_the_steps_and_the_model():
    assert gpu_seconds("PAR-XL-4x", 147) < gpu_seconds("LlamaGen-XL", 576)
    assert gpu_seconds("PAR-XL-4x", 147) < gpu_seconds("PAR-3B-4x", 147)
    assert gpu_seconds("PAR-XL-4x", 147) <= 30
