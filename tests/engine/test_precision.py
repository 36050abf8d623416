"""Precision choices: ``auto`` takes bf16 on CPUs with native bf16 only, and says so in the log."""
import logging

import pytest
import torch

from hiera_video.engine import precision

CPU = torch.device("cpu")


@pytest.mark.parametrize("native_bf16, expected", [(True, "bf16"), (False, "")])
def test_auto_on_cpu_is_bf16_only_with_native_bf16(monkeypatch, native_bf16, expected):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: native_bf16)
    assert precision.resolve_precision("auto", CPU) == expected
    assert precision.precision_name("auto", CPU) == ("bf16 autocast" if native_bf16 else "float32")
    assert precision.build_grad_scaler("auto", CPU) is None


def test_explicit_choices_do_not_depend_on_the_cpu(monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: False)
    assert precision.resolve_precision("bf16", CPU) == "bf16"
    assert precision.resolve_precision("fp32", CPU) == precision.resolve_precision("", CPU) == ""
    with pytest.raises(ValueError, match="fp16 autocast needs a CUDA device"):
        precision.resolve_precision("fp16", CPU)
    with pytest.raises(ValueError, match="precision must be one of"):
        precision.resolve_precision("int8", CPU)


def test_the_log_says_which_precision_runs(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    with caplog.at_level(logging.INFO, logger=precision.__name__):
        assert precision.log_precision("auto", CPU) == "bf16"
    assert "Precision: bf16 autocast on cpu (this CPU has native bf16)" in caplog.text


def test_auto_autocasts_to_bf16_on_a_bf16_cpu(monkeypatch):
    monkeypatch.setattr(precision, "cpu_supports_bf16", lambda: True)
    with precision.autocast_context("auto", CPU):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_the_config_takes_auto():
    from hiera_video.config import load_config

    assert load_config(None, ["TRAIN.MIXED_PRECISION", "auto"]).TRAIN.MIXED_PRECISION == "auto"
