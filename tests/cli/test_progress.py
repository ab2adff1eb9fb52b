"""sr-run progress: the pure line, the plain lines off a terminal, and real runs (video and images)."""

from __future__ import annotations

import io

from sredge.cli._progress import Progress, progress_line
from tests.conftest import asset
from tests.runtime.test_video_io import make_clip


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_line():
    assert progress_line(120, 300, 10.0) == "120/300 frames (40%), 12.0 fps, ETA 15 s"
    assert progress_line(5, None, 2.0) == "5 frames, 2.5 fps"
    assert progress_line(1, 4, 0.5, unit="images") == "1/4 images (25%), 2.0 images/s, ETA 2 s"
    assert progress_line(0, 10, 0.0) == "0/10 frames (0%), 0.0 fps, ETA 0 s"


def test_plain_lines_off_a_terminal_and_the_bar_on_one():
    log = io.StringIO()
    p = Progress("sr-run", enabled=True, every_s=1e-9, stream=log)
    for i in range(1, 4):
        p.update(i, 3)
    p.finish()
    lines = log.getvalue().splitlines()
    assert len(lines) == 3 and "\r" not in log.getvalue() and lines[-1].startswith("sr-run: 3/3 frames")

    slow = io.StringIO()
    p = Progress("sr-run", enabled=True, stream=slow)  # default 10 s: a short run writes nothing
    p.update(1, 3)
    assert slow.getvalue() == ""
    for off in (Progress("sr-run", enabled=False, every_s=1e-9, stream=io.StringIO()),
                Progress("sr-run", enabled=True, every_s=0, stream=io.StringIO())):
        off.update(1, 3)
        assert off.stream.getvalue() == ""

    tty = _Tty()
    p = Progress("sr-run", enabled=True, every_s=0, stream=tty)  # the bar ignores --progress-every
    p.update(1, 3)
    p.finish()
    assert tty.getvalue().startswith("\rsr-run: 1/3 frames") and tty.getvalue().endswith("\n")


def test_sr_run_video_and_images_print_progress_lines(cli, exported, tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", n=6)
    res = cli("run", "--video", clip, "--model", exported("espcn_x3"), "-o", tmp_path / "o.mp4",
              "--progress-every", "0.000001", "--preset", "ultrafast", "--encoder", "libx264")
    assert res.code == 0, res.err
    lines = [ln for ln in res.err.splitlines() if " frames (" in ln]
    assert "\r" not in res.err and lines[-1].startswith("sr-run: 6/6 frames (100%)"), res.err

    src = tmp_path / "in"
    src.mkdir()
    for name in ("0014.jpg", "wolf_gray.jpg"):
        (src / name).write_bytes(asset(f"realworld/{name}").read_bytes())
    res = cli("run", "--image", src, "--model", exported("espcn_x3"), "-o", tmp_path / "out",
              "--progress-every", "0.000001")
    assert res.code == 0, res.err
    assert [ln.split(" (")[0] for ln in res.err.splitlines() if "images (" in ln] == [
        "sr-run: 1/2 images", "sr-run: 2/2 images"], res.err

    res = cli("run", "--image", src, "--model", exported("espcn_x3"), "-o", tmp_path / "q",
              "--progress-every", "0.000001", "-q")
    assert res.code == 0 and "images (" not in res.err
    res = cli("run", "--image", src, "--model", exported("espcn_x3"), "--progress-every", "-1")
    assert res.code == 2 and res.err.count("\n") == 1 and "--progress-every" in res.err, res.err


def test_step_progress_writes_the_last_step_and_nothing_when_quiet():
    import io

    from sredge.cli._progress import StepProgress

    out = io.StringIO()
    p = StepProgress("sr-train", 10, enabled=True, label="QAT step", stream=out)
    p.update(10, 0.01234, 32.456, 2.0)
    p.finish()
    assert out.getvalue() == "sr-train: QAT step 10/10, loss 0.0123, val 32.46 dB, 2.0 steps/s, ETA 0 s\n"
    quiet = io.StringIO()
    q = StepProgress("sr-train", 10, enabled=False, stream=quiet)
    q.update(10, 0.5, None, 1.0)
    q.finish()
    assert quiet.getvalue() == ""


def test_step_progress_counts_to_stop_after_and_leaves_out_an_unknown_rate():
    """The audit: with --steps 20000 --stop-after 40 the ETA was to step 20000 and step 40 never showed;
    QAT's first line put validation time into its rate (0.8 steps/s, ETA 2497 s, for 12 steps/s)."""
    import io

    from sredge.cli._progress import StepProgress

    out = io.StringIO()
    p = StepProgress("sr-train", 20000, enabled=True, stream=out, stop=40)
    p.update(1, 0.5, None, 0.0)
    p.update(40, 0.25, None, 10.0)  # within 30 s of the first line, but the last step of this process
    assert out.getvalue().splitlines() == ["sr-train: step 1/20000, loss 0.5000",
                                           "sr-train: step 40/20000, loss 0.2500, 10.0 steps/s, ETA 0 s (to step 40)"]
