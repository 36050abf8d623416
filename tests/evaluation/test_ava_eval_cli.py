"""tools/ava_eval.py: the official evaluator's flags, printed metrics, JSON and chart."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LABEL_MAP = 'item {\n  name: "stand"\n  id: 12\n}\nitem {\n  name: "sit"\n  id: 11\n}\nitem {\n  name: "walk"\n  id: 14\n}\n'
TRUTH = "v,0902,0.1,0.1,0.4,0.9,12,0\nv,0903,0.1,0.1,0.4,0.9,11,0\nv,0904,0.1,0.1,0.4,0.9,11,0\n"
DETECTIONS = "v,0902,0.1,0.1,0.4,0.9,12,0.9\nv,0903,0.5,0.1,0.9,0.9,11,0.8\nv,0904,0.1,0.1,0.4,0.9,11,0.7\n"


def run_cli(tmp_path, *extra, groundtruth="g.csv"):
    files = {"l.pbtxt": LABEL_MAP, "g.csv": TRUTH, "d.csv": DETECTIONS, "e.csv": "v,0904\n"}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    command = [sys.executable, str(REPO / "tools" / "ava_eval.py"), "-l", str(tmp_path / "l.pbtxt"),
               "-g", str(tmp_path / groundtruth), "-d", str(tmp_path / "d.csv"), *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO, env={"PYTHONPATH": str(REPO)})


def test_cli_prints_map_and_writes_json(tmp_path):
    completed = run_cli(tmp_path, "--json", str(tmp_path / "m.json"))
    assert completed.returncode == 0, completed.stderr
    # stand: 1.0; sit: a false positive (0.8) then a true positive (0.7) of 2 boxes: 0.5 * 0.5.
    assert "frame-mAP@0.5IoU: 0.625000" in completed.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["mAP"] == 0.625
    assert metrics["per_class"] == {"stand": 1.0, "sit": 0.25}
    assert metrics["classes_without_groundtruth"] == ["walk"]


def test_cli_exclusions_flag(tmp_path):
    completed = run_cli(tmp_path, "-e", str(tmp_path / "e.csv"), "--json", str(tmp_path / "m.json"))
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "m.json").read_text())["per_class"] == {"stand": 1.0, "sit": 0.0}


def test_cli_reports_bad_file_with_line(tmp_path):
    (tmp_path / "bad.csv").write_text("v,0902,0.1\n")
    completed = run_cli(tmp_path, groundtruth="bad.csv")
    assert completed.returncode == 2
    assert "bad.csv:1: expected 7 or 8" in completed.stderr


def test_cli_saves_chart(tmp_path):
    pytest.importorskip("matplotlib", reason="the chart needs the plot extra")
    completed = run_cli(tmp_path, "--plot", str(tmp_path / "ap.png"))
    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "ap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_without_matplotlib_names_the_extra(monkeypatch):
    import builtins

    from hiera_video.evaluation import plots

    real_import = builtins.__import__

    def refuse_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refuse_matplotlib)
    with pytest.raises(ImportError, match=r"pip install hiera-video\[plot\]"):
        plots.save_per_class_ap_chart(None, "unused.png")
