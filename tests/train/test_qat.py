"""Quantization-aware training on the Q/DQ graph: the simulation, the export, the CLI, a real fine-tune."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from sredge.calibration.quantize import Int8Options, calibrate, int8_reference, quantize_int8, quantized_nodes
from sredge.imaging.metrics import psnr
from sredge.models.onnx_file import read_descriptor
from sredge.runtime.bundled import default_model as bundled_model_path
from sredge.train.qat import export_qdq, qdq_graph
from tests.conftest import asset


def _ort(model, x):
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def bundled():
    path = bundled_model_path(2)
    desc = read_descriptor(path)
    x = np.random.default_rng(0).random((8, desc.in_channels, 32, 32), dtype=np.float32)
    return path, x


@pytest.fixture(scope="module", params=["sredge_x2", "fsrcnn_x3"])
def network(request):
    """The bundled x2 model (convolutions and DepthToSpace), and the real FSRCNN x3, whose upsampler is a
    ConvTranspose (the trt flavour scales its weight per input channel and keeps its bias in float)."""
    if request.param == "sredge_x2":
        return request.getfixturevalue("bundled")
    path = request.getfixturevalue("real_model")("fsrcnn_x3")[0]
    x = np.random.default_rng(0).random((8, 1, 32, 32), dtype=np.float32)
    return path, x


# How near the simulation comes to ONNX Runtime's output (dB): on noise input the cpu flavour's FSRCNN x3
# output quantization step is 1/96, and the few roundings that summation order flips cost more there.
NEAR_DB = {"sredge_x2": 38, "fsrcnn_x3": 36}


@pytest.mark.parametrize("flavour", ["cpu", "trt"])
def test_untrained_export_is_the_ptq_file_bit_for_bit(network, flavour):
    path, x = network
    ptq = quantize_int8(path, calibrate(path, x, Int8Options(flavour=flavour)))
    graph = qdq_graph(ptq, int8_reference(path, flavour))
    out = export_qdq(ptq, graph)
    before = {i.name: numpy_helper.to_array(i) for i in ptq.graph.initializer}
    after = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    assert before.keys() == after.keys()
    for name, value in before.items():
        assert after[name].dtype == value.dtype and np.array_equal(after[name], value), name
    assert [n.op_type for n in out.graph.node] == [n.op_type for n in ptq.graph.node]


@pytest.mark.parametrize("flavour", ["cpu", "trt"])
def test_the_simulation_computes_what_onnx_runtime_runs(request, network, flavour):
    """The PyTorch simulation is nearer ONNX Runtime's INT8 output than the FP32 model is: it
    quantizes where the file does (only float summation order differs, flipping a few roundings)."""
    path, x = network
    ptq = quantize_int8(path, calibrate(path, x, Int8Options(flavour=flavour)))
    graph = qdq_graph(ptq, int8_reference(path, flavour))
    with torch.no_grad():
        sim = graph(torch.from_numpy(x[:2])).numpy()
    int8 = _ort(ptq, x[:2])
    fp32 = _ort(onnx.load(str(path)), x[:2])
    assert psnr(sim, int8) > psnr(fp32, int8) + 2
    assert psnr(sim, int8) > NEAR_DB[request.node.callspec.params["network"]]


def test_training_moves_weights_and_scales_and_the_export_follows(bundled):
    path, x = bundled
    ptq = quantize_int8(path, calibrate(path, x, Int8Options(flavour="cpu")))
    graph = qdq_graph(ptq, onnx.load(str(path)))
    opt = torch.optim.Adam([*graph.weights.parameters(), *graph.scales.parameters()], lr=1e-3)
    target = torch.from_numpy(_ort(onnx.load(str(path)), x))
    for _ in range(3):
        loss = torch.nn.functional.l1_loss(graph(torch.from_numpy(x)), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is not None for p in graph.scales.parameters())
    out = export_qdq(ptq, graph)
    changed = [i.name for i, j in zip(out.graph.initializer, ptq.graph.initializer)
               if not np.array_equal(numpy_helper.to_array(i), numpy_helper.to_array(j))]
    assert any(n.endswith("_quantized") for n in changed) and any("QuantizeLinear" not in n for n in changed)
    with torch.no_grad():
        sim = graph(torch.from_numpy(x[:2])).numpy()
    assert psnr(sim, _ort(out, x[:2])) > 38  # the file runs what was trained


@pytest.mark.parametrize("flavour", ["cpu", "trt", "trt-7"])
def test_sr_train_qat_writes_an_int8_file_with_no_layer_in_float(cli, tmp_path, flavour):
    from sredge.export.engine_plan import qdq_encoding
    from sredge.runtime.backends.openvino import wide_int8_weights

    out = tmp_path / "x2.int8.onnx"
    flavour, *bits = flavour.split("-")
    res = cli("train", "--qat", bundled_model_path(2), "--data", "sample", "--val", "sample", "--flavour", flavour,
              *(["--weight-bits", *bits] if bits else []),
              "--steps", "8", "--val-every", "4", "--batch", "4", "--patch", "24", "-o", out)
    assert res.code == 0, res.err
    # 8-bit weights only for the trt flavour by default; 7 bits (|q| <= 64) after training too
    assert wide_int8_weights(onnx.load(str(out))) == (flavour == "trt" and not bits)
    assert f"{bits[0] if bits else 8 if flavour == 'trt' else 7}-bit weights" in res.out
    desc = read_descriptor(out)
    assert desc.precision == f"int8-{flavour}" and desc.psnr_drop_db is not None and desc.quality_ref
    model = onnx.load(str(out))
    # trt: TensorRT's encoding (int8, zero point 0, biases in float); cpu: ONNX Runtime's, int32 biases
    assert qdq_encoding(model).tensorrt_int8 == (flavour == "trt")
    convs = [n.name for n in model.graph.node if n.op_type == "Conv"]
    assert sorted(quantized_nodes(model)) == sorted(convs)
    assert "none kept in float" in res.out and "QAT INT8" in res.out
    run = cli("run", "--image", asset_free_image(tmp_path), "--model", out, "-o", tmp_path / "up.png")
    assert run.code == 0, run.err


def asset_free_image(tmp_path):
    import cv2

    img = (np.random.default_rng(1).random((24, 32, 3)) * 255).astype(np.uint8)
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), img)
    return path


@pytest.mark.parametrize("argv,needle", [
    (["--teacher", "t.pth"], "--teacher"),
    (["--arch", "fsrcnn"], "--arch"),
    (["--loss", "l2"], "--loss"),  # the audit: both were silently ignored (QAT trains on L1)
    (["--expand", "4"], "--expand"),
])
def test_sr_train_qat_refuses_training_only_options(cli, tmp_path, argv, needle):
    res = cli("train", "--qat", bundled_model_path(2), "--data", "sample", "-o", tmp_path / "q.int8.onnx", *argv)
    assert res.code == 2 and needle in res.err and len(res.err.strip().splitlines()) == 1


def test_sr_train_qat_needs_an_onnx_output_and_flavour_needs_qat(cli, tmp_path):
    res = cli("train", "--qat", bundled_model_path(2), "--data", "sample", "-o", tmp_path / "q.pth")
    assert res.code == 2 and "NAME.int8.onnx" in res.err
    res = cli("train", "--qat", bundled_model_path(2), "--data", "sample", "--weight-bits", "8", "-o",
              tmp_path / "q.int8.onnx")
    assert res.code == 2 and "the cpu flavour's weights are 7-bit" in res.err
    assert not (tmp_path / "q.int8.onnx").exists()
    for option in (["--flavour", "trt"], ["--qat-target", "fp32"], ["--weight-bits", "7"]):
        res = cli("train", *option, "--data", "sample", "-o", tmp_path / "m.pth")
        assert res.code == 2 and "--qat" in res.err and len(res.err.strip().splitlines()) == 1


def test_qat_targets():
    from sredge.errors import InputError
    from sredge.train.qat import QatOptions

    assert QatOptions().target == "fp32" and QatOptions(target="ground-truth").target == "ground-truth"
    assert QatOptions(target="teacher").target_model is None
    with pytest.raises(InputError, match="fp32, ground-truth or a model file"):
        QatOptions(target="student")
    assert QatOptions(target="model", target_model="t.onnx").target_model == "t.onnx"
    for bad in ({"target": "model"}, {"target_model": "t.onnx"}):
        with pytest.raises(InputError, match="goes with target 'model'"):
            QatOptions(**bad)


def _finetune_inputs(bundled):
    """What :func:`sredge.train.qat.finetune` takes for the bundled x2 model: (path, descriptor, plain trt INT8,
    a validator on the sample photos, a patch sampler of them)."""
    from sredge.benchmarks.datasets import load_dataset
    from sredge.calibration.sensitivity import Validator
    from sredge.data.samples import sample_folder
    from sredge.train.data import PatchOptions, PatchSampler

    path, x = bundled
    desc = read_descriptor(path)
    ptq = quantize_int8(path, calibrate(path, x, Int8Options(flavour="trt")))
    validator = Validator(load_dataset(sample_folder(), desc.scale), desc, threads=1)
    sampler = PatchSampler(sample_folder(), PatchOptions(desc.scale, 24, color_space=desc.color_space), seed=0)
    return path, desc, ptq, validator, sampler


def test_a_stopped_qat_run_keeps_the_best_file_so_far(bundled):
    """The session's review: Ctrl-C during sr-train --qat wrote nothing, however long it had run. A stop (the event
    sr-train's signal handler sets) now ends after the step in hand, validated, and the best file so far is kept."""
    import threading

    from sredge.train.qat import QatOptions, finetune

    path, desc, ptq, validator, sampler = _finetune_inputs(bundled)
    stop, seen = threading.Event(), []

    def on_step(step, loss, val):
        seen.append((step, val))
        if step == 3:
            stop.set()

    result = finetune(path, ptq, sampler, validator.mean_db, QatOptions(steps=40, batch=4, val_every=20),
                      desc.value_range, 0, on_step, stop=stop)
    assert result.steps_done == 4 and [s for s, _ in seen] == [1, 2, 3, 4]  # the step in hand when it came
    assert seen[-1][1] is not None and seen[-2][1] is None  # step 4 was validated, though --val-every is 20
    assert result.best_step in (0, 4) and result.qat_db >= result.ptq_db
    assert sorted(quantized_nodes(result.model)) == sorted(n.name for n in result.model.graph.node
                                                           if n.op_type == "Conv")


def test_qat_recovers_most_of_the_real_fsrcnn_x3_int8_loss(cli, tmp_path):
    """The real FSRCNN x3 loses about 0.5 dB of Set5 Y-PSNR in plain INT8; 150 QAT steps on T91
    patches win back at least 0.1 dB of it, judged by ONNX Runtime on the written file."""
    ckpt, t91, set5 = asset("weights/fsrcnn/fsrcnn_x3.pth"), asset("calibration/T91"), asset("benchmarks/Set5")
    out = tmp_path / "fsrcnn_x3.int8.onnx"
    res = cli("train", "--qat", ckpt, "--scale", "3", "--data", t91, "--val", set5, "--steps", "150",
              "--val-every", "75", "--patch", "24", "--threads", "1", "-o", out)
    assert res.code == 0, res.err
    line = next(ln for ln in res.out.splitlines() if "QAT INT8" in ln)
    fp32, ptq, qat = (float(line.split(label)[1].split()[0]) for label in ("FP32 ", "INT8 ", "QAT INT8 "))
    assert ptq < fp32 - 0.2
    assert qat >= ptq + 0.1
    desc = read_descriptor(out)
    assert abs(desc.psnr_drop_db - (fp32 - qat)) < 0.01


@pytest.mark.parametrize("argv,message", [
    (["--arch", "fsrcnn"], "; --arch only applies to training a new one"),
    (["--arch", "fsrcnn", "--feats", "8"], "; --arch, --feats only apply to training a new one"),
])
def test_sr_train_qat_refusal_agrees_in_number(cli, tmp_path, argv, message):
    """The audit: '--arch only apply to training a new one'."""
    res = cli("train", "--qat", bundled_model_path(2), "--data", "sample", "-o", tmp_path / "q.int8.onnx", *argv)
    assert res.code == 2 and message in res.err, res.err


def test_sr_train_qat_refuses_a_scale_that_contradicts_the_model(cli, tmp_path):
    """The audit: --qat fsrcnn_x3.pth --scale 2 wrote an x2 INT8 file whose FP32 reference scored 9.78 dB.
    The model keeps its own scale; a --scale that says another is one line, exit 2, nothing written."""
    out = tmp_path / "q.int8.onnx"
    res = cli("train", "--qat", asset("weights/fsrcnn/fsrcnn_x3.pth"), "--scale", "2", "--data", "sample",
              "--steps", "1", "-o", out)
    assert res.code == 2 and "--scale 2 contradicts" in res.err and "x3 fsrcnn" in res.err, res.err
    assert len(res.err.strip().splitlines()) == 1 and not out.exists()
    res = cli("train", "--qat", bundled_model_path(2), "--scale", "3", "--data", "sample", "--steps", "1", "-o", out)
    assert res.code == 2 and "--scale 3 contradicts" in res.err and len(res.err.strip().splitlines()) == 1, res.err
    assert not out.exists()


def test_sr_train_qat_fine_tunes_a_ycbcr_model_in_ycbcr(cli, tmp_path):
    """The public ESPCN x3 works on YCbCr: --qat (refused before: 'upscale RGB or Y'; and ESPCN's output
    Clip was not implemented) feeds it YCbCr patches and validates it as sr-run runs it: its FP32 reference
    scores what sredge's own inference gives."""
    from sredge.benchmarks.datasets import load_dataset
    from sredge.benchmarks.quality import evaluate_y_psnr
    from sredge.data.samples import folder_arg
    from sredge.models.loader import load_model

    ckpt = asset("weights/espcn/espcn_x3.pt")
    out = tmp_path / "espcn_x3.int8.onnx"
    res = cli("train", "--qat", ckpt, "--data", "sample", "--val", "sample", "--steps", "4", "--val-every", "2",
              "--batch", "4", "--patch", "16", "--threads", "1", "-o", out)
    assert res.code == 0, res.err
    assert read_descriptor(out).color_space == "ycbcr"
    line = next(ln for ln in res.out.splitlines() if "QAT INT8" in ln)
    fp32, ptq, qat = (float(line.split(label)[1].split()[0]) for label in ("FP32 ", "INT8 ", "QAT INT8 "))
    loaded = load_model(ckpt)
    with torch.no_grad():
        scores = evaluate_y_psnr(lambda x: loaded.module(torch.from_numpy(x)).numpy(), loaded.descriptor,
                                 load_dataset(folder_arg("sample"), 3))
    assert fp32 == pytest.approx(float(np.mean(list(scores.values()))), abs=0.02)
    assert qat >= ptq
    run = cli("run", "--image", asset_free_image(tmp_path), "--model", out, "-o", tmp_path / "up.png")
    assert run.code == 0, run.err


def test_sr_train_qat_takes_a_pickled_checkpoint_with_trust_pickle(cli, tmp_path):
    """The audit: --qat ignored --trust-pickle, so its own error ('--trust-pickle loads it') could not be
    followed; VDSR got the pickle error instead of the pre-upsampling refusal."""
    vdsr = asset("weights/vdsr/vdsr_model_epoch_50.pth")
    argv = ("--data", "sample", "--scale", "2", "--steps", "2", "-o", tmp_path / "v.int8.onnx")
    res = cli("train", "--qat", vdsr, *argv)
    assert res.code == 2 and "--trust-pickle loads it" in res.err, res.err
    res = cli("train", "--qat", vdsr, "--trust-pickle", *argv)
    assert res.code == 2 and "pre-upsampling" in res.err and len(res.err.strip().splitlines()) == 1, res.err


def test_qat_target_model_distils_from_another_network(cli, tmp_path, exported):
    """--qat-target MODEL.onnx: the INT8 network learns that model's output (the bundled x2, 37.4 dB on Set5,
    took FSRCNN x2's 36,000-step drop from 0.256 to 0.223 dB). Its own FP32 file as the model is exactly the
    fp32 target, and another model trains other weights."""
    fsrcnn = exported("fsrcnn_x2")  # post-training INT8 loses 2.6 dB: a few steps of QAT beat it
    argv = ("--data", "sample", "--val", "sample", "--steps", "20", "--val-every", "10", "--batch", "4", "--patch",
            "24", "--threads", "1")
    outs = {}
    for name, target in (("fp32", "fp32"), ("itself", fsrcnn), ("bundled", bundled_model_path(2)),
                         ("other", bundled_model_path(3))):
        out = tmp_path / f"{name}.int8.onnx"
        res = cli("train", "--qat", fsrcnn, "--qat-target", target, *argv, "-o", out)
        outs[name] = res
        if name != "other":  # trained past post-training INT8, so the file is the training's, not PTQ's
            assert res.code == 0 and "best at step 0)" not in res.out, (res.out, res.err)
    assert (tmp_path / "fp32.int8.onnx").read_bytes() == (tmp_path / "itself.int8.onnx").read_bytes()
    assert (tmp_path / "bundled.int8.onnx").read_bytes() != (tmp_path / "fp32.int8.onnx").read_bytes()
    assert outs["other"].code == 2 and "does not take and give what the model does" in outs["other"].err
    res = cli("train", "--qat", fsrcnn, "--qat-target", "nonsense", *argv, "-o", tmp_path / "n.int8.onnx")
    assert res.code == 2 and "give fp32, ground-truth, or a model to learn from" in res.err, res.err


def test_the_teacher_target_is_the_third_member_of_each_batch(bundled):
    """QatOptions(target="teacher") trains against what the sampler gives third (a teacher's output on the whole
    image, computed once): with the HR patches there, step 1 is the ground-truth run's step; with other
    images, another loss."""
    from sredge.train.qat import QatOptions, finetune

    path, desc, ptq, validator, sampler = _finetune_inputs(bundled)

    class Third:
        def __init__(self, make):
            self.rng, self.make = sampler.rng, make

        def batch(self, n):
            lr, hr = sampler.batch(n)
            return lr, hr, self.make(hr)

    losses = {}
    for name, target, make in (("gt", "ground-truth", None), ("hr", "teacher", lambda hr: hr),
                               ("grey", "teacher", lambda hr: np.full_like(hr, 0.5))):
        sampler.rng = np.random.default_rng(0)
        seen = []
        finetune(path, ptq, Third(make) if make else sampler, validator.mean_db,
                 QatOptions(steps=1, batch=4, val_every=1, target=target), desc.value_range, 0,
                 lambda step, loss, val: seen.append(loss))
        losses[name] = seen[0]
    assert losses["hr"] == losses["gt"] and abs(losses["grey"] - losses["gt"]) > 0.02, losses


def test_qat_target_checkpoint_distils_from_any_network_sr_export_reads(cli, tmp_path):
    """--qat-target CHECKPOINT: a teacher run once on each whole training image, a pre-upsampling one (VDSR, the
    strongest x2 network at hand: FSRCNN x2's 36,000-step drop 0.195 / 0.117 dB on Set5 / Set14 with it, 0.223 /
    0.135 with the bundled x2 as an .onnx target) too; a teacher of another scale is refused in one line."""
    vdsr = asset("weights/vdsr/vdsr_model_epoch_50.pth")
    argv = ("--data", "sample", "--val", "sample", "--steps", "8", "--val-every", "4", "--batch", "4", "--patch",
            "24", "--threads", "1", "--flavour", "trt")
    out = tmp_path / "v.int8.onnx"
    res = cli("train", "--qat", bundled_model_path(2), "--qat-target", vdsr, "--trust-pickle", *argv, "-o", out)
    assert res.code == 0 and "teacher targets 3/3 images" in res.err and "none kept in float" in res.out, res.err
    assert read_descriptor(out).precision == "int8-trt"
    res = cli("train", "--qat", bundled_model_path(2), "--qat-target", vdsr, *argv, "-o", tmp_path / "p.int8.onnx")
    assert res.code == 2 and "--qat-target" in res.err and "--trust-pickle" in res.err, res.err
    res = cli("train", "--qat", bundled_model_path(2), "--qat-target", asset("weights/fsrcnn/fsrcnn_x3.pth"),
              *argv, "-o", tmp_path / "x3.int8.onnx")
    assert res.code == 2 and len(res.err.strip().splitlines()) == 1, res.err
    assert "the teacher is a x3 model; the student is x2" in res.err
    assert not (tmp_path / "p.int8.onnx").exists() and not (tmp_path / "x3.int8.onnx").exists()


QAT_RUN = ("--data", "sample", "--val", "sample", "--steps", "8", "--val-every", "4", "--batch", "4", "--patch", "24",
           "--threads", "1", "-q")


def test_a_resumed_qat_run_ends_as_an_uninterrupted_one(cli, tmp_path):
    """QAT could not resume: a stopped run had to start over. Its state (weights, optimiser, schedule, random
    states, the best file so far) is now kept beside -o at each validation, and --resume continues it: stopped
    at step 4 and resumed, the run writes the uninterrupted run's file byte for byte, and removes its state."""
    from sredge.train.qat_state import read_state, state_path

    model = bundled_model_path(2)
    whole, part = tmp_path / "whole.int8.onnx", tmp_path / "part.int8.onnx"
    assert cli("train", "--qat", model, *QAT_RUN, "-o", whole).code == 0
    assert not state_path(whole).exists()
    res = cli("train", "--qat", model, *QAT_RUN[:-1], "--stop-after", "4", "-o", part)
    assert res.code == 0 and f"stopped at QAT step 4 of 8 (--stop-after): {state_path(part)} keeps the run" in res.out
    run = read_state(state_path(part))
    assert run.checkpoint.step == 4 and run.run_options["--lr"] == 1e-4
    assert read_descriptor(part).psnr_drop_db is not None  # the best file so far is a whole INT8 file
    # again without --resume: the stopped run is not replaced
    again = cli("train", "--qat", model, *QAT_RUN, "--stop-after", "4", "-o", part)
    assert again.code == 2 and "--resume" in again.err
    nothing = cli("train", "--qat", model, *QAT_RUN[:-1], "--stop-after", "4", "--resume", "-o", part)
    assert nothing.code == 0 and "nothing left to train up to --stop-after 4" in nothing.out
    res = cli("train", "--qat", model, *QAT_RUN, "--resume", "-o", part)
    assert res.code == 0, res.err
    assert part.read_bytes() == whole.read_bytes() and not state_path(part).exists()
    # a finished run keeps no state: --resume says so instead of training it again
    done = cli("train", "--qat", model, *QAT_RUN, "--resume", "-o", part)
    assert done.code == 2 and "no QAT run to continue" in done.err and len(done.err.strip().splitlines()) == 1


def test_qat_resume_refuses_another_run_in_one_line(cli, tmp_path):
    import shutil

    from sredge.train.qat_state import state_path

    model = shutil.copy(bundled_model_path(2), tmp_path / "m.onnx")
    out = tmp_path / "q.int8.onnx"
    assert cli("train", "--qat", model, *QAT_RUN, "--stop-after", "4", "-o", out).code == 0

    def refused(*extra, needle):
        res = cli("train", "--qat", model, *QAT_RUN, "--resume", "-o", out, *extra)
        assert res.code == 2 and needle in res.err and len(res.err.strip().splitlines()) == 1, res.err

    refused("--lr", "3e-4", needle="--lr 0.0003, but the run it continues used --lr 0.0001")
    refused("--flavour", "trt", needle="--flavour trt, but the run it continues used --flavour cpu")
    refused("--steps", "3", needle="--steps 3, but it has done 4 steps already")
    narrow = tmp_path / "n.int8.onnx"
    assert cli("train", "--qat", model, *QAT_RUN, "--flavour", "trt", "--weight-bits", "7", "--stop-after", "4",
               "-o", narrow).code == 0
    res = cli("train", "--qat", model, *QAT_RUN, "--flavour", "trt", "--resume", "-o", narrow)
    assert res.code == 2 and "--weight-bits 8, but the run it continues used --weight-bits 7" in res.err, res.err
    model_bytes = model.read_bytes()
    onnx_model = onnx.load(str(model))
    onnx_model.doc_string = "changed"
    onnx.save(onnx_model, str(model))
    refused(needle="the --qat file has changed since the run began")
    model.write_bytes(model_bytes)
    state = state_path(out)
    kept = state.read_bytes()
    state.write_bytes(kept[: len(kept) // 2])
    refused(needle="not a QAT state sr-train can resume")
    state.write_bytes(kept)
    # the best file deleted by hand: the state alone still says a run is stopped there
    out.unlink()
    res = cli("train", "--qat", model, *QAT_RUN, "-o", out)
    assert res.code == 2 and "holds a stopped QAT run" in res.err
    # --overwrite starts over: the stopped run's state goes, and the new run, finished, leaves none
    assert cli("train", "--qat", model, *QAT_RUN, "--overwrite", "-o", out).code == 0
    assert out.exists() and not state.exists()


def test_refit_cosine_continues_the_longer_schedule():
    from sredge.train.loop import refit_cosine

    w = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([{"params": [w], "lr": 1e-3}, {"params": [torch.nn.Parameter(torch.zeros(1))],
                                                           "lr": 1e-2}])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        opt.step()
        sched.step()
    refit_cosine(opt, sched, 20, 4)
    for step in range(5, 21):
        opt.step()
        sched.step()
        want = (1 + np.cos(np.pi * step / 20)) / 2
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([1e-3 * want, 1e-2 * want], abs=1e-12)


def test_qat_state_the_audit_broke(cli, tmp_path):
    """The audit of resumable QAT: a run stopped after its last step could never finish; --overwrite dropped a
    stopped run's state before its own options were checked; damage that kept the state's size went unnoticed;
    three messages advised what the next command refused."""
    from sredge.train.qat_state import state_path

    model = bundled_model_path(2)
    out = tmp_path / "q.int8.onnx"
    state = state_path(out)
    assert cli("train", "--qat", model, *QAT_RUN, "--stop-after", "4", "-o", out).code == 0
    kept = state.read_bytes()
    # --overwrite that fails on its own options keeps the stopped run it would have replaced
    res = cli("train", "--qat", model, *QAT_RUN, "--overwrite", "--qat-target", bundled_model_path(3), "-o", out)
    assert res.code == 2 and "does not take and give what the model does" in res.err, res.err
    assert state.read_bytes() == kept
    # damage that keeps the size (bytes inside the optimiser's moments) is refused
    damaged = bytearray(kept)
    damaged[len(kept) // 2: len(kept) // 2 + 4] = b"XXXX"
    state.write_bytes(bytes(damaged))
    res = cli("train", "--qat", model, *QAT_RUN, "--resume", "-o", out)
    assert res.code == 2 and "not a QAT state sr-train can resume" in res.err, res.err
    state.write_bytes(kept)
    # a run stopped at its last step (here: --steps 4 on a run stopped at 4) is finished by --resume
    out.unlink()
    res = cli("train", "--qat", model, *QAT_RUN[:-1], "--steps", "4", "--resume", "-o", out)
    assert res.code == 0 and "nothing left to train up to --steps 4; wrote" in res.out, res.out + res.err
    assert not state.exists() and read_descriptor(out).psnr_drop_db is not None
    # a finished run: the plain command and --resume both point to --overwrite, and --overwrite trains it
    res = cli("train", "--qat", model, *QAT_RUN, "-o", out)
    assert res.code == 2 and "a finished QAT run keeps no state" in res.err and "--overwrite" in res.err, res.err
    # a folder where the state goes cannot be named otherwise: move it away
    state.mkdir()
    for extra in ((), ("--resume",), ("--overwrite",)):
        res = cli("train", "--qat", model, *QAT_RUN, *extra, "-o", out)
        assert res.code == 2 and "is in the way of -o's QAT state" in res.err, (extra, res.err)
    state.rmdir()
    # -o naming the --qat model: refused as overwriting the input, not "--overwrite trains it again"
    copy = tmp_path / "m.onnx"
    copy.write_bytes(model.read_bytes())
    res = cli("train", "--qat", copy, *QAT_RUN, "--resume", "-o", copy)
    assert res.code == 2 and "would overwrite the input" in res.err, res.err


# Signals its own process, so it runs in a fresh interpreter (as tests/robustness/test_signals.py's in-process
# cases do): a signal sent to a test worker can land in one of its native libraries' threads and end the worker.
_SIGNAL_AT_THE_LAST_STEP = """
import os, signal, sys
from sredge.cli import train
from sredge.cli._app import run
from sredge.train import qat

real = qat.finetune

def finetune(fp32, qdq, sampler, validate, options, value_range, seed, on_step, **kwargs):
    def step(n, loss, val):
        if n == options.steps:
            os.kill(os.getpid(), signal.SIGINT)  # sr-train's handler sets the stop event
        on_step(n, loss, val)
    return real(fp32, qdq, sampler, validate, options, value_range, seed, step, **kwargs)

qat.finetune = finetune
sys.exit(run(train.PROG, train.main, sys.argv[1:]))
"""


def test_a_stop_during_a_validation_ends_there_and_one_after_the_last_step_is_ignored(bundled, tmp_path):
    """The audit: a stop that came while a step was validated cost one more step and validation; a stop during
    the last step exited 130 promising a resume of a run that had finished (and removed its state)."""
    import subprocess
    import sys
    import threading

    from sredge.train import qat
    from sredge.train.qat_state import state_path

    path, desc, ptq, validator, sampler = _finetune_inputs(bundled)
    stop, calls = threading.Event(), []

    def validate(model):
        calls.append(model)
        if len(calls) == 3:  # FP32, PTQ, then step 2's validation
            stop.set()
        return validator.mean_db(model)

    result = qat.finetune(path, ptq, sampler, validate, qat.QatOptions(steps=40, batch=4, val_every=2),
                          desc.value_range, 0, stop=stop)
    assert result.steps_done == 2 and len(calls) == 3

    out = tmp_path / "q.int8.onnx"
    res = subprocess.run([sys.executable, "-c", _SIGNAL_AT_THE_LAST_STEP, "--qat", str(path), *QAT_RUN[:-1],
                          "-o", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and "wrote" in res.stdout and "interrupted" not in res.stderr, res.stdout + res.stderr
    assert out.exists() and not state_path(out).exists()
