import imageio.v3 as iio
import numpy as np
import pytest

from par_demo.animation import caption, side_by_side, thin, write_animation


def frames(n: int, size: int = 40, value: int = 0):
    return [np.full((size, size, 3), (value + 10 * i) % 256, np.uint8) for i in range(n)]


def test_gif_has_every_frame_and_the_chosen_duration(tmp_path):
    path = write_animation(frames(5), tmp_path / "run.gif", frame_ms=120)
    read = iio.imread(path, index=None)
    assert read.shape[0] == 5
    assert iio.immeta(path, index=0)["duration"] == 120


def test_mp4_plays_the_frames_in_order_and_holds_the_last(tmp_path):
    source = frames(6, size=37, value=40)  # grey levels 40, 50, ..., 90
    path = write_animation(source, tmp_path / "run.mp4", frame_ms=100)
    read = iio.imread(path, index=None, plugin="FFMPEG")
    assert read.shape[0] == 6 + round(1500 / 100) - 1  # the last frame held for 1.5 s
    assert read.shape[1] % 16 == 0 and read.shape[2] % 16 == 0
    levels = read[:, :37, :37].reshape(read.shape[0], -1).mean(1)
    assert np.allclose(levels[:6], [40, 50, 60, 70, 80, 90], atol=3)  # lossy, not reordered
    assert np.allclose(levels[6:], 90, atol=3)


def test_side_by_side_holds_finished_panels():
    combined = side_by_side([frames(2, value=50), frames(4, value=0)], gap=4)
    assert len(combined) == 4 and combined[0].shape == (40, 84, 3)
    assert (combined[3][:, :40] == frames(2, value=50)[1]).all()


def test_caption_adds_a_text_strip():
    out = caption(frames(1)[0], "step 3/67")
    assert out.shape[0] > 40 and (out[45:] < 255).any()


def test_a_caption_gets_a_strip_line_per_text_line():
    one, two = caption(frames(1)[0], "seed 1"), caption(frames(1)[0], "seed 1\nstep 3/67")
    assert two.shape[0] - one.shape[0] == one.shape[0] - 40  # one more strip of the same height


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match="use .gif or .mp4"):
        write_animation(frames(2), tmp_path / "run.avi")
    with pytest.raises(ValueError, match="frame duration"):
        write_animation(frames(2), tmp_path / "run.gif", frame_ms=1)
    with pytest.raises(ValueError, match="no frames"):
        write_animation([], tmp_path / "run.gif")


def test_thin_spreads_indices_and_keeps_the_ends():
    assert thin(5, 10) == [0, 1, 2, 3, 4]
    picked = thin(256, 96)
    assert len(picked) == 96 and picked[0] == 0 and picked[-1] == 255
    assert picked == sorted(set(picked))


def test_gif_merges_unchanged_frames_and_stores_only_what_changed(tmp_path):
    from PIL import Image

    base = np.zeros((40, 40, 3), np.uint8)
    base[:, :20] = (200, 120, 30)
    moved = base.copy()
    moved[4:8, 30:34] = (250, 250, 250)  # a small square appears
    source = [base, moved, moved, moved, base]
    path = write_animation(source, tmp_path / "run.gif", frame_ms=100)
    read = iio.imread(path, index=None)
    assert read.shape[0] == 3  # the still stretch is one frame
    assert [iio.immeta(path, index=i)["duration"] for i in range(3)] == [100, 300, 1500]
    assert np.array_equal(read[1][..., :3], moved)  # few colours: kept exactly
    with Image.open(path) as gif:
        gif.seek(1)
        x0, y0, x1, y1 = gif.tile[0][1]
        assert (x1 - x0) * (y1 - y0) <= 16  # one palette for all: only the square is stored
