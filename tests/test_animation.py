import imageio.v3 as iio
import numpy as np
import pytest

from par_demo.animation import caption, side_by_side, write_animation


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


def test_bad_requests_are_refused(tmp_path):
    with pytest.raises(ValueError, match="use .gif or .mp4"):
        write_animation(frames(2), tmp_path / "run.avi")
    with pytest.raises(ValueError, match="frame duration"):
        write_animation(frames(2), tmp_path / "run.gif", frame_ms=1)
    with pytest.raises(ValueError, match="no frames"):
        write_animation([], tmp_path / "run.gif")
