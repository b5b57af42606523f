import json
import subprocess
import sys

import imageio.v3 as iio
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


def test_generate_writes_the_animation_and_a_json_line(tmp_path):
    out = tmp_path / "run.gif"
    done = run("generate", "--class", "mammal", "--parallel", "4", "--order", "distant",
               "--seed", "0", "--out", str(out))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["steps"] == 67 and report["seconds"] > 0
    assert iio.imread(out, index=None).shape[0] == 67


def test_bad_requests_exit_with_a_message(tmp_path):
    done = run("generate", "--class", "unicorn", "--out", str(tmp_path / "x.gif"))
    assert done.returncode == 2 and "no class is called 'unicorn'" in done.stderr
    done = run("generate", "--model", "PAR-XL-4x", "--class", "1", "--order", "raster",
               "--out", str(tmp_path / "x.gif"))
    assert done.returncode == 2 and "trained for distant 4x" in done.stderr
    done = run("schedule", "--parallel", "3")
    assert done.returncode == 2 and "square" in done.stderr
