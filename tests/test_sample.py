"""The keyframe-first sampler decodes only what it needs and still samples at the configured rate."""

import cv2
import numpy as np
import pytest
from conftest import ffmpeg, make_video

from pipeline.sample import DecodeError, Sampler


def h264(gop: int, extra: tuple = ()) -> tuple:
    return ("-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop),
            "-sc_threshold", "0", *extra)


def test_dense_keyframes_decode_keyframes_only(tmp_path):
    v = make_video(tmp_path / "a.mp4", seconds=10, rate=25, codec=h264(25))  # keyframe every 1 s
    s = Sampler(v, rate=1.0)
    frames = list(s)
    assert [round(f.t_s) for f in frames] == list(range(10))
    assert all(f.keyframe for f in frames)
    assert s.stats.decoded == 10  # 10 of 250 frames decoded
    assert len(s.stats.keyframe_times) == 10


def test_intra_only_video_skips_unneeded_frames(tmp_path):
    v = make_video(tmp_path / "a.avi", seconds=4, rate=25, codec=("-c:v", "mjpeg", "-q:v", "5"))
    s = Sampler(v, rate=2.0)
    frames = list(s)
    assert len(frames) == 8
    assert s.stats.decoded <= 2 * len(frames)  # not 100


def test_long_gop_decodes_into_the_gop_only_as_far_as_needed(tmp_path):
    v = make_video(tmp_path / "a.mp4", seconds=12, rate=25, codec=h264(250))  # keyframe every 10 s
    s = Sampler(v, rate=1.0, scene_keyframes=False)
    frames = list(s)
    times = [f.t_s for f in frames]
    assert len(frames) == 12
    assert all(abs(t - round(t)) < 0.05 for t in times)  # each sample within 2 frames of its target
    # GOP 0-10 s: decoded up to 9 s (226 frames) not the whole file; GOP 10-12 s: up to 11 s
    assert s.stats.decoded < 12 * 25 - 30
    assert s.stats.converted == 12


def test_scene_cut_keyframe_is_sampled(tmp_path):
    a = make_video(tmp_path / "a.mp4", seconds=4.4, rate=25, codec=h264(25))
    b = make_video(tmp_path / "b.mp4", seconds=4, rate=25, size="320x240", codec=h264(25),
                   extra=("-vf", "negate"))
    lst = tmp_path / "l.txt"
    lst.write_text(f"file '{a}'\nfile '{b}'\n")
    joined = tmp_path / "j.mp4"
    ffmpeg("-f", "concat", "-safe", "0", "-i", str(lst), "-c", "copy", str(joined))
    s = Sampler(joined, rate=1.0, scene_keyframes=True)
    times = [f.t_s for f in s]
    assert any(abs(t - 4.4) < 0.05 for t in times)  # the cut at 4.4 s starts a new, off-grid GOP


def test_rotation_and_downscale(tmp_path):
    raw = make_video(tmp_path / "raw.mp4", seconds=1, size="640x360", codec=h264(25))
    rotated = tmp_path / "r.mp4"
    ffmpeg("-i", str(raw), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(rotated))
    upright = tmp_path / "upright.png"
    ffmpeg("-i", str(rotated), "-frames:v", "1", str(upright))  # ffmpeg applies the display matrix itself
    frame = next(iter(Sampler(rotated, rate=1.0, rotation=270, max_side=320)))
    assert frame.image.shape == (320, 180, 3)
    want = cv2.resize(cv2.imread(str(upright)), (180, 320))
    assert np.abs(frame.image.astype(int) - want.astype(int)).mean() < 12


def test_undecodable_file_raises(tmp_path):
    p = tmp_path / "x.mp4"
    p.write_bytes(b"\0" * 1000)
    with pytest.raises(DecodeError):
        list(Sampler(p, rate=1.0))
