import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
from PIL import Image


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "par_demo", *args], capture_output=True,
                          text=True, timeout=300)


def test_schedule_prints_the_step_count_and_writes_figure_3(tmp_path):
    out = tmp_path / "fig3.png"
    done = run("schedule", "--grid", "24", "--parallel", "16", "--order", "distant", "--no-init",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "36 steps" in done.stdout
    assert Image.open(out).size == (576, 576)


def test_schedule_draws_the_rival_orders_with_their_step_counts(tmp_path):
    for args, steps in [(("--order", "zipar", "--window", "8"), 224),
                        (("--order", "diagonal"), 47),
                        (("--order", "random-cosine", "--steps", "31"), 31)]:
        done = run("schedule", "--grid", "24", *args, "--out", str(tmp_path / "f.png"))
        assert done.returncode == 0, done.stderr
        assert f"{steps} steps" in done.stdout


def test_generate_runs_zipar_on_the_embedded_model(tmp_path):
    out = tmp_path / "zipar.gif"
    done = run("generate", "--class", "owl", "--order", "zipar", "--window", "3",
               "--out", str(out), "--size", "64")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["steps"] == 2 * 16 + 14 * 3 and report["schedule"] == "zipar, window 3"
    assert iio.imread(out, index=None).shape[0] == report["steps"]


def test_generate_writes_the_animation_and_a_json_line(tmp_path):
    out = tmp_path / "run.gif"
    done = run("generate", "--class", "owl", "--parallel", "4", "--order", "distant",
               "--seed", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["steps"] == 67 and report["seconds"] > 0
    assert iio.imread(out, index=None).shape[0] == 67


def test_bad_requests_exit_with_a_message(tmp_path):
    done = run("generate", "--class", "hippogriff", "--out", str(tmp_path / "x.gif"))
    assert done.returncode == 2 and "no class is called 'hippogriff'" in done.stderr
    done = run("generate", "--model", "PAR-XL-4x", "--class", "1", "--order", "raster",
               "--out", str(tmp_path / "x.gif"))
    assert done.returncode == 2 and "trained for distant 4x" in done.stderr
    done = run("schedule", "--parallel", "3")
    assert done.returncode == 2 and "square" in done.stderr
    done = run("schedule", "--order", "zipar")
    assert done.returncode == 2 and "--window" in done.stderr
    done = run("schedule", "--order", "raster", "--steps", "9")
    assert done.returncode == 2 and "--steps: steps applies to the random-cosine order" in (
        done.stderr)
    done = run("generate", "--model", "PAR-XL-4x", "--class", "1", "--order", "diagonal",
               "--out", str(tmp_path / "x.gif"))
    assert done.returncode == 2 and "trained for distant 4x" in done.stderr


def write_picture(path, size=(64, 64)):
    rgba = np.zeros((*size[::-1], 4), np.uint8)
    rgba[8:-8, 8:-8] = (250, 200, 40, 255)  # a yellow disc-ish square on transparency
    Image.fromarray(rgba).save(path)
    return path


def test_edit_writes_the_final_picture_and_a_json_line(tmp_path):
    image, out = write_picture(tmp_path / "in.png"), tmp_path / "edit.png"
    done = run("edit", "--image", str(image), "--region", "right", "--class", "3",
               "--parallel", "4", "--order", "distant", "--seed", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["steps"], report["kept_cells"], report["generated_cells"]) == (35, 128, 128)
    assert report["seconds"] > 0 and "transparency composited on white" in report["notes"]
    assert Image.open(out).size == (256, 256)


def test_edit_with_a_mask_writes_its_animation(tmp_path):
    image, out = write_picture(tmp_path / "in.png", (128, 64)), tmp_path / "edit.gif"
    mask = np.zeros((32, 64), np.uint8)
    mask[:, :16] = 255  # the left quarter of the wide picture: 4 cell columns of its 8 rows
    Image.fromarray(mask).save(tmp_path / "mask.png")
    done = run("edit", "--image", str(image), "--mask", str(tmp_path / "mask.png"),
               "--class", "grinning face", "--parallel", "16", "--order", "raster", "--no-init",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["generated_cells"] == 32 and report["steps"] == 2
    assert iio.imread(out, index=None).shape[0] == 2


def test_bad_edits_exit_with_a_message(tmp_path):
    image = write_picture(tmp_path / "in.png")
    (tmp_path / "note.txt").write_text("not a picture")
    done = run("edit", "--image", str(tmp_path / "note.txt"), "--region", "left", "--class", "1")
    assert done.returncode == 2 and "--image: not an image file" in done.stderr
    Image.new("L", (64, 64), 255).save(tmp_path / "all.png")
    done = run("edit", "--image", str(image), "--mask", str(tmp_path / "all.png"), "--class", "1")
    assert done.returncode == 2 and "that is Generate" in done.stderr
