"""benchmarks/gpu_check.py runs in CI: in dry mode every CUDA step is listed as skipped, with its reason."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = ["forward", "train", "mae", "compile", "engine", "torchrun", "predict", "ava"]


def test_dry_run_lists_every_step_as_skipped(tmp_path):
    out = tmp_path / "gpu_check.json"
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--json", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert [step["step"] for step in report["steps"]] == STEPS
    assert all(step["status"] == "skipped" and step["reason"] == "--dry-run" for step in report["steps"])
    for name in STEPS:
        assert f"| {name} | skipped |" in done.stdout
