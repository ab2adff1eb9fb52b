"""The machine description every report carries: CPU model and the flags that change INT8/bf16 speed."""

from sredge.environment import INFERENCE_FLAGS, cpu_model_and_flags, software_and_machine

X86 = """processor\t: 0
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_tile
processor\t: 1
model name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz
flags\t\t: fpu sse2 avx2 avx512f avx512_vnni amx_tile
"""

ARM = """processor\t: 0
BogoMIPS\t: 62.50
Features\t: fp asimd evtstrm aes asimddp sha512
CPU implementer\t: 0x41
"""


def test_x86_model_and_only_the_inference_flags():
    name, flags = cpu_model_and_flags(X86)
    assert name == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert flags == ["avx2", "avx512f", "avx512_vnni"]  # INFERENCE_FLAGS order; amx_tile is not amx_int8


def test_arm_features_and_a_fallback_name():
    name, flags = cpu_model_and_flags(ARM)
    assert flags == ["asimddp"] and name  # no model line: the platform's name, never empty


def test_reports_carry_the_flags_of_this_machine():
    from pathlib import Path

    _, machine = software_and_machine(2)
    assert machine["threads"] == 2 and machine["processor"]
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    have = set(next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                     if ln.split(":", 1)[0].strip() in ("flags", "Features")), []))
    assert machine["cpu_flags"] == [f for f in INFERENCE_FLAGS if f in have]  # this machine's, in order
