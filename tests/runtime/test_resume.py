"""Resumable runs, the pure part (journal, refusal reasons, where to continue, decode timestamps) and
the work folder and join on real files (a real encoder's segments, real MP4s)."""

from __future__ import annotations

import json
from dataclasses import asdict
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest

from sredge.errors import InputError
from sredge.runtime.resume import (
    Fingerprint,
    Journal,
    Segment,
    dts_plan,
    mismatch,
    new_header,
    parse_journal,
    resume_window,
    segment_frames,
    segment_name,
)
from sredge.runtime.segments import (
    SegmentedWriter,
    WorkFolder,
    fingerprint,
    frame_digest,
    work_folder,
)
from sredge.runtime.video_io import Frame, VideoWriter, parameter_sets
from sredge.runtime.window import Window

FP = Fingerprint(size=1000, mtime_ns=5, head="a" * 64, tail="b" * 64)
SETTINGS = {"--model": "m.onnx (sha256 0123)", "--tile": "auto (--memory-budget 1024)", "--crf": "18"}
TB = Fraction(1, 12800)


def _seg(k: int, first: int, frames: int, step: int = 512) -> Segment:
    return Segment(segment_name(k), first, frames, first * step, (first + frames - 1) * step, f"h{k}", 100 + k)


def _journal_text(*segments: Segment, extra: tuple[str, ...] = ()) -> str:
    j = Journal(new_header(FP, SETTINGS, TB, None), list(segments))
    return "\n".join(j.lines() + list(extra)) + "\n"


def test_journal_round_trip_and_a_line_cut_short_by_a_crash():
    text = _journal_text(_seg(0, 0, 10), _seg(1, 10, 10))
    j = parse_journal(text)
    assert j.frames == 20 and [s.file for s in j.segments] == ["seg-000000.mp4", "seg-000001.mp4"]
    assert j.time_base == TB and j.zero_pts == 0 and j.done is None
    torn = text + json.dumps({"segment": asdict(_seg(2, 20, 10))})[:37]  # power lost mid-append
    assert parse_journal(torn).frames == 20
    assert parse_journal(text + '{"done": 20}\n').done == 20


def test_journal_keeps_only_contiguous_segments_and_refuses_foreign_files():
    gap = _journal_text(_seg(0, 0, 10), _seg(1, 11, 10), _seg(2, 21, 10))
    assert parse_journal(gap).frames == 10
    assert parse_journal("") is None and parse_journal("not json\n") is None
    assert parse_journal('{"journal": "something else", "version": 1}\n') is None
    assert parse_journal(_journal_text().replace('"version": 1', '"version": 99')) is None


def test_partial_output_record_survives_later_segments():
    text = _journal_text(_seg(0, 0, 10), extra=('{"partial": {"size": 7, "mtime_ns": 8, "frames": 10}}',
                                                json.dumps({"segment": asdict(_seg(1, 10, 10))})))
    j = parse_journal(text)
    assert j.frames == 20 and j.partial == {"size": 7, "mtime_ns": 8, "frames": 10}


@pytest.mark.parametrize("change, reason", [
    ({"size": 1001}, "the input changed since the run began (its size differs)"),
    ({"mtime_ns": 6}, "its modification time differs"),
    ({"tail": "c" * 64}, "its last MiB differs"),
])
def test_a_changed_input_is_named(change, reason):
    j = parse_journal(_journal_text(_seg(0, 0, 5)))
    fp = Fingerprint(**(asdict(FP) | change))
    assert reason in mismatch(j, fp, SETTINGS)


def test_a_changed_setting_is_named_with_both_values():
    j = parse_journal(_journal_text(_seg(0, 0, 5)))
    assert mismatch(j, FP, SETTINGS) is None
    assert mismatch(j, FP, SETTINGS | {"--tile": "128"}) == "--tile was auto (--memory-budget 1024), now 128"
    assert mismatch(j, FP, SETTINGS | {"--crf": "None"}) == "--crf was 18, now not given"
    assert mismatch(j, FP, SETTINGS | {"--blend": "True"}) == "--blend was not given, now True"


def test_resume_window_starts_at_the_last_committed_frame_and_keeps_the_users_end():
    # 25 fps in 1/12800: 512 ticks a frame; 20 frames committed, the last at pts 19 * 512.
    j = parse_journal(_journal_text(_seg(0, 0, 10), _seg(1, 10, 10)))
    last_s = Fraction(19 * 512, 12800)
    w = resume_window(None, j, Fraction(0))
    assert w == Window(float(last_s), None, None)
    assert resume_window(None, j, Fraction(1, 10)).start_s == pytest.approx(float(last_s - Fraction(1, 10)))
    assert resume_window(Window(0, None, 50), j, Fraction(0)).frames == 31  # 30 left + the one dropped again
    # A window from 2 s for 3 s (zero_pts: the source pts of its first frame, 2 s in):
    jw = parse_journal(_journal_text(_seg(0, 0, 10)).replace('"zero_pts": null', '"zero_pts": 25600'))
    w = resume_window(Window(2.0, 3.0, None), jw, Fraction(0))
    at = Fraction(25600 + 9 * 512, 12800)
    assert w.start_s == pytest.approx(float(at)) and w.duration_s == pytest.approx(float(5 - at))
    # Nothing left after the last committed frame: that frame alone (it is dropped, the run only joins).
    assert resume_window(Window(0, None, 20), j, Fraction(0)).frames == 1
    assert resume_window(Window(0, float(last_s) - 0.5, None), j, Fraction(0)).frames == 1
    j.done = 20
    assert resume_window(None, j, Fraction(0)).frames == 1


def test_segment_frames():
    assert segment_frames(Fraction(25), 4.0) == 100
    assert segment_frames(Fraction(30000, 1001), 4.0) == 120
    assert segment_frames(None, 1.0) == 30 and segment_frames(Fraction(25), 0.01) == 1


@pytest.mark.parametrize("delays", [[0, 0], [2, 2, 2], [1, 3, 0], [3, 1]])
def test_dts_plan_increases_and_never_passes_pts(delays):
    rng = np.random.default_rng(len(delays))
    segments, start = [], 0
    for d in delays:  # each segment: frames in presentation order, decode order reordered by up to d
        n = int(rng.integers(5, 15))
        pts = [start + 3 * i for i in range(n)]
        order = list(pts)
        for i in range(0, n - d, d + 1):  # groups decoded back to front: the last one waits d packets
            order[i:i + d + 1] = order[i:i + d + 1][::-1]
        segments.append(order)
        start += 3 * n
    plan, delay = dts_plan(segments, 3)
    flat_pts = [p for s in segments for p in s]
    flat_dts = [x for s in plan for x in s]
    assert delay == max(delays)
    assert all(b > a for a, b in pairwise(flat_dts))
    assert all(d <= p for d, p in zip(flat_dts, flat_pts, strict=True))


# -- on real files -------------------------------------------------------------------------------------------


def _writer_factory(w=64, h=48, tb=TB):
    return lambda path, audio_from=None: VideoWriter(path, w, h, tb, Fraction(25), preset="ultrafast",
                                                     codec="libx264", audio_from=audio_from)


def _frame(i: int, w=64, h=48) -> Frame:
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:, (2 * i) % w] = 255
    rgb[..., 2] = (9 * i) % 256
    return Frame(rgb, i * 512, i)


def test_parameter_sets_of_an_encoder_equal_those_of_its_mp4(tmp_path):
    with _writer_factory()(tmp_path / "a.mp4") as w:
        for i in range(3):
            w.write(_frame(i))
        ours = w._stream.codec_context.extradata  # Annex B, as the encoder made it
    with av.open(str(tmp_path / "a.mp4")) as c:
        stored = c.streams.video[0].codec_context.extradata  # avcC, as MP4 stores it
    assert ours != stored and ours[:4] == b"\0\0\0\1" and stored[:1] == b"\1"
    assert parameter_sets("h264", ours) == parameter_sets("h264", stored) and len(parameter_sets("h264", ours)) == 2
    assert parameter_sets("ffv1", b"xyz") == (b"xyz",)


def test_segments_commit_durably_and_a_stray_temporary_is_removed(tmp_path):
    out = tmp_path / "out.mp4"
    work = WorkFolder(out)
    assert work.path == work_folder(out) == tmp_path / "out.mp4.sredge-partial"
    journal = Journal(new_header(FP, SETTINGS, TB, None))
    work.begin(journal)
    digests = {i: frame_digest(_frame(i)) for i in range(7)}
    with SegmentedWriter(work, journal, _writer_factory(), 3, digests) as sw:
        for i in range(7):
            sw.write(_frame(i))
    assert [(s.first, s.frames, s.pts0, s.last_pts) for s in journal.segments] == [
        (0, 3, 0, 1024), (3, 3, 1536, 2560), (6, 1, 3072, 3072)]
    assert journal.segments[1].last_hash == frame_digest(_frame(5)) and sw.frames_written == 7
    again = work.load()
    assert again.segments == journal.segments
    for s in again.segments:  # each a whole MP4 of its frames, stored from pts 0
        with av.open(str(work.path / s.file)) as c:
            assert [f.pts for f in c.decode(video=0)] == [512 * k for k in range(s.frames)]
    (work.path / ".seg-000003.mp4.abcd.partial.mp4").write_bytes(b"cut short by a crash")
    (work.path / "seg-000003.mp4").write_bytes(b"renamed, never journalled")
    (work.path / "seg-000002.mp4").write_bytes(b"damaged")  # the size no longer matches its line
    again = work.load()
    assert len(again.segments) == 2
    work.begin(again)
    assert sorted(p.name for p in work.path.iterdir()) == ["journal.jsonl", "seg-000000.mp4", "seg-000001.mp4"]
    work.remove()
    assert not work.path.exists()


def test_mux_encoded_refuses_packets_of_other_parameters(tmp_path):
    with _writer_factory()(tmp_path / "a.mp4") as w:
        w.write(_frame(0))
    with av.open(str(tmp_path / "a.mp4")) as c:
        extradata = c.streams.video[0].codec_context.extradata
        packet = next(p for p in c.demux(video=0) if p.size)
        with _writer_factory(w=96)(tmp_path / "b.mp4") as other, pytest.raises(InputError, match="other libx264"):
            other.mux_encoded(packet, extradata)


def test_fingerprint_reads_head_and_tail(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(bytes(range(256)) * 10_000)  # 2.5 MB
    a = fingerprint(f)
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    b = fingerprint(f)
    assert a.size == b.size and a.head == b.head and a.tail != b.tail


def test_default_output_path_is_unchanged_by_resuming(tmp_path):
    assert work_folder(Path("dir/clip_x2.mp4")) == Path("dir/clip_x2.mp4.sredge-partial")


def test_a_stopped_window_run_to_mkv_continues_in_process_to_the_plain_runs_frames_and_audio(tmp_path):
    """--start/--duration, a .mkv output, stopped twice through the stop event (as Ctrl-C does) and continued:
    the same frames, timestamps and audio as a plain run of the window."""
    import threading

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_resume_kill import _clip, _decoded

    src = str(_clip(tmp_path / "in.mp4"))
    window = Window(1.3, 3.5, None)  # frames 33 .. 119 of the 25 fps clip
    out, plain = tmp_path / "out.mkv", tmp_path / "plain.mkv"
    resume = ResumeOptions(commit_every_s=0.2)
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        for stop_after in (17, 40):
            stop = threading.Event()

            def progress(res, total, n=stop_after, ev=stop):
                if res.frames_out >= n:
                    ev.set()

            run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", window=window, resume=resume,
                                stop=stop, progress=progress)
            assert run.result.interrupted and run.work_folder is not None
            assert run.frames_in_output >= run.resumed_from + stop_after
            assert len(_decoded(out)[0]) == run.frames_in_output  # a playable file of the frames done
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", window=window, resume=resume)
        assert run.resumed_from > 40 and run.work_folder is None and run.frames_in_output == 87
        upscale_video(rt, src, plain, preset="ultrafast", encoder="libx264", window=window)
    frames, t, audio = _decoded(out)
    plain_frames, plain_t, plain_audio = _decoded(plain)
    assert len(frames) == len(plain_frames) == 87 and t == plain_t and t[0] == 0 and audio == plain_audio
    for k, f in enumerate(frames):  # each frame is the plain run's frame k, not a neighbour (encoder noise only)
        diff = {j: np.abs(f.astype(np.int16) - plain_frames[j].astype(np.int16)).mean()
                for j in (k - 1, k, k + 1) if 0 <= j < len(plain_frames)}
        assert min(diff, key=diff.get) == k, (k, diff)
    assert not work_folder(out).exists()


def test_the_work_folder_is_emptied_of_sredges_files_only_and_killed_runs_temporaries_go(tmp_path):
    from sredge.runtime.segments import check_work_folder, stale_temporaries

    out = tmp_path / "out.mp4"
    work = WorkFolder(out)
    work.begin(Journal(new_header(FP, SETTINGS, TB, None)))
    killed = tmp_path / ".out.mp4.0123abcd.partial.mp4"  # a final join a SIGKILL cut short
    killed.write_bytes(b"cut short")
    mine = tmp_path / ".out.mp4.mine.partial.mp4"  # a user's file: not the pattern sredge writes
    mine.write_bytes(b"keep")
    assert stale_temporaries(out) == [killed]
    check_work_folder(out, [(mine, "--video")])
    with pytest.raises(InputError, match="temporary file a stopped run"):
        check_work_folder(out, [(killed, "--video")])  # it would be removed as a leftover
    with pytest.raises(InputError, match="is inside"):
        check_work_folder(out, [(work.path / "journal.jsonl", "--report")])
    (work.path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match=r"holds files sredge did not write \(notes.txt\)"):
        check_work_folder(out, [])
    work.remove()
    assert sorted(p.name for p in work.path.iterdir()) == ["notes.txt"]  # the folder stays for the user's file
    assert not killed.exists() and mine.read_bytes() == b"keep"
    (work.path / "notes.txt").unlink()
    work.path.rmdir()
    (tmp_path / "elsewhere").mkdir()
    work.path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(InputError, match="is a symbolic link"):
        check_work_folder(out, [])
    with pytest.raises(InputError, match="symbolic link"):
        work.begin(Journal(new_header(FP, SETTINGS, TB, None)))
    work.remove()
    assert work.path.is_symlink() and (tmp_path / "elsewhere").is_dir()


@pytest.mark.parametrize("resumable", [True, False], ids=["resumable", "no-resume"])
def test_a_stopped_run_keeps_an_existing_output_as_it_was(tmp_path, resumable):
    """``--overwrite`` replaces an existing output with a complete run only: a stop keeps the old file (a
    resumable run's frames wait in its work folder, and the same command continues to the whole video)."""
    import threading

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_resume_kill import _clip, _decoded

    src = str(_clip(tmp_path / "in.mp4"))
    out = tmp_path / "out.mp4"
    out.write_bytes(b"an earlier, complete output")
    resume = ResumeOptions(restart=True, commit_every_s=0.2) if resumable else None
    stop = threading.Event()

    def progress(res, total):
        if res.frames_out >= 12:
            stop.set()

    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume, stop=stop,
                            progress=progress)
        assert run.result.interrupted and run.kept_existing
        assert out.read_bytes() == b"an earlier, complete output"
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left
        assert (run.work_folder is not None) == resumable
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume)
        assert not run.kept_existing and run.work_folder is None
        assert (run.resumed_from >= 12) == resumable
    frames, _, _ = _decoded(out)
    assert len(frames) == run.result.frames_in + run.resumed_from


@pytest.mark.parametrize("suffix", [".avi", ".ts"])
def test_containers_without_global_headers_or_codec_tags_resume_like_mp4(tmp_path, suffix):
    """AVI (parameter sets only in the key frames) and MPEG-TS (no codec tag table, so FFmpeg's query lists
    neither H.264 nor AAC) are written, stopped and continued like MP4: the frames, times and audio of a
    plain run."""
    import threading

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_resume_kill import _clip, _decoded

    src = str(_clip(tmp_path / "in.mp4"))
    out, plain = tmp_path / f"out{suffix}", tmp_path / f"plain{suffix}"
    resume = ResumeOptions(commit_every_s=0.2)
    stop = threading.Event()
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        run = upscale_video(rt, src, out, preset="veryfast", resume=resume, stop=stop,
                            progress=lambda res, total: res.frames_out >= 12 and stop.set())
        assert run.result.interrupted and len(_decoded(out)[0]) == run.frames_in_output >= 12
        totals = []
        run = upscale_video(rt, src, out, preset="veryfast", resume=resume,
                            progress=lambda res, total: totals.append(total))
        assert run.resumed_from >= 12 and run.work_folder is None
        assert set(totals) == {run.result.frames_out}  # the progress total counts this run's frames (was one more)
        upscale_video(rt, src, plain, preset="veryfast")
    frames, t, audio = _decoded(out)
    plain_frames, plain_t, plain_audio = _decoded(plain)
    assert len(frames) == len(plain_frames) == run.frames_in_output and t == plain_t
    assert audio == pytest.approx(plain_audio, abs=0.05) and audio > 1
    # AVI stores no presentation times: with B-frames the decoded times came out of order (audit)
    assert t == sorted(set(t)), t
    for path in (out, plain):  # the video audit: an AVI took the MP4's 1/12800 time base as its frame rate
        with av.open(str(path)) as c:  # (declared 600 fps, 24 blank frames each) and sr-run refused it, truncated
            v = c.streams.video[0]
            assert v.average_rate == 25 and (v.frames in (0, len(frames))), (v.average_rate, v.frames)
        from sredge.runtime.video_io import VideoReader

        with VideoReader(str(path)) as r:
            assert sum(1 for _ in r) >= len(frames) and r.error is None, r.error


def test_a_stopped_live_recording_replaces_the_existing_output(tmp_path):
    """A stream has no complete run: a stop is how it ends, so its recording takes the name (with
    --overwrite), never thrown away for the earlier file."""
    import threading

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_video_io import _serve_once, make_clip

    source = _serve_once(make_clip(tmp_path / "s.ts", n=30).read_bytes())
    out = tmp_path / "rec.mp4"
    out.write_bytes(b"an earlier recording")
    stop = threading.Event()
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        run = upscale_video(rt, source, out, preset="ultrafast", stop=stop,
                            progress=lambda res, total: res.frames_out >= 6 and stop.set())
    assert run.result.interrupted and not run.kept_existing
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == run.result.frames_out >= 6


def test_a_stopped_run_of_an_mpeg_ts_input_continues(tmp_path):
    """The audit: a stopped or killed run of a .ts input could not be continued ('the input's frame 70 does not
    decode as it did'): the seek to the resume point landed on a later key frame."""
    import threading

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_video_io import _ts_clip

    src = str(_ts_clip(tmp_path / "in.ts", gop=250, n=150, size=(320, 240)))  # key frames 0 and 100
    out = tmp_path / "out.mp4"
    resume = ResumeOptions(commit_every_s=0.1)
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        stop = threading.Event()
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume, stop=stop,
                            progress=lambda res, total: stop.set() if res.frames_out >= 70 else None)
        assert run.result.interrupted and 70 <= run.frames_in_output < 150
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume)
        assert run.resumed_from >= 60 and run.frames_in_output == 150 and run.work_folder is None
    with av.open(str(out)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 150
    for i in (0, run.resumed_from, 149):  # the moving column of source frame i, upscaled x2
        assert frames[i][:, 2 * i:2 * i + 2].mean() > frames[i].mean() + 60, i


def _stopped_run(rt, src: str, out: Path, after: int, resume):
    """A resumable run stopped (as Ctrl-C stops it) once ``after`` frames are out."""
    import threading

    from sredge.runtime.video_run import upscale_video

    stop = threading.Event()
    run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume, stop=stop,
                        progress=lambda res, total: stop.set() if res.frames_out >= after else None)
    assert run.result.interrupted and run.work_folder is not None
    return run


def test_the_joined_file_is_journaled_before_it_takes_the_outputs_name(tmp_path, monkeypatch):
    """The resume audit: a TERM then a quick KILL (docker stop) could land between the stopped run's rename of its
    playable file and its journal line, and a kill right after the final join's rename left the work folder:
    either way the same command then said "OUT exists; pass --overwrite". The journal now records the joined
    file (size, mtime) before the rename, so the file at OUT is always known to be the run's own."""
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.segments import WorkFolder
    from sredge.runtime.video_resume import ResumeOptions, partial_output_of
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_resume_kill import N, _clip, _decoded

    src = str(_clip(tmp_path / "in.mp4"))
    out = tmp_path / "out.mp4"
    resume = ResumeOptions(commit_every_s=0.2)
    seen = []
    real_append = WorkFolder.append

    def append(self, row):  # each record of a joined file is written while OUT is not yet that file
        if "partial" in row or "final" in row:
            seen.append((next(iter(row)), out.is_file() and out.stat().st_size == row[next(iter(row))]["size"]))
        real_append(self, row)

    monkeypatch.setattr(WorkFolder, "append", append)
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        _stopped_run(rt, src, out, 20, resume)
        assert seen == [("partial", False)] and partial_output_of(out)
        # The final join renames the whole file onto OUT; a kill before the work folder goes:
        real_remove = WorkFolder.remove

        def killed(self):
            raise KeyboardInterrupt  # stands in for SIGKILL at that instant: the folder is not removed

        monkeypatch.setattr(WorkFolder, "remove", killed)
        with pytest.raises(KeyboardInterrupt):
            upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume)
        assert seen[-1] == ("final", False) and WorkFolder(out).exists()
        assert len(_decoded(out)[0]) == N and partial_output_of(out)  # complete, and known as the run's own
        monkeypatch.setattr(WorkFolder, "remove", real_remove)
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume)  # the same command
    assert run.frames_in_output == N and run.work_folder is None and not WorkFolder(out).exists()
    assert len(_decoded(out)[0]) == N


def test_a_segment_damaged_in_place_is_redone_or_refused_in_one_line(tmp_path):
    """The resume audit: 3000 bytes of a committed segment overwritten (its size kept) made the final join fail
    with an internal error (exit 3) and left a cut-short file at OUT, which then blocked the same command. Each
    segment's sha256 is now journaled: the run continues before the damaged one and redoes it. A journal from
    before the checksum (none recorded) whose segment FFmpeg cannot read stops in one line, no file at OUT."""
    import json

    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.segments import WorkFolder
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_resume_kill import N, _clip, _decoded

    src = str(_clip(tmp_path / "in.mp4"))
    resume = ResumeOptions(commit_every_s=0.2)

    def damaged(out, keep_checksums):
        _stopped_run(rt, src, out, 30, resume)
        out.unlink()  # as after a SIGKILL: no playable file yet
        work = WorkFolder(out)
        seg = work.path / work.load().segments[0].file
        data = bytearray(seg.read_bytes())
        data[len(data) // 3:len(data) // 3 + 3000] = bytes(3000)
        seg.write_bytes(bytes(data))
        if not keep_checksums:
            rows = [json.loads(line) for line in work.journal_path.read_text().splitlines()]
            for row in rows:
                row.get("segment", {}).pop("sha256", None)
            work.journal_path.write_text("".join(json.dumps(r) + "\n" for r in rows))

    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        out = tmp_path / "out.mp4"
        damaged(out, keep_checksums=True)
        run = upscale_video(rt, src, out, preset="ultrafast", encoder="libx264", resume=resume)
        assert run.resumed_from == 0 and run.frames_in_output == N and len(_decoded(out)[0]) == N
        old = tmp_path / "old.mp4"
        damaged(old, keep_checksums=False)
        with pytest.raises(InputError, match=r"holds a damaged segment .*--overwrite starts over"):
            upscale_video(rt, src, old, preset="ultrafast", encoder="libx264", resume=resume)
    assert not old.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_default_crf_given_explicitly_continues_a_run_begun_without_it(tmp_path):
    """The resume audit: a run begun without --crf, continued with --crf 18 (the documented default), was refused:
    "--crf was not given, now 18". Another value is still refused."""
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import ResumeOptions
    from sredge.runtime.video_run import upscale_video
    from tests.runtime.test_resume_kill import N, _clip

    src = str(_clip(tmp_path / "in.mp4"))
    out = tmp_path / "out.mp4"
    resume = ResumeOptions(commit_every_s=0.2)
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        _stopped_run(rt, src, out, 20, resume)
        with pytest.raises(InputError, match="--crf was not given, now 20"):
            upscale_video(rt, src, out, crf=20, preset="ultrafast", encoder="libx264", resume=resume)
        run = upscale_video(rt, src, out, crf=18, preset="ultrafast", encoder="libx264", resume=resume)
    assert run.resumed_from > 0 and run.frames_in_output == N


def test_no_resume_after_a_stop_replaces_the_stopped_runs_file(cli, tmp_path):
    """The resume audit: after Ctrl-C, `--no-resume` (discard the unfinished run, write a plain file) was refused:
    "out.mp4 exists; pass --overwrite", though that playable file is the stopped run's own."""
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.segments import WorkFolder
    from sredge.runtime.video_resume import ResumeOptions
    from tests.runtime.test_resume_kill import N, _clip, _decoded

    src = str(_clip(tmp_path / "in.mp4"))
    out = tmp_path / "out.mp4"
    with LoadedRuntime(default_model(2), RunOptions()) as rt:
        _stopped_run(rt, src, out, 20, ResumeOptions(commit_every_s=0.2))
    assert out.is_file()
    res = cli("run", "--video", src, "-o", out, "--no-resume", "--preset", "ultrafast", "-q")
    assert res.code == 0, res.err
    assert len(_decoded(out)[0]) == N and not WorkFolder(out).exists()
    other = tmp_path / "other.mp4"  # a file that is not the stopped run's is still refused
    other.write_bytes(b"mine")
    res = cli("run", "--video", src, "-o", other, "--no-resume", "-q")
    assert res.code == 2 and "exists" in res.err and other.read_bytes() == b"mine"


def test_an_auto_choice_is_kept_by_the_run_that_continues_it(cli, tmp_path):
    """The video audit: `--backend auto --max-psnr-drop` probed again when continuing, and a probe that ranked the
    candidates otherwise (timing noise; --threads 1 chose ONNX Runtime and --threads 2 OpenVINO for FSRCNN x3, and
    --threads may change between runs) refused the same command: "--backend was ort, now openvino; give the original
    option". The stopped run here journaled fp32 on ONNX Runtime, as an auto run that chose it does; the probe would
    choose the INT8 file on OpenVINO."""
    import shutil

    pytest.importorskip("openvino")
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions
    from sredge.runtime.video_resume import ResumeOptions
    from tests.runtime.test_resume_kill import N, _clip, _decoded

    for name in ("sredge_x2.onnx", "sredge_x2.int8.onnx"):  # a family: auto's candidates
        shutil.copy(default_model(2).with_name(name), tmp_path / name)
    model, src, out = tmp_path / "sredge_x2.onnx", str(_clip(tmp_path / "in.mp4")), tmp_path / "out.mp4"
    with LoadedRuntime(model, RunOptions(backend="ort")) as rt:
        _stopped_run(rt, src, out, 20, ResumeOptions(commit_every_s=0.2))
    res = cli("run", "--video", src, "-o", out, "--model", model, "--max-psnr-drop", "0.1", "--preset", "ultrafast",
              "--threads", "1", "--report", tmp_path / "r.json")
    assert res.code == 0, res.err
    assert "auto: chose fp32 on onnxruntime (sredge_x2.onnx): full precision, the choice of the stopped run" in res.err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["resumed_from_frame"] > 0 and report["auto"]["probe_hw"] is None
    assert len(_decoded(out)[0]) == N
