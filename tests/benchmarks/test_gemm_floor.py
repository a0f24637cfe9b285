"""benchmarks/gemm_floor.py: the products of a run are recorded exactly and replayed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "gemm_floor.py"
_spec = importlib.util.spec_from_file_location("gemm_floor", _PATH)
gemm_floor = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("gemm_floor", gemm_floor)  # dataclasses look their module up
_spec.loader.exec_module(gemm_floor)


def test_records_linear_mm_addmm_in_order_with_their_flops():
    w1, w2 = torch.randn(7, 5), torch.randn(3, 7)
    b = torch.randn(3)
    x = torch.randn(4, 2, 5)  # linear on a 3-D input: 8 rows

    def run():
        h = F.linear(x, w1)  # 2 * 8 * 5 * 7
        torch.mm(h.reshape(8, 7), w2.t())  # 2 * 8 * 7 * 3
        torch.addmm(b, h.reshape(8, 7), w2.t())  # 2 * 8 * 7 * 3
        torch.relu(h)  # not a product

    log = gemm_floor.record_gemms(run)
    assert [g.name for g in log] == ["aten::linear", "aten::mm", "aten::addmm"]
    assert [g.flops for g in log] == [560.0, 336.0, 336.0]
    assert [g.shape for g in log] == [(4, 2, 5), (8, 7), (8, 7)]
    assert log[0].args[1] is w1 and log[0].args[0] is None  # the weight is kept, the activation is not


def test_records_the_packed_output_layer_and_restores_the_fast_path():
    from sharpbench.models.hf import fastpath

    if not fastpath._can_pack(torch.empty(8, 8)):
        pytest.skip("no MKL packed GEMM in this torch build")
    w = torch.randn(64, 16)
    packed = fastpath._mkl()._mkl_reorder_linear_weight(w, fastpath.PACKED_ROWS)
    x = torch.randn(fastpath.PACKED_ROWS + 100, 16)  # one packed chunk + one padded chunk
    real = fastpath._mkl
    log = gemm_floor.record_gemms(lambda: fastpath._packed_linear(x, packed, w))
    assert fastpath._mkl is real
    assert [g.name for g in log] == ["mkl::_mkl_linear"] * 2
    assert sum(g.flops for g in log) == 2.0 * 2 * fastpath.PACKED_ROWS * 16 * 64


def test_replay_issues_the_recorded_products():
    w = torch.randn(256, 128)
    x = torch.randn(64, 128)
    log = gemm_floor.record_gemms(lambda: [F.linear(x, w) for _ in range(3)])
    seconds, flops = gemm_floor.replay_gemms(log)
    assert flops == 3 * 2.0 * 64 * 128 * 256
    assert seconds > 0.0
