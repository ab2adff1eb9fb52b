"""``--backend auto`` on the CPU: the planner over plain candidate lists, then real exported FSRCNN x3 variants."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from sredge.errors import InputError
from sredge.models.descriptor import ModelDescriptor
from sredge.runtime.auto import (
    Candidate,
    Variant,
    admissible,
    auto_on_cpu,
    choose,
    enumerate_candidates,
    family,
    family_root,
    summary_line,
    variant_of,
)
from tests.conftest import asset

M = Path("/m/fsrcnn_x3.onnx")
I8 = Path("/m/fsrcnn_x3.int8.onnx")
F16 = Path("/m/fsrcnn_x3.fp16.onnx")
BOTH = ["ort", "openvino"]


def cand(backend, precision, drop, ms=None, file=None, ref="Set5"):
    f = file or {"int8": I8, "fp16": F16}.get(precision, M)
    return Candidate(f, backend, precision, drop, ref, measured_ms=ms)


# ---------------------------------------------------------------- descriptor fields

def test_descriptor_round_trips_the_recorded_drop_and_older_files_read_none():
    d = ModelDescriptor("fsrcnn", 3, 1, 1, "y", 1.0, False, precision="int8-cpu", psnr_drop_db=0.029,
                        quality_ref="Set5")
    assert ModelDescriptor.from_metadata(d.to_metadata()) == d
    old = {k: v for k, v in d.to_metadata().items() if k not in ("sredge.psnr_drop_db", "sredge.quality_ref")}
    back = ModelDescriptor.from_metadata(old)
    assert back.psnr_drop_db is None and back.quality_ref == ""


# ---------------------------------------------------------------- family

@pytest.mark.parametrize("given", [M, I8, F16])
def test_family_is_found_from_any_member(given):
    present = {M, I8, F16}
    assert family_root(given) == M
    assert family(given, exists=present.__contains__) == [M, F16, I8]


def test_family_of_a_lone_file_is_itself():
    assert family(I8, exists={I8}.__contains__) == [I8]
    assert family(Path("/x/other.onnx"), exists=lambda p: p.name == "other.onnx") == [Path("/x/other.onnx")]


def test_variant_of_reads_metadata_else_the_file_name():
    d = ModelDescriptor("fsrcnn", 3, 1, 1, "y", 1.0, False, precision="int8-cpu", psnr_drop_db=0.05,
                        quality_ref="Set5")
    assert variant_of(I8, d) == Variant(I8, "int8", 0.05, "Set5", "int8-cpu")
    assert variant_of(I8, replace(d, psnr_drop_db=None)).psnr_drop_db is None  # written before the field
    assert variant_of(M, replace(d, precision="fp32", psnr_drop_db=None)).psnr_drop_db == 0.0
    assert variant_of(I8, None) == Variant(I8, "int8", None)  # foreign file: drop unknown
    assert variant_of(M, None).psnr_drop_db == 0.0


# ---------------------------------------------------------------- enumerate

def variants():
    return [Variant(M, "fp32", 0.0), Variant(F16, "fp16", 0.001, "Set5", "fp16"),
            Variant(I8, "int8", 0.03, "Set5", "int8-cpu")]


def test_candidates_with_openvino_and_no_bf16():
    cands, notes = enumerate_candidates(variants(), BOTH, ["FP32", "INT8"])
    ok = {(c.backend, c.precision) for c in cands if not c.excluded}
    assert ok == {("openvino", "int8"), ("openvino", "fp32"), ("ort", "fp32"), ("ort", "int8")}
    why = {(c.backend, c.precision): c.excluded for c in cands if c.excluded}
    assert "upcasts float16" in why[("ort", "fp16")]
    assert "no native bfloat16" in why[("openvino", "bf16")]
    assert notes == []


def test_bf16_only_when_asked_on_a_cpu_that_has_it():
    cands, _ = enumerate_candidates(variants(), BOTH, ["FP32", "BF16"])
    bf16 = next(c for c in cands if c.precision == "bf16")
    assert "never measured" in bf16.excluded and bf16.psnr_drop_db is None
    cands, _ = enumerate_candidates(variants(), BOTH, ["FP32", "BF16"], precision="bf16")
    assert [(c.backend, c.precision) for c in cands if not c.excluded] == [("openvino", "bf16")]
    chosen, _ = choose(cands, 0.1, precision="bf16")  # explicit: the unknown drop is the user's call
    assert chosen.precision == "bf16"


def test_without_openvino_everything_is_onnx_runtime_and_the_note_says_so():
    cands, notes = enumerate_candidates(variants(), ["ort"], [])
    assert {c.backend for c in cands} == {"ort"}
    assert any('pip install "sredge[openvino]"' in n for n in notes)
    chosen, _ = choose(cands, 0.1)
    line = summary_line(chosen, cands, 0.1, notes)
    assert "using ONNX Runtime" in line and 'pip install "sredge[openvino]"' in line


def test_fp16_kept_off_the_cpu_only():
    cands, _ = enumerate_candidates([Variant(F16, "fp16", 0.001)], ["ort"], [], device="cuda")
    assert not cands[0].excluded


def test_trt_flavoured_int8_runs_on_openvino_not_onnx_runtime():
    cands, _ = enumerate_candidates([Variant(I8, "int8", 0.01, "Set5", "int8-trt")], BOTH, [])
    by_backend = {c.backend: c for c in cands}
    assert not by_backend["openvino"].excluded
    assert "in float" in by_backend["ort"].excluded


# ---------------------------------------------------------------- choose

def test_fastest_within_budget_wins():
    cands = [cand("openvino", "int8", 0.03, 10.0), cand("openvino", "fp32", 0.0, 12.0),
             cand("ort", "fp32", 0.0, 20.0), cand("ort", "int8", 0.03, 21.0)]
    chosen, reasons = choose(cands, 0.1)
    assert (chosen.backend, chosen.precision) == ("openvino", "int8")
    assert reasons[-1].startswith("chose int8 on openvino") and "fastest measured" in reasons[-1]
    line = summary_line(chosen, cands, 0.1, [])
    assert line == ("auto: chose int8 on openvino (fsrcnn_x3.int8.onnx): 2.0x faster than fp32 on onnxruntime, "
                    "recorded Set5 drop 0.03 dB <= budget 0.1 dB")


def test_over_budget_is_excluded_even_when_fastest():
    cands = [cand("openvino", "int8", 0.5, 5.0), cand("ort", "fp32", 0.0, 20.0), cand("openvino", "fp32", 0.0, 15.0)]
    chosen, reasons = choose(cands, 0.1)
    assert (chosen.backend, chosen.precision) == ("openvino", "fp32")
    assert any("drop 0.500 dB > budget 0.1 dB" in r for r in reasons)
    assert [c.precision for c in admissible(cands, 0.1)] == ["fp32", "fp32"]


def test_unknown_drop_is_excluded():
    cands = [cand("ort", "int8", None, 5.0), cand("ort", "fp32", 0.0, 20.0)]
    chosen, reasons = choose(cands, 0.1)
    assert chosen.precision == "fp32"
    assert any("no recorded PSNR drop" in r for r in reasons)


def test_ties_and_unmeasured_fall_back_to_preference():
    tied = [cand("ort", "fp32", 0.0, 10.0), cand("openvino", "fp32", 0.0, 10.2)]
    chosen, reasons = choose(tied, 0.1)
    assert chosen.backend == "openvino" and "tied" in reasons[-1]
    unmeasured = [cand("ort", "int8", 0.01), cand("ort", "fp32", 0.0), cand("openvino", "int8", 0.01)]
    assert choose(unmeasured, 0.1)[0] == unmeasured[2]
    assert choose([cand("ort", "int8", 0.01), cand("ort", "fp32", 0.0)], 0.1)[0].precision == "fp32"


def test_nothing_admissible_is_an_input_error():
    with pytest.raises(InputError, match="max-psnr-drop"):
        choose([cand("ort", "int8", 0.4)], 0.1)


def test_nothing_admissible_says_raise_the_budget_only_when_the_budget_excluded_something():
    """An FP16 file alone on the CPU is excluded for its device, not its drop: 'raise the budget' misled."""
    cands, _ = enumerate_candidates([variant_of(F16, ModelDescriptor("fsrcnn", 3, 1, 1, "y", 1.0, False,
                                                                     precision="fp16", psnr_drop_db=0.0))],
                                    ["ort"], [])
    with pytest.raises(InputError, match="FP16 files are for GPUs") as err:
        choose(cands, 0.5)
    assert "raise the budget" not in str(err.value) and "name --backend" in str(err.value)
    with pytest.raises(InputError, match="raise the budget"):
        choose([cand("ort", "int8", 0.4)], 0.1)


def test_auto_chooses_variants_only_for_the_cpu():
    assert auto_on_cpu("cpu", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert auto_on_cpu("auto", ["CPUExecutionProvider"])
    assert not auto_on_cpu("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"])
    assert not auto_on_cpu("cuda", ["CUDAExecutionProvider"])


def test_probe_shape_is_the_shape_the_run_will_use():
    from sredge.runtime.runner import RunOptions, probe_hw

    fsrcnn = ModelDescriptor("fsrcnn", 3, 1, 1, "y", 1.0, False)
    vdsr = ModelDescriptor("vdsr", 2, 1, 1, "y", 1.0, True)
    assert probe_hw(RunOptions(tile=None), fsrcnn, 360, 640) == (360, 640)  # whole frames
    assert probe_hw(RunOptions(tile=None), vdsr, 360, 640) == (720, 1280)  # pre-upsampled frames
    th, tw = probe_hw(RunOptions(tile=128), fsrcnn, 360, 640)  # one tile: the tiler evens tiles out, <= 128
    assert 64 < th <= 128 and 64 < tw <= 128
    assert probe_hw(RunOptions(tile=512), fsrcnn, 100, 200) == (100, 200)  # frame smaller than a tile
    line = summary_line(cand("openvino", "int8", 0.03, ms=10.0), [cand("ort", "fp32", 0.0, ms=20.0)], 0.1, [],
                        probe_hw=(360, 640))
    assert "2.0x faster than fp32 on onnxruntime at 640x360" in line


# ---------------------------------------------------------------- end to end on real files

@pytest.fixture(scope="module")
def fsrcnn_family(tmp_path_factory):
    """FSRCNN x3 exported by sr-export with its INT8 sibling (budget 0.1 dB on Set5, 16 T91 crops)."""
    from sredge.cli.export import main

    folder = tmp_path_factory.mktemp("auto")
    ckpt = folder / "fsrcnn_x3.pth"
    ckpt.write_bytes(asset("weights/fsrcnn/fsrcnn_x3.pth").read_bytes())
    code = main([str(ckpt), "--precision", "fp32,int8", "--calib", str(asset("calibration/T91")),
                 "--calib-crops", "16", "--calib-tile", "48", "--val", str(asset("benchmarks/Set5")),
                 "--max-psnr-drop", "0.1", "--bench-size", "off", "-q"])
    assert code == 0
    return folder / "fsrcnn_x3.onnx"


def test_sr_export_records_the_drop(fsrcnn_family):
    from sredge.models.onnx_file import read_descriptor

    d = read_descriptor(fsrcnn_family.with_name("fsrcnn_x3.int8.onnx"))
    assert d.precision == "int8-cpu" and d.quality_ref == "Set5"
    assert d.psnr_drop_db is not None and d.psnr_drop_db <= 0.1
    assert read_descriptor(fsrcnn_family).psnr_drop_db is None


def test_sr_run_auto_announces_a_choice_within_budget(fsrcnn_family, cli, tmp_path):
    pytest.importorskip("openvino")
    img = asset("realworld/0014.jpg")
    res = cli("run", "--image", img, "--model", fsrcnn_family, "-o", tmp_path / "o.png", "--max-psnr-drop", "0.1")
    assert res.code == 0, res.err
    line = next(ln for ln in res.err.splitlines() if "auto: chose" in ln)
    assert "on openvino" in line or "on onnxruntime" in line
    assert "budget 0.1 dB" in line or "full precision" in line
    assert (tmp_path / "o.png").is_file()
    plain = cli("run", "--image", img, "--model", fsrcnn_family, "-o", tmp_path / "p.png")
    assert plain.code == 0 and "auto: chose" not in plain.err  # opt-in: without a budget, by file type

    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    with LoadedRuntime(fsrcnn_family, RunOptions(max_psnr_drop=0.1, backend_options=BackendOptions(threads=1))) as rt:
        report = rt.auto.as_dict()
        assert rt.backend.name == rt.auto.chosen.backend and rt.model == rt.auto.chosen.file
    assert report["chosen"]["psnr_drop_db"] <= 0.1
    timed = [c for c in report["candidates"] if not c["excluded"]]
    assert len(timed) == 4 and all(c["measured_ms"] > 0 for c in timed)  # fp32 and int8 on both backends
    assert report["probe_hw"] == [128, 128]  # frame size unknown: a 128x128 probe

    opts = RunOptions(max_psnr_drop=0.1, tile=None, backend_options=BackendOptions(threads=1))
    with LoadedRuntime(fsrcnn_family, opts, frame_hw=(90, 160)) as rt:  # sr-run passes the frames' size
        assert rt.auto.probe_hw == (90, 160) and "at 160x90" in rt.auto.summary


def test_budget_below_the_int8_drop_keeps_fp32(fsrcnn_family):
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    with LoadedRuntime(fsrcnn_family, RunOptions(max_psnr_drop=0.0)) as rt:
        assert rt.auto.chosen.precision == "fp32"
        assert any("> budget 0 dB" in r for r in rt.auto.reasons)


def test_explicit_backend_is_never_changed(fsrcnn_family):
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    with LoadedRuntime(fsrcnn_family, RunOptions(backend="ort", max_psnr_drop=0.1)) as rt:
        assert rt.auto is None and rt.model == fsrcnn_family and rt.backend.name == "ort"
    with LoadedRuntime(fsrcnn_family, RunOptions()) as rt:  # library default: by file type, as before
        assert rt.auto is None and rt.backend.name == "ort"


def test_without_openvino_auto_says_it_uses_onnx_runtime(fsrcnn_family, tmp_path):
    img = asset("realworld/0014.jpg")
    out = tmp_path / "o.png"
    code = f"""
        import sys
        sys.modules['openvino'] = None
        from sredge.cli._app import run
        from sredge.cli.run import PROG, main
        sys.exit(run(PROG, main, ['--image', {str(img)!r}, '--model', {str(fsrcnn_family)!r}, '-o', {str(out)!r},
                                  '--max-psnr-drop', '0.1']))
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "auto: chose" in ln)
    assert "on onnxruntime" in line and "using ONNX Runtime" in line and 'pip install "sredge[openvino]"' in line
    assert out.is_file()


def test_a_derived_file_of_another_network_is_never_chosen(tmp_path):
    """The audit: an INT8 export that failed its budget left the previous run's m.int8.onnx (an x2 model)
    beside the new m.onnx (x3); auto treated both as one family."""
    import shutil

    from sredge.runtime.auto import read_variants, stranger
    from sredge.runtime.bundled import default_model

    shutil.copyfile(default_model(3), tmp_path / "m.onnx")
    shutil.copyfile(default_model(2).with_name("sredge_x2.int8.onnx"), tmp_path / "m.int8.onnx")
    shutil.copyfile(default_model(3).with_name("sredge_x3.int8.onnx"), tmp_path / "n.int8.onnx")
    fp32, int8 = read_variants(family(tmp_path / "m.onnx"))
    assert fp32.stranger == "" and int8.stranger.endswith("x2, not sesr x3"), int8
    cands, _ = enumerate_candidates([fp32, int8], ["ort", "openvino"], [])
    assert {c.precision for c in cands if not c.excluded} == {"fp32"}
    assert all("made from another network than the FP32 file" in c.excluded for c in cands if c.file == int8.file)
    shutil.copyfile(tmp_path / "n.int8.onnx", tmp_path / "m.int8.onnx")  # its own INT8 twin: a candidate again
    assert [v.stranger for v in read_variants(family(tmp_path / "m.onnx"))] == ["", ""]
    assert stranger(None, None) == ""


def test_openvino_int8_of_8bit_weights_only_where_exact():
    """The OpenVINO audit: without VNNI OpenVINO does not compute a trt-flavour file's 8-bit weights as recorded."""
    wide = Variant(I8, "int8", 0.05, "Set5", "int8-trt", wide_int8=True)
    narrow = Variant(I8, "int8", 0.05, "Set5", "int8-cpu")
    cands, _ = enumerate_candidates([wide], BOTH, ["FP32", "INT8"], ov_int8_exact=False)
    ov8 = next(c for c in cands if c.backend == "openvino")
    assert "inexactly on this CPU (no VNNI)" in ov8.excluded
    for variant, exact in ((wide, True), (narrow, False)):
        cands, _ = enumerate_candidates([variant], BOTH, ["FP32", "INT8"], ov_int8_exact=exact)
        assert not next(c for c in cands if c.backend == "openvino").excluded


def test_read_variants_knows_which_int8_files_have_8bit_weights(fsrcnn_family, tmp_path):
    from sredge.runtime.auto import read_variants
    from sredge.runtime.bundled import default_model
    from tests.runtime.test_backend_openvino import _widened

    assert [v.wide_int8 for v in read_variants(family(fsrcnn_family))] == [False, False]  # cpu flavour: 7 bits
    assert [v.wide_int8 for v in read_variants(family(default_model(2)))] == [False, False]  # trt, 7-bit weights
    assert [v.wide_int8 for v in read_variants(family(_widened(tmp_path)))] == [False, True]  # trt, 8-bit


def test_auto_times_its_candidates_at_the_batch_the_run_will_use(tmp_path):
    """The probe ran one tile per call whatever --batch said; now the batch the run makes (fewer when a frame has
    fewer tiles), and the line says so."""
    from sredge.models.onnx_file import read_descriptor
    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions, probe_batch

    desc = read_descriptor(default_model(2))
    assert probe_batch(RunOptions(tile=64, batch=4), desc, 360, 640) == 4
    assert probe_batch(RunOptions(tile=None, batch=4), desc, 360, 640) == 1  # whole frames: one tile each
    assert probe_batch(RunOptions(tile=512, batch=4), desc, 100, 200) == 1
    opts = RunOptions(max_psnr_drop=0.1, tile=64, batch=4, backend_options=BackendOptions(threads=1))
    with LoadedRuntime(default_model(2), opts, frame_hw=(90, 160)) as rt:
        if len([c for c in rt.auto.candidates if not c.excluded]) > 1:
            assert ", batch " in rt.auto.summary, rt.auto.summary


def test_a_fixed_shape_model_reports_the_shape_it_was_timed_at(tmp_path):
    """The OpenVINO audit: a 1x1x64x96 model was timed at its own shape, yet the line said 'at 179x179' (the
    tiling's shape for the frames) and --report's probe_hw said the same."""
    pytest.importorskip("openvino")
    import onnx

    from sredge.runtime.backends import BackendOptions
    from sredge.runtime.bundled import default_model
    from sredge.runtime.runner import LoadedRuntime, RunOptions

    model = onnx.load(str(default_model(2)))
    for dim, size in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 1, 64, 96)):
        dim.ClearField("dim_param")
        dim.dim_value = size
    onnx.save(model, str(tmp_path / "fixed.onnx"))
    opts = RunOptions(max_psnr_drop=0.1, tile=None, backend_options=BackendOptions(threads=1))
    with LoadedRuntime(tmp_path / "fixed.onnx", opts, frame_hw=(90, 160)) as rt:
        assert rt.auto.probe_hw == (64, 96) and "at 96x64" in rt.auto.summary, rt.auto.summary
