"""Journey fixtures: tiny datasets in each dataset's real on-disk layout, and the real commands run on them.

Every dataset is written once per session, in two versions that share the video files: the clean lists,
and lists with ONE undecodable video (random bytes under a video name) added to the training split and one
to the test split. Jobs run ``tools/run_net.py`` / ``tools/predict.py`` in a fresh process, exactly as a
user types them, with a shipped config and tiny overrides (a 16-channel Hiera, 4 frames of 32x32, one
epoch, few views).
"""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import av
import numpy as np
import pytest

from hiera_video.datasets.ava import write_frame_list
from hiera_video.datasets.ava_preparation import extract_frames
from hiera_video.datasets.synthetic import numbered_frames, write_video
from hiera_video.utils.motion_dataset import CLASS_NAMES as MOTION_CLASSES, make_motion_dataset

REPO = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT_S = 240
HEIGHT, WIDTH = 48, 64  # 4:3 like most Kinetics / SSv2 videos, scaled down
CHECKPOINT = Path("checkpoints") / "checkpoint_epoch_00001.pyth"

# CPU, one epoch, the data in the main process, full precision (the configs ask for bf16 on a GPU).
QUICK = ["NUM_GPUS", "0", "SOLVER.MAX_EPOCH", "1", "DATA_LOADER.NUM_WORKERS", "0", "DATA_LOADER.PIN_MEMORY", "False",
         "TRAIN.MIXED_PRECISION", "", "LOG_PERIOD", "1"]
# The shipped 16x224 Hiera-B shrunk: 16 channels, one block per stage; 4 frames of 32x32 fit its
# patch stride 2x4x4 and 8x8-token mask units (frames a multiple of 2, crops of 32).
TINY_HIERA = ["HIERA.EMBED_DIM", "16", "HIERA.NUM_HEADS", "1", "HIERA.STAGES", "[1, 1, 1, 1]",
              "DATA.NUM_FRAMES", "4", "DATA.TRAIN_CROP_SIZE", "32", "DATA.TEST_CROP_SIZE", "32",
              "DATA.TRAIN_JITTER_SCALES", "[32, 40]"]
# A tiny split has 1 undecodable video in 4; real datasets stay under the default 5%.
ALLOW_ONE_FAILED_VIDEO = ["TRAIN.MAX_FAILED_FRACTION", "0.5"]


# -------------------------------------------------------------------------------------------------------
# Running the commands
# -------------------------------------------------------------------------------------------------------
@dataclass
class Job:
    """A finished command: its arguments, exit status, output and (for run_net) its OUTPUT_DIR."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    output_dir: Optional[Path] = None

    def diagnosis(self) -> str:
        """The command, its exit status and the tails of its output, for assertion messages."""
        command = " ".join(repr(a) if (" " in a or not a) else a for a in self.args)
        return (f"\n$ {command}\nexit status {self.returncode}\n--- stdout (tail) ---\n{self.stdout[-1500:]}"
                f"\n--- stderr (tail) ---\n{self.stderr[-5000:]}")

    def summary(self) -> dict:
        """The JSON object rank 0 prints at the end of stdout."""
        assert "{" in self.stdout, "no JSON summary at the end of stdout" + self.diagnosis()
        return json.loads(self.stdout[self.stdout.index("{"):])

    def file(self, relative: str | Path) -> Path:
        """A file the job wrote under OUTPUT_DIR (asserted to exist)."""
        path = self.output_dir / relative
        assert path.is_file(), f"{path} was not written" + self.diagnosis()
        return path

    def json_file(self, relative: str | Path) -> dict:
        """A JSON file the job wrote under OUTPUT_DIR."""
        return json.loads(self.file(relative).read_text(encoding="utf-8"))

    def log(self) -> str:
        """OUTPUT_DIR/log.txt."""
        return self.file("log.txt").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Command:
    """``python tools/<tool> ARGS``, and the OUTPUT_DIR it writes (run_net)."""

    tool: str
    args: tuple[str, ...]
    output_dir: Optional[Path] = None


def run_net_command(config: str, output_dir: Path, *opts: str) -> Command:
    """``tools/run_net.py --cfg CONFIG OUTPUT_DIR output_dir OPTS...``."""
    return Command("run_net.py", ("--cfg", config, "OUTPUT_DIR", str(output_dir), *opts), output_dir)


def run_command(command: Command, threads: Optional[int] = None) -> Job:
    """Run ``command`` from the repository root in a fresh process (on ``threads`` CPU threads when given)."""
    argv = [sys.executable, str(REPO / "tools" / command.tool), *command.args]
    env = {key: value for key, value in os.environ.items() if key not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    result = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    return Job(argv[1:], result.returncode, result.stdout, result.stderr, command.output_dir)


def run_together(*commands: Command) -> list[Job]:
    """Run ``commands`` side by side, one CPU thread each (a process spends most of its time importing
    torch on one core anyway), and return their jobs in order."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda command: run_command(command, threads=1), commands))


# -------------------------------------------------------------------------------------------------------
# Files
# -------------------------------------------------------------------------------------------------------
def write_undecodable(path: Path, seed: int) -> str:
    """4 kB of random bytes under a video's name: what an interrupted download leaves behind."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return str(path)


def write_clip(path: Path, seed: int, num_frames: int = 30, fps: int = 30, codec: str = "libx264") -> str:
    """A tiny video of :func:`numbered_frames` (1 s at 30 fps by default)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_video(path, numbered_frames(num_frames, HEIGHT, WIDTH, seed=seed), fps=fps, codec=codec)


def webm_codec() -> Optional[str]:
    """The VP9 encoder (SSv2's codec), else VP8, else None."""
    for name in ("libvpx-vp9", "libvpx"):
        try:
            av.codec.Codec(name, "w")
            return name
        except (ValueError, av.error.FFmpegError):
            continue
    return None


def write_csv(path: Path, header: Optional[list[str]], rows: list[list]) -> None:
    """A comma-separated file with LF line ends (as the official releases), with or without a header."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        if header:
            writer.writerow(header)
        writer.writerows(rows)


@dataclass(frozen=True)
class Layout:
    """A tiny classification dataset on disk, as config overrides.

    ``opts`` point a config at the clean lists, ``broken_opts`` at the same lists plus one undecodable
    video in the training split (``broken_train``) and one in the val and test splits (``broken_test``, as
    the reader names it in ``metrics.json``). ``test_paths`` are the videos of each test split in list
    order; ``num_train`` the clean training videos (the broken list swaps one for ``broken_train``).
    """

    opts: list[str]
    broken_opts: list[str]
    num_train: int
    test_paths: dict[str, list[str]]
    broken_train: str
    broken_test: str


# -------------------------------------------------------------------------------------------------------
# Kinetics
# -------------------------------------------------------------------------------------------------------
# Real Kinetics class names: PySlowFast folders use underscores, the official CSVs spaces.
KINETICS_CLASSES = ["abseiling", "air drumming", "answering questions"]
YOUTUBE_IDS = ["-3B32lodo2M", "--nQbRBEz2s", "0a5ZIQNXB5A", "1KMd3r1iKtI", "_0mtlDVhGrE", "3fpBqVEMRY8",
               "4Z_XzSWFDho", "6aXOQ0nljt0", "8lJH2Qqy5No", "9_mRx-yxg2E"]


@pytest.fixture(scope="session")
def kinetics_lists(tmp_path_factory) -> Layout:
    """PySlowFast K400 lists: ``{train,val,test}.csv`` of ``path label`` lines, class folders, and
    ``classids.json`` naming all 400 classes; 4 training, 3 val and 3 test videos."""
    root = tmp_path_factory.mktemp("kinetics_pyslowfast")
    videos, clean, broken = root / "videos", root / "lists", root / "lists_broken"
    folders = [name.replace(" ", "_") for name in KINETICS_CLASSES]
    classids = {name: i for i, name in enumerate(folders + [f"class_{i:03d}" for i in range(len(folders), 400)])}
    lines: dict[str, list[str]] = {}
    seed = 0
    for split, count in (("train", 4), ("val", 3), ("test", 3)):
        lines[split] = []
        for i in range(count):
            label = i % len(folders)
            relative = f"{folders[label]}/{YOUTUBE_IDS[seed]}_000010_000020.mp4"
            write_clip(videos / relative, seed)
            lines[split].append(f"{relative} {label}")
            seed += 1
    write_undecodable(videos / "archery" / "broken_train_000000_000010.mp4", 1)
    write_undecodable(videos / "archery" / "broken_val_000000_000010.mp4", 2)
    broken_test = "archery/broken_val_000000_000010.mp4 2"
    broken_lines = {"train": lines["train"][:3] + ["archery/broken_train_000000_000010.mp4 2"],
                    "val": lines["val"] + [broken_test], "test": lines["test"] + [broken_test]}
    for folder, split_lines in ((clean, lines), (broken, broken_lines)):
        folder.mkdir()
        for split, entries in split_lines.items():
            (folder / f"{split}.csv").write_text("\n".join(entries) + "\n", encoding="utf-8")
        (folder / "classids.json").write_text(json.dumps(classids))
    prefix = ["DATA.PATH_PREFIX", str(videos)]
    return Layout(
        opts=["DATA.PATH_TO_DATA_DIR", str(clean), *prefix],
        broken_opts=["DATA.PATH_TO_DATA_DIR", str(broken), *prefix, *ALLOW_ONE_FAILED_VIDEO],
        num_train=4, test_paths={split: [str(videos / line.split()[0]) for line in lines[split]]
                                 for split in ("val", "test")},
        broken_train=str(videos / "archery" / "broken_train_000000_000010.mp4"),
        broken_test=str(videos / "archery" / "broken_val_000000_000010.mp4"),
    )


@pytest.fixture(scope="session")
def motion_lists(tmp_path_factory) -> Layout:
    """The demo's own data: tools/make_synthetic_dataset.py's motion dataset (``train.csv``, ``test.csv``
    and ``labels.txt`` of its 8 classes; 2 s videos), one training and one test video per class."""
    root = make_motion_dataset(tmp_path_factory.mktemp("motion"), {"train": 1, "test": 1})
    lines = {split: (root / f"{split}.csv").read_text(encoding="utf-8").split("\n")[:-1] for split in ("train", "test")}
    broken = root / "lists_broken"
    broken.mkdir()
    write_undecodable(root / "videos" / "train" / "broken_000.mp4", 3)
    write_undecodable(root / "videos" / "test" / "broken_000.mp4", 4)
    (broken / "train.csv").write_text("\n".join(lines["train"][1:] + ["videos/train/broken_000.mp4 0"]) + "\n")
    (broken / "test.csv").write_text("\n".join(lines["test"] + ["videos/test/broken_000.mp4 0"]) + "\n")
    (broken / "labels.txt").write_text((root / "labels.txt").read_text())
    return Layout(
        opts=["DATA.PATH_TO_DATA_DIR", str(root), "DATA.PATH_PREFIX", str(root)],
        broken_opts=["DATA.PATH_TO_DATA_DIR", str(broken), "DATA.PATH_PREFIX", str(root), *ALLOW_ONE_FAILED_VIDEO],
        num_train=len(lines["train"]), test_paths={"test": [str(root / line.split()[0]) for line in lines["test"]]},
        broken_train=str(root / "videos" / "train" / "broken_000.mp4"),
        broken_test=str(root / "videos" / "test" / "broken_000.mp4"),
    )


def _official_kinetics(root: Path, name_of, codec_of) -> tuple[list, list, list, dict]:
    """Rows of train.csv / validate.csv (``label,youtube_id,time_start,time_end,split``), their videos
    written where ``name_of(row)`` says (the extension from ``codec_of(seed)``), and one undecodable video
    per split. Returns (train rows, val rows, val paths as listed, {split: (row, path) of the broken one}).
    """
    videos = root / "videos"
    rows = {"train": [], "validate": []}
    paths = []
    seed = 0
    for split, count in (("train", 4), ("validate", 3)):
        for i in range(count):
            row = [KINETICS_CLASSES[i % 3], YOUTUBE_IDS[seed], 10 * seed, 10 * seed + 10, split]
            codec, extension = codec_of(seed)
            path = videos / (os.path.splitext(name_of(row))[0] + extension)
            write_clip(path, seed + 20, codec=codec)
            if split == "validate":
                paths.append(str(videos / name_of(row)))
            rows[split].append(row)
            seed += 1
    broken = {}
    for split, youtube_id, seed in (("train", "zzBrokenTrn", 3), ("validate", "zzBrokenVal", 4)):
        row = ["answering questions", youtube_id, 0, 10, split]
        broken[split] = (row, write_undecodable(videos / name_of(row), seed))
    return rows["train"], rows["validate"], paths, broken


def _official_layout(root: Path, name_of, codec_of, name_format_opts: list[str]) -> Layout:
    """``annotations/`` with the clean CSVs and ``annotations_broken/`` with one undecodable video added."""
    header = ["label", "youtube_id", "time_start", "time_end", "split"]
    train, val, val_paths, broken = _official_kinetics(root, name_of, codec_of)
    write_csv(root / "annotations" / "train.csv", header, train)
    write_csv(root / "annotations" / "validate.csv", header, val)
    write_csv(root / "annotations_broken" / "train.csv", header, train[:3] + [broken["train"][0]])
    write_csv(root / "annotations_broken" / "validate.csv", header, val + [broken["validate"][0]])
    prefix = ["DATA.PATH_PREFIX", str(root / "videos"), *name_format_opts]
    return Layout(
        opts=["DATA.PATH_TO_DATA_DIR", str(root / "annotations"), *prefix],
        broken_opts=["DATA.PATH_TO_DATA_DIR", str(root / "annotations_broken"), *prefix, *ALLOW_ONE_FAILED_VIDEO],
        num_train=4, test_paths={"val": val_paths}, broken_train=str(root / "videos" / name_of(broken["train"][0])),
        broken_test=str(root / "videos" / name_of(broken["validate"][0])),
    )


def _default_name(row) -> str:
    """The name the common Kinetics downloaders write (DATA.VIDEO_NAME_FORMAT's default)."""
    return f"{row[1]}_{row[2]:06d}_{row[3]:06d}.mp4"


@pytest.fixture(scope="session")
def kinetics_official_flat(tmp_path_factory) -> Layout:
    """The official K600 CSVs (``train.csv``, ``validate.csv``) unchanged, and the videos in one folder
    under the downloaders' names ``{youtube_id}_{time_start:06d}_{time_end:06d}.mp4``."""
    return _official_layout(tmp_path_factory.mktemp("kinetics_official"), _default_name,
                            lambda seed: ("libx264", ".mp4"), [])


@pytest.fixture(scope="session")
def kinetics_official_class_folders(tmp_path_factory) -> Layout:
    """The official K700 CSVs with one folder per class (names with spaces), where some downloads kept
    YouTube's WebM container: the CSV name says ``.mp4``, the file is ``.webm``. The undecodable training
    video is such a ``.webm``."""
    codec = webm_codec()
    name_format = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"

    def name_of(row) -> str:
        return name_format.format(label=row[0], youtube_id=row[1], time_start=row[2], time_end=row[3])

    def codec_of(seed: int) -> tuple[str, str]:
        return (codec, ".webm") if codec and seed % 2 else ("libx264", ".mp4")

    root = tmp_path_factory.mktemp("kinetics_class_folders")
    layout = _official_layout(root, name_of, codec_of, ["DATA.VIDEO_NAME_FORMAT", name_format])
    # The broken training download is a .webm too (looked up from its .mp4 name).
    listed = Path(layout.broken_train)
    listed.rename(listed.with_suffix(".webm"))
    return layout


# -------------------------------------------------------------------------------------------------------
# Something-Something v2
# -------------------------------------------------------------------------------------------------------
SSV2_TEMPLATES = ["Holding [something] next to [something]", "Pushing [something] from left to right",
                  "Putting [something] on a surface"]


@pytest.fixture(scope="session")
def ssv2(tmp_path_factory) -> Layout:
    """The official SSv2 JSON files (labels, train, validation, test) and ``videos/{id}.webm`` (VP9 at 12
    fps, 2 s): 4 training and 3 validation videos."""
    codec = webm_codec()
    if codec is None:
        pytest.skip("this PyAV build has no VP9 / VP8 encoder to write SSv2's .webm videos")
    root = tmp_path_factory.mktemp("ssv2")
    videos, clean, broken = root / "videos", root / "annotations", root / "annotations_broken"
    labels = {template.replace("[", "").replace("]", ""): str(i) for i, template in enumerate(SSV2_TEMPLATES)}
    entries = {"train": [], "validation": []}
    video_id = 78687
    for split, count in (("train", 4), ("validation", 3)):
        for i in range(count):
            template = SSV2_TEMPLATES[i % 3]
            placed = ["potato", "vicks vaporub bottle"][: template.count("[")]
            entries[split].append({"id": str(video_id), "label": template.replace("[something]", "potato"),
                                   "template": template, "placed": placed})
            write_clip(videos / f"{video_id}.webm", video_id % 97, num_frames=24, fps=12, codec=codec)
            video_id += 1
    bad = {split: {"id": str(number), "label": "putting potato on a surface", "template": SSV2_TEMPLATES[2],
                   "placed": ["potato"]} for split, number in (("train", 99001), ("validation", 99002))}
    write_undecodable(videos / "99001.webm", 5)
    write_undecodable(videos / "99002.webm", 6)
    for folder, train, validation in ((clean, entries["train"], entries["validation"]),
                                      (broken, entries["train"][:3] + [bad["train"]],
                                       entries["validation"] + [bad["validation"]])):
        folder.mkdir()
        (folder / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1))
        (folder / "something-something-v2-train.json").write_text(json.dumps(train, indent=1))
        (folder / "something-something-v2-validation.json").write_text(json.dumps(validation, indent=1))
        (folder / "something-something-v2-test.json").write_text(json.dumps([{"id": "99999"}]))
    prefix = ["DATA.PATH_PREFIX", str(videos)]
    return Layout(
        opts=["DATA.PATH_TO_DATA_DIR", str(clean), *prefix],
        broken_opts=["DATA.PATH_TO_DATA_DIR", str(broken), *prefix, *ALLOW_ONE_FAILED_VIDEO],
        num_train=4, test_paths={"val": [str(videos / f"{e['id']}.webm") for e in entries["validation"]]},
        broken_train=str(videos / "99001.webm"), broken_test=str(videos / "99002.webm"),
    )


# -------------------------------------------------------------------------------------------------------
# AVA
# -------------------------------------------------------------------------------------------------------
AVA_TRAIN_VIDEOS = ["053oq2xB3oU", "0f39OWEqJ24"]
AVA_VAL_VIDEOS = ["-5KQ66BBWC4", "1j20qq1JyX4"]  # real AVA ids start with "-" too
AVA_BROKEN_TRAIN, AVA_BROKEN_VAL = "2DUITARAsWQ", "2PpxiG0WU18"
AVA_KEYFRAMES = (902, 903)  # seconds; the trimmed videos start at second 900
AVA_VIDEO_FRAMES = 100  # 3.3 s at 30 fps: covers the clips around both keyframes
AVA_LABEL_MAP = [("bend/bow (at the waist)", 1), ("stand", 12), ("walk", 14), ("carry/hold (an object)", 17),
                 ("watch (a person)", 80)]
# Per keyframe: (box, action ids) of two people; the detector finds both, plus a low-score false alarm.
AVA_PEOPLE = [((0.10, 0.20, 0.45, 0.95), (12, 80)), ((0.55, 0.15, 0.90, 0.90), (14, 17))]


@dataclass(frozen=True)
class AvaLayout:
    """AVA annotations, trimmed videos, extracted frames and frame lists, as config overrides.

    ``opts``: the clean annotations with clips from the extracted frames (configs/AVA/base.yaml's layout);
    ``broken_opts``: clips from the trimmed videos, with annotations naming one undecodable video in
    training and one in validation (``broken_val_keys`` are its keyframes). ``test_boxes``: decodable
    proposals above the score threshold.
    """

    opts: list[str]
    broken_opts: list[str]
    test_keys: list[str]
    test_boxes: int
    broken_train: str
    broken_val_keys: list[str]
    num_label_map_classes: int = len(AVA_LABEL_MAP)


def _ava_rows(video_ids, proposals: bool) -> list[list]:
    """Ground-truth rows (``...,action_id,person_id``) or detector proposals (``...,,score``) of the people
    of every keyframe."""
    rows = []
    for video_id in video_ids:
        for second in AVA_KEYFRAMES:
            for person, (box, actions) in enumerate(AVA_PEOPLE):
                if proposals:  # a detector's box: close to the person, not the annotated box itself
                    coords = [f"{c + 0.012:.3f}" for c in box]
                    rows.append([video_id, f"{second:04d}", *coords, "", "0.987"])
                else:
                    coords = [f"{c:.3f}" for c in box]
                    rows += [[video_id, f"{second:04d}", *coords, action, person] for action in actions]
            if proposals:  # below AVA.DETECTION_SCORE_THRESH 0.8: not tested
                rows.append([video_id, f"{second:04d}", "0.300", "0.300", "0.400", "0.500", "", "0.412"])
    return rows


def _write_ava_annotations(folder: Path, train_videos, val_videos) -> None:
    """The files of ``ava_v2.2.zip`` and the detector's boxes that configs/AVA/base.yaml names."""
    write_csv(folder / "ava_train_v2.2.csv", None, _ava_rows(train_videos, proposals=False))
    write_csv(folder / "ava_val_v2.2.csv", None, _ava_rows(val_videos, proposals=False))
    write_csv(folder / "ava_train_predicted_boxes.csv", None, _ava_rows(train_videos, proposals=True))
    write_csv(folder / "ava_val_predicted_boxes.csv", None, _ava_rows(val_videos, proposals=True))
    # An excluded keyframe outside the tiny videos, as the real file lists a few per video.
    write_csv(folder / "ava_val_excluded_timestamps_v2.2.csv", None, [[val_videos[0], "1563"]])
    (folder / "ava_action_list_v2.2_for_activitynet_2019.pbtxt").write_text(
        "".join(f'item {{\n  name: "{name}"\n  id: {action_id}\n}}\n' for name, action_id in AVA_LABEL_MAP))


@pytest.fixture(scope="session")
def ava(tmp_path_factory) -> AvaLayout:
    """datasets/ava/README.md's layout: annotations/, videos/<id>.mp4 (trimmed: frame 0 = second 900),
    frames/<id>/<id>_000001.jpg and frame_lists/{train,val}.csv, made with the toolkit's own preparation
    functions (extract_frames, write_frame_list); 2 training and 2 validation videos, 2 keyframes each."""
    root = tmp_path_factory.mktemp("ava")
    videos, frames, lists = root / "videos", root / "frames", root / "frame_lists"
    for seed, video_id in enumerate(AVA_TRAIN_VIDEOS + AVA_VAL_VIDEOS):
        path = write_clip(videos / f"{video_id}.mp4", 40 + seed, num_frames=AVA_VIDEO_FRAMES)
        extract_frames(path, str(frames / video_id), video_id)
    lists.mkdir()
    write_frame_list(str(frames), AVA_TRAIN_VIDEOS, str(lists / "train.csv"))
    write_frame_list(str(frames), AVA_VAL_VIDEOS, str(lists / "val.csv"))
    write_undecodable(videos / f"{AVA_BROKEN_TRAIN}.mp4", 7)
    write_undecodable(videos / f"{AVA_BROKEN_VAL}.mp4", 8)
    _write_ava_annotations(root / "annotations", AVA_TRAIN_VIDEOS, AVA_VAL_VIDEOS)
    _write_ava_annotations(root / "annotations_broken", AVA_TRAIN_VIDEOS + [AVA_BROKEN_TRAIN],
                           AVA_VAL_VIDEOS + [AVA_BROKEN_VAL])
    return AvaLayout(
        opts=["AVA.ANNOTATION_DIR", str(root / "annotations"), "AVA.FRAME_DIR", str(frames),
              "AVA.FRAME_LIST_DIR", str(lists)],
        broken_opts=["AVA.ANNOTATION_DIR", str(root / "annotations_broken"), "AVA.VIDEO_DIR", str(videos),
                     *ALLOW_ONE_FAILED_VIDEO],
        test_keys=[f"{v},{s:04d}" for v in AVA_VAL_VIDEOS for s in AVA_KEYFRAMES],
        test_boxes=len(AVA_VAL_VIDEOS) * len(AVA_KEYFRAMES) * len(AVA_PEOPLE),
        broken_train=AVA_BROKEN_TRAIN,
        broken_val_keys=[f"{AVA_BROKEN_VAL},{s:04d}" for s in AVA_KEYFRAMES],
    )


# -------------------------------------------------------------------------------------------------------
# Jobs
# -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """A config family: a representative shipped config, its tiny overrides and its data layout fixture.

    ``num_classes`` and ``views`` (test views per video) are those of the config with the overrides.
    """

    name: str
    config: str
    opts: tuple[str, ...]
    layout: str
    num_classes: int = 0
    views: int = 0
    test_split: str = "val"

    def __str__(self) -> str:
        return self.name


# The demo config keeps its own tiny model; 2 x 3 test views (predict's windows use 1 x 3).
DEMO = Family("demo", "configs/demo/hiera_tiny.yaml",
              (*QUICK, "TRAIN.BATCH_SIZE", "2", "TEST.NUM_ENSEMBLE_VIEWS", "2", "TEST.NUM_SPATIAL_CROPS", "3"),
              "motion_lists", num_classes=len(MOTION_CLASSES), views=6, test_split="test")


@pytest.fixture(scope="session")
def family_jobs(tmp_path_factory):
    """``family_jobs(family, layout)``: the family's job on the clean lists and its job on the lists with
    undecodable videos, run side by side once per session."""
    finished: dict[str, tuple[Job, Job]] = {}

    def jobs(family: Family, layout) -> tuple[Job, Job]:
        if family.name not in finished:
            clean, broken = (tmp_path_factory.mktemp(f"{family.name}_{kind}") for kind in ("clean", "broken"))
            finished[family.name] = tuple(run_together(
                run_net_command(family.config, clean, *family.opts, *layout.opts),
                run_net_command(family.config, broken, *family.opts, *layout.broken_opts)))
        return finished[family.name]

    return jobs


@pytest.fixture(scope="session")
def demo_job(family_jobs, motion_lists) -> Job:
    """configs/demo/hiera_tiny.yaml trained one epoch on the motion dataset and tested on its TEST.SPLIT
    (test); test_predict.py predicts with its checkpoint."""
    return family_jobs(DEMO, motion_lists)[0]
