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


def run_cli(tmp_path, *extra, groundtruth="g.csv", **replaced):
    """Run tools/ava_eval.py in ``tmp_path`` on the files above, ``replaced`` by name (``d_csv="..."``)."""
    files = {"l.pbtxt": LABEL_MAP, "g.csv": TRUTH, "d.csv": DETECTIONS, "e.csv": "v,0904\n"}
    files.update({name.replace("_", "."): text for name, text in replaced.items()})
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    command = [sys.executable, str(REPO / "tools" / "ava_eval.py"), "-l", "l.pbtxt", "-g", groundtruth,
               "-d", "d.csv", *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO)})


def assert_one_error_line(completed, words):
    """Exit 2, no traceback, and one ``error:`` line starting with ``words``."""
    assert completed.returncode == 2, completed.stderr
    assert "Traceback" not in completed.stderr
    errors = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {words}"), completed.stderr


def test_cli_prints_map_and_writes_json(tmp_path):
    completed = run_cli(tmp_path, "--json", "m.json")
    assert completed.returncode == 0, completed.stderr
    # stand: 1.0; sit: a false positive (0.8) then a true positive (0.7) of 2 boxes: 0.5 * 0.5.
    assert "frame-mAP@0.5IoU: 0.625000" in completed.stdout
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["mAP"] == 0.625
    assert metrics["per_class"] == {"stand": 1.0, "sit": 0.25}
    assert metrics["classes_without_groundtruth"] == ["walk"]


def test_cli_exclusions_flag(tmp_path):
    completed = run_cli(tmp_path, "-e", "e.csv", "--json", "m.json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "m.json").read_text())["per_class"] == {"stand": 1.0, "sit": 0.0}


NOT_FINITE_SCORE = "column 8 (person id or score) must be a finite number"
USER_MISTAKES = {
    "NaN score": ({"d_csv": DETECTIONS.replace("0.8\n", "nan\n")}, f"d.csv:2: {NOT_FINITE_SCORE}, got 'nan'"),
    "infinite score": ({"d_csv": DETECTIONS.replace("0.8\n", "inf\n")}, f"d.csv:2: {NOT_FINITE_SCORE}, got 'inf'"),
    "detection without score": ({"d_csv": DETECTIONS.replace(",0.8\n", "\n")}, "d.csv:2: no score; detection rows"),
    "timestamp that is not a number": ({"d_csv": "v,09o2,0.1,0.1,0.4,0.9,12,0.9\n"}, "d.csv:1: the timestamp"),
    "NaN coordinate": ({"d_csv": "v,0902,nan,0.1,0.4,0.9,12,0.9\n"}, "d.csv:1: box coordinate (column 3) must be"),
    "empty ground truth": ({"g_csv": ""}, "g.csv: no ground-truth rows (empty file)"),
    "ground truth of other classes only": ({"g_csv": TRUTH.replace(",12,", ",2,").replace(",11,", ",3,")},
                                           "g.csv: no ground-truth box of a label-map class"),
    "ground truth with 6 columns": ({"g_csv": TRUTH + "v,0905,0.1,0.1,0.4,0.9\n"}, "g.csv:4: expected 7 or 8"),
    "inverted ground-truth box": ({"g_csv": "v,0902,0.4,0.1,0.1,0.9,12,0\n"}, "g.csv:1: box 0.4,0.1,0.1,0.9 is not"),
    "duplicate label-map id": ({"l_pbtxt": LABEL_MAP.replace("id: 14", "id: 12")},
                               "l.pbtxt:9: class id 12 is listed twice"),
    "label map without ids": ({"l_pbtxt": 'item {\n  name: "stand"\n}\n'}, "l.pbtxt:1: label map entry without id"),
    "unclosed label-map entry": ({"l_pbtxt": LABEL_MAP + 'item {\n  name: "run"\n  id: 15\n'},
                                 "l.pbtxt:13: unexpected 'item' outside an entry"),
    "exclusions with 3 columns": ({"e_csv": "v,0904,1\n"}, "e.csv:1: expected 2 columns"),
}


@pytest.mark.parametrize("files, words", USER_MISTAKES.values(), ids=USER_MISTAKES.keys())
def test_a_user_mistake_is_one_error_line_naming_file_and_line(tmp_path, files, words):
    assert_one_error_line(run_cli(tmp_path, "-e", "e.csv", **files), words)


@pytest.mark.parametrize(
    "extra, words",
    [
        (["-d", "missing.csv"], "[Errno 2] No such file or directory: 'missing.csv'"),
        (["-g", "."], "[Errno 21] Is a directory: '.'"),
        (["--json", "."], ". is a folder; give a file name"),
        (["--json", "g.csv/m.json"], "cannot create the folder g.csv for g.csv/m.json"),
        (["--plot", "g.csv/sub/ap.png"], "[Errno 20] Not a directory: 'g.csv/sub'"),
    ],
    ids=["missing detections", "folder as ground truth", "folder as JSON", "JSON under a file", "chart under a file"],
)
def test_a_bad_path_is_one_error_line_before_evaluating(tmp_path, extra, words):
    completed = run_cli(tmp_path, *extra)
    assert_one_error_line(completed, words)
    assert completed.stdout == ""


def test_cli_json_into_a_missing_folder_creates_it(tmp_path):
    completed = run_cli(tmp_path, "--json", "new/folder/m.json")
    assert completed.returncode == 0, completed.stderr
    assert json.loads((tmp_path / "new" / "folder" / "m.json").read_text())["mAP"] == 0.625


ODD_BOXES = DETECTIONS + (
    "v,0902,0.4,0.1,0.1,0.9,12,0.95\n"  # inverted: ignored (as a false positive, stand would drop to 0.5)
    "v,0903,0.1,0.1,0.4,1.004,11,0.85\n"  # outside [0, 1]: matched as given, a true positive
)


def test_cli_scores_odd_detection_boxes_as_the_official_evaluator_with_one_warning(tmp_path):
    completed = run_cli(tmp_path, d_csv=ODD_BOXES)
    assert completed.returncode == 0, completed.stderr
    # stand 1.0; sit: TP (0.85), FP (0.8), TP (0.7) of 2 boxes: 0.5 * 1 + 0.5 * 2/3.
    assert "frame-mAP@0.5IoU: 0.916667" in completed.stdout
    warnings = [line for line in completed.stderr.splitlines() if "x1 >= x2" in line]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING: d.csv: 2 detections with a box outside [0, 1]")
    assert warnings[0].endswith("at d.csv:4, d.csv:5")


def test_cli_strict_refuses_odd_detection_boxes(tmp_path):
    assert_one_error_line(run_cli(tmp_path, "--strict", d_csv=ODD_BOXES), "d.csv:4: box 0.4,0.1,0.1,0.9 is not")
    assert run_cli(tmp_path, "--strict").returncode == 0


def test_cli_help_prints_the_usage_example_as_written(tmp_path):
    completed = subprocess.run([sys.executable, str(REPO / "tools" / "ava_eval.py"), "--help"], capture_output=True,
                               text=True, cwd=tmp_path, env={"PYTHONPATH": str(REPO), "COLUMNS": "200"})
    assert completed.returncode == 0, completed.stderr
    assert (
        "    python tools/ava_eval.py -l ava_action_list_v2.2_for_activitynet_2019.pbtxt \\\n"
        "        -g ava_val_v2.2.csv -d detections.csv -e ava_val_excluded_timestamps_v2.2.csv \\\n"
    ) in completed.stdout


def test_cli_saves_chart(tmp_path):
    pytest.importorskip("matplotlib", reason="the chart needs the plot extra")
    completed = run_cli(tmp_path, "--plot", "ap.png")
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
    with pytest.raises(ImportError, match=r"pip install matplotlib \(or pip install -e '\.\[plot\]' in a checkout\)"):
        plots.save_per_class_ap_chart(None, "unused.png")
