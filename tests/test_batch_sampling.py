"""Batch sampling: per-picture seeds, `python -m par_demo sample` on one process and under
torchrun (gloo on CPU), a killed run resumed, and the refusals."""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from PIL import Image

from benchmarks.batch_sizes import compare
from par_demo.__main__ import _schedule_args, _spec, main
from par_demo.batch_cli import add_arguments
from par_demo.batch_job import job_from_args
from par_demo.batch_sampling import even_labels, picture_draws, sample_tokens
from par_demo.checkpoints import load_model
from par_demo.orders import ScheduleSpec
from par_demo.presets import DEFAULT_MODEL, get_preset
from par_demo.sampler import inverse_cdf

# 5 batches of 2 guided pictures, distant 4x (67 steps) on the embedded model
JOB = ["--num-images", "10", "--batch", "2", "--parallel", "4", "--order", "distant",
       "--seed", "3"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same kernels in every process


def sample_command(*args: str, world: int = 1) -> list[str]:
    launcher = ([] if world == 1 else
                ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(world)])
    return [sys.executable, *launcher, "-m", "par_demo", "sample", *args]


def sample(*args: str, world: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run(sample_command(*args, world=world), capture_output=True, text=True,
                          timeout=300, env=ENV)


def report(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def sample_here(capsys, *args: str) -> tuple[int, dict | str]:
    """The command in this process, on one thread like the subprocesses: (exit code, its JSON
    line or its error message)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code = main(["sample", *args])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr()
    return code, json.loads(printed.out.strip().splitlines()[-1]) if code == 0 else printed.err


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The job in one process, uninterrupted, with a PNG folder."""
    root = tmp_path_factory.mktemp("batch")
    out, png = root / "one.npz", root / "png"
    line = report(sample(*JOB, "--out", str(out), "--png-dir", str(png)))
    with np.load(out) as saved:
        return line, saved["arr_0"], saved["arr_1"], png


def test_one_process_writes_the_adm_layout_labels_pngs_and_a_json_line(reference):
    line, images, labels, png = reference
    assert images.dtype == np.uint8 and images.shape == (10, 64, 64, 3)
    assert labels.tolist() == list(range(10))  # every class in turn
    assert len({image.tobytes() for image in images}) == 10
    assert (line["images"], line["new_images"], line["world_size"]) == (10, 10, 1)
    assert line["device"] == "cpu" and line["images_per_second"] > 0 and line["steps"] == 67
    assert sorted(p.name for p in png.iterdir()) == [f"{i:06d}.png" for i in range(10)]
    assert np.array_equal(np.asarray(Image.open(png / "000007.png")), images[7])
    assert not (png.parent / "one.npz.parts").exists()


def test_two_gloo_processes_make_the_same_array_as_one(reference, tmp_path):
    _, images, labels, _ = reference
    out = tmp_path / "two.npz"
    line = report(sample(*JOB, "--out", str(out), world=2))
    assert (line["world_size"], line["new_images"]) == (2, 10)
    with np.load(out) as saved:
        assert np.array_equal(saved["arr_0"], images)
        assert np.array_equal(saved["arr_1"], labels)


def test_a_killed_run_resumes_to_the_uninterrupted_result(reference, tmp_path, capsys):
    _, images, _, _ = reference
    out = tmp_path / "killed.npz"
    parts = tmp_path / "killed.npz.parts"
    run = subprocess.Popen(sample_command(*JOB, "--out", str(out)), env=ENV,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not list(parts.glob("batch_*.npz")) and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    finished = len(list(parts.glob("batch_*.npz")))
    assert not out.exists() and 1 <= finished < 5, "the run ended before it could be killed"
    code, line = sample_here(capsys, *JOB, "--out", str(out))
    assert code == 0, line
    assert line["resumed_images"] == 2 * finished and line["new_images"] == 10 - 2 * finished
    with np.load(out) as saved:
        assert np.array_equal(saved["arr_0"], images)


def test_one_class_resized_for_scoring(tmp_path, capsys):
    out = tmp_path / "owl.npz"
    code, line = sample_here(capsys, "--num-images", "3", "--batch", "2", "--class", "owl",
                             "--image-size", "32", "--parallel", "16", "--no-init",
                             "--out", str(out))
    assert code == 0, line
    owl = get_preset(DEFAULT_MODEL).class_names().resolve("owl")
    with np.load(out) as saved:
        assert saved["arr_0"].shape == (3, 32, 32, 3) and saved["arr_0"].dtype == np.uint8
        assert saved["arr_1"].tolist() == [owl] * 3
    assert line["steps"] == 16 and line["new_images"] == 3


def test_a_rival_order_samples_with_its_own_steps(tmp_path, capsys):
    code, line = sample_here(capsys, "--num-images", "2", "--batch", "2", "--order",
                             "random-cosine", "--steps", "12", "--out", str(tmp_path / "c.npz"))
    assert code == 0, line
    assert line["steps"] == 12 and line["schedule"] == "random-cosine, 12 steps"


def test_bad_arguments_get_messages_naming_the_flag(tmp_path, capsys):
    out = str(tmp_path / "x.npz")
    cases = [
        (["--num-images", "0", "--out", out], "--num-images must be a whole number >= 1, got 0"),
        (["--num-images", "4", "--batch", "0", "--out", out], "--batch must be a whole number"),
        (["--num-images", "4", "--seed", "-1", "--out", out], "--seed must be a whole number >= 0"),
        (["--num-images", "4", "--out", str(tmp_path / "x.png")], "--out must name a .npz"),
        (["--num-images", "4", "--device", "tpu", "--out", out], "--device must be cpu or cuda"),
        (["--num-images", "4", "--class", "hippogriff", "--out", out], "no class is called 'hippogriff'"),
        (["--num-images", "4", "--parallel", "3", "--out", out], "do not divide a 16x16 grid"),
        (["--num-images", "4", "--model", "PAR-XL-4x", "--order", "raster", "--out", out],
         "trained for distant 4x"),
        (["--num-images", "4", "--image-size", "2", "--out", out], "--image-size must be"),
        (["--num-images", "4", "--order", "zipar", "--out", out], "--window"),
        (["--num-images", "4", "--order", "zipar", "--window", "17", "--out", out],
         "--window: window must be 1 to 16"),
        (["--num-images", "4", "--order", "random-cosine", "--out", out], "--steps"),
        (["--num-images", "4", "--order", "diagonal", "--parallel", "4", "--out", out],
         "--parallel"),
        (["--num-images", "4", "--order", "distant", "--window", "2", "--out", out],
         "--window: window applies to the zipar order only"),
    ]
    for args, message in cases:
        code, error = sample_here(capsys, *args)
        assert code == 2 and message in error, (args, error)
    assert not (tmp_path / "x.npz.parts").exists()


def test_a_rerun_with_other_settings_or_over_a_result_is_refused(tmp_path, capsys):
    out = tmp_path / "x.npz"
    parser = argparse.ArgumentParser()
    _schedule_args(parser, grid_default=None)
    add_arguments(parser)
    earlier = parser.parse_args(["--num-images", "4", "--batch", "8", "--out", str(out)])
    preset = get_preset(DEFAULT_MODEL)
    job = job_from_args(earlier, preset, _spec(earlier, preset.args.grid))
    job.parts.mkdir()
    (job.parts / "job.json").write_text(json.dumps(job.settings()))
    code, error = sample_here(capsys, "--num-images", "4", "--batch", "4", "--out", str(out))
    assert code == 2 and "holds shards of a run with other settings (batch differ)" in error
    out.write_bytes(b"")
    code, error = sample_here(capsys, "--num-images", "4", "--out", str(out))
    assert code == 2 and "exists already" in error


def test_a_pictures_draws_depend_on_the_seed_and_its_index_only():
    both = picture_draws(5, [3, 7], 16)
    assert torch.equal(both[1], picture_draws(5, [7], 16)[0])
    assert not torch.equal(both[0], both[1])
    assert not torch.equal(both[0], picture_draws(6, [3], 16)[0])
    assert ((both >= 0) & (both < 1)).all()


def test_inverse_cdf_picks_the_interval_holding_the_draw_and_never_a_zero_probability():
    probs = torch.tensor([[0.0, 0.25, 0.0, 0.75]]).repeat(5, 1)
    draws = torch.tensor([0.0, 0.2, 0.25, 0.9, 0.999999])
    assert inverse_cdf(probs, draws).tolist() == [1, 1, 3, 3, 3]


def test_a_pictures_tokens_do_not_depend_on_its_batch_mates():
    preset = get_preset(DEFAULT_MODEL)
    model = load_model(preset).transformer
    schedule = preset.check(ScheduleSpec(grid=16, order="distant", parallel=16, init_tokens=False))
    first = sample_tokens(model, schedule, [0, 1], [0, 1], preset.sampling)
    other = sample_tokens(model, schedule, [0, 5], [0, 9], preset.sampling)
    assert np.array_equal(first[0], other[0]) and not np.array_equal(first[1], other[1])


def test_even_labels_cycle_through_every_class():
    assert even_labels(7, 3).tolist() == [0, 1, 2, 0, 1, 2, 0]


def test_the_batch_size_benchmark_finds_no_change_between_equal_batches():
    preset = get_preset(DEFAULT_MODEL)
    model = load_model(preset).transformer
    spec = ScheduleSpec(grid=16, order="distant", parallel=16, init_tokens=False)
    rows = compare(model, preset, spec, pictures=3, batches=[2, 2, 3])
    assert [(r["batch"], r["against_batch"]) for r in rows] == [(2, 2), (3, 2)]
    assert rows[0]["pictures_changed"] == rows[0]["tokens_changed"] == 0.0
    assert 0 <= rows[1]["tokens_changed"] <= rows[1]["pictures_changed"] <= 1
