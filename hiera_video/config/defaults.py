"""Default configuration: every key the toolkit reads, with what it means.

Key names follow PySlowFast wherever the concept exists there, so its users feel at home. A YAML file
overrides these with ``_BASE_`` inheritance, and the command line overrides the YAML with ``KEY VALUE``.
What each key may hold is declared in :mod:`hiera_video.config.ranges` (a new key needs a line there too).
"""
from fvcore.common.config import CfgNode

_C = CfgNode()

# ---------------------------------------------------------------------------------------------------------
# Job
# ---------------------------------------------------------------------------------------------------------
# What runs: "classification" (fine-tune / test a classifier), "mae" (MAE pretraining), "ava" (detection).
_C.TASK = "classification"
# Number of GPUs per process group; 0 runs on CPU. Under torchrun the world size comes from torchrun.
_C.NUM_GPUS = 0
# Where checkpoints, logs, metrics and predictions go.
_C.OUTPUT_DIR = "./output"
# Seed for Python, NumPy and torch random generators.
_C.RNG_SEED = 0
# Iterations between two log records (progress bar postfix and JSON-lines stats).
_C.LOG_PERIOD = 10
# Distributed backend: "" picks nccl on GPU and gloo on CPU.
_C.DIST_BACKEND = ""

# ---------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------
_C.TRAIN = CfgNode()
# Run training.
_C.TRAIN.ENABLE = True
# Dataset reader for training: "kinetics", "ssv2", "ava", "imagenet" (train/<class>/*.JPEG folders under
# DATA.PATH_TO_DATA_DIR, for the image models hiera_*_224).
_C.TRAIN.DATASET = "kinetics"
# Clips per optimizer step over all processes (divided among processes).
_C.TRAIN.BATCH_SIZE = 64
# Evaluate on the validation list every this many epochs (0 disables).
_C.TRAIN.EVAL_PERIOD = 10
# Save a checkpoint every this many epochs (and always at the end).
_C.TRAIN.CHECKPOINT_PERIOD = 10
# Resume from the latest checkpoint in OUTPUT_DIR when one exists.
_C.TRAIN.AUTO_RESUME = True
# Checkpoint to initialize from (MAE, official Hiera, or toolkit checkpoint); "" trains from scratch.
_C.TRAIN.CHECKPOINT_FILE_PATH = ""
# Mixed precision: "", "bf16", "fp16" or "auto" ("fp16" uses a gradient scaler; CPU supports "bf16" only;
# "auto": bf16 on GPUs, or fp16 where bf16 is missing; bf16 on CPUs with AMX / AVX512-BF16; else float32).
_C.TRAIN.MIXED_PRECISION = ""
# Gradient accumulation steps per optimizer step.
_C.TRAIN.ACCUM_STEPS = 1
# Fraction of training videos allowed to fail decoding before the job stops with a report.
_C.TRAIN.MAX_FAILED_FRACTION = 0.05

# ---------------------------------------------------------------------------------------------------------
# Testing
# ---------------------------------------------------------------------------------------------------------
_C.TEST = CfgNode()
# Run multi-view testing.
_C.TEST.ENABLE = True
# Dataset reader for testing (the same names).
_C.TEST.DATASET = "kinetics"
# Clips per forward pass over all processes (views of several videos are batched together).
_C.TEST.BATCH_SIZE = 8
# Checkpoint to test; "" uses the last checkpoint in OUTPUT_DIR.
_C.TEST.CHECKPOINT_FILE_PATH = ""
# Temporal clips per video.
_C.TEST.NUM_ENSEMBLE_VIEWS = 5
# Spatial crops per clip (1: centre; 3: both ends and centre along the long side).
_C.TEST.NUM_SPATIAL_CROPS = 3
# List file split used for testing: "val" or "test".
_C.TEST.SPLIT = "val"
# Report metrics of an untrained model when no checkpoint is found (otherwise testing refuses).
_C.TEST.ALLOW_RANDOM_INIT = False
# torch.compile the classifier for testing (inductor, frozen weights): about 30 s of compiling per batch
# shape for 1.1x (fp32) to 1.3x (bf16) faster passes on a CPU; pays on a dataset (TASK classification).
_C.TEST.COMPILE = False

# ---------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------
_C.MODEL = CfgNode()
# Named architecture from hiera_video.models.list_models(), e.g. "hiera_large_16x224".
_C.MODEL.MODEL_NAME = "hiera_base_16x224"
# Number of output classes.
_C.MODEL.NUM_CLASSES = 400
# Dropout before the classification head.
_C.MODEL.DROPOUT_RATE = 0.0
# Stochastic depth rate (linearly increasing over blocks).
_C.MODEL.DROP_PATH_RATE = 0.0
# Activation checkpointing per block (saves memory, costs recompute).
_C.MODEL.ACT_CHECKPOINT = False
# Loss: "soft_cross_entropy" (mixup / smoothing aware), "cross_entropy", "bce" (AVA).
_C.MODEL.LOSS_FUNC = "soft_cross_entropy"

# Architecture overrides of the named model; empty / zero means "keep the named model's value".
_C.HIERA = CfgNode()
_C.HIERA.EMBED_DIM = 0
_C.HIERA.NUM_HEADS = 0
_C.HIERA.STAGES = []
_C.HIERA.Q_POOL = -1
_C.HIERA.Q_STRIDE = []
_C.HIERA.MASK_UNIT_SIZE = []
_C.HIERA.MASK_UNIT_ATTN = []
_C.HIERA.PATCH_KERNEL = []
_C.HIERA.PATCH_STRIDE = []
_C.HIERA.PATCH_PADDING = []
_C.HIERA.MLP_RATIO = 0.0

# ---------------------------------------------------------------------------------------------------------
# MAE pretraining
# ---------------------------------------------------------------------------------------------------------
_C.MAE = CfgNode()
# Fraction of mask units hidden from the encoder.
_C.MAE.MASK_RATIO = 0.9
# Width of the MAE decoder's transformer blocks (official video MAE: 512).
_C.MAE.DECODER_EMBED_DIM = 512
# Number of MAE decoder blocks (paper ablation: 8 is best).
_C.MAE.DECODER_DEPTH = 8
# Attention heads of the MAE decoder blocks.
_C.MAE.DECODER_NUM_HEADS = 16
# Normalize each target patch by its mean and variance before the reconstruction loss.
_C.MAE.NORM_PIX_LOSS = True
# What the decoder predicts for masked units: "pixel" (normalized pixels) or "hog" (MaskFeat HOG of each
# frame and channel, 9 bins, 8x8-pixel cells; paper Table 3c: 86.1 on video vs 85.5 for pixels).
# NORM_PIX_LOSS applies to pixel targets only (HOG cells are L2-normalized already).
_C.MAE.TARGET = "pixel"
# Fuse the encoder's stages into the decoder's input (paper Table 3a: 85.5 with, 83.8 without); False feeds
# the decoder the last stage only.
_C.MAE.MULTI_SCALE_FUSION = True

# ---------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------
_C.DATA = CfgNode()
# Folder holding the list files ({train,val,test}.csv for Kinetics; JSON files for SSv2).
_C.DATA.PATH_TO_DATA_DIR = ""
# Prefix joined to every video path of a list file.
_C.DATA.PATH_PREFIX = ""
# Separator between path and label in list files.
_C.DATA.PATH_LABEL_SEPARATOR = " "
# Frames per clip.
_C.DATA.NUM_FRAMES = 16
# Stride between sampled frames, in frames at TARGET_FPS.
_C.DATA.SAMPLING_RATE = 4
# Frame rate the sampling rate refers to (frame lists are read at this rate).
_C.DATA.TARGET_FPS = 30
# Test clips at i * floor(delta / (N - 1)) instead of delta * i / N.
_C.DATA.USE_OFFSET_SAMPLING = True
# Per-channel normalization (Hiera video: 0.45 / 0.225).
_C.DATA.MEAN = [0.45, 0.45, 0.45]
_C.DATA.STD = [0.225, 0.225, 0.225]
# Training short-side scale range, then random crop of TRAIN_CROP_SIZE.
_C.DATA.TRAIN_JITTER_SCALES = [256, 320]
# Use random resized crop (area / aspect jitter) instead of short-side scale + crop.
_C.DATA.TRAIN_JITTER_SCALES_RELATIVE = [0.08, 1.0]
_C.DATA.TRAIN_JITTER_ASPECT_RELATIVE = [0.75, 1.3333]
_C.DATA.RANDOM_RESIZED_CROP = True
_C.DATA.TRAIN_CROP_SIZE = 224
# Test short side and crop size.
_C.DATA.TEST_CROP_SIZE = 224
# Random horizontal flip in training (off for SSv2).
_C.DATA.RANDOM_FLIP = True
# Decoder: "pyav", "decord" or "torchcodec".
_C.DATA.DECODING_BACKEND = "pyav"
# Seconds before a single video's decode is abandoned and counted as failed (0: never).
_C.DATA.DECODE_TIMEOUT = 60.0
# Training: other videos tried in place of one that fails to decode before the item fails.
_C.DATA.NUM_RETRIES = 10
# Official Kinetics CSVs: file name of a row (fields label, youtube_id, time_start, time_end, split).
_C.DATA.VIDEO_NAME_FORMAT = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
# SSv2 frame-list layout: frames are BGR JPEGs to convert.
_C.DATA.REVERSE_INPUT_CHANNEL = False
# Where videos come from: "files" (the list files' videos) or "shards" (tools/make_shards.py's tar shards
# and {split}.json manifests in PATH_TO_DATA_DIR, a folder or an fsspec URL).
_C.DATA.FORMAT = "files"
# Remote reads (fsspec URLs: http(s)://, s3://, gs://): seconds per request, and tries after a failure.
_C.DATA.REMOTE_TIMEOUT = 60.0
_C.DATA.REMOTE_RETRIES = 3

# ---------------------------------------------------------------------------------------------------------
# Augmentation
# ---------------------------------------------------------------------------------------------------------
_C.AUG = CfgNode()
_C.AUG.ENABLE = False
# Augmented clips drawn from one decode (repeated augmentation).
_C.AUG.NUM_SAMPLE = 1
# RandAugment policy string, timm style.
_C.AUG.AA_TYPE = "rand-m7-n4-mstd0.5-inc1"
# Random erasing probability, mode and count.
_C.AUG.RE_PROB = 0.25
_C.AUG.RE_MODE = "pixel"
_C.AUG.RE_COUNT = 1

_C.MIXUP = CfgNode()
_C.MIXUP.ENABLE = False
_C.MIXUP.ALPHA = 0.8
_C.MIXUP.CUTMIX_ALPHA = 1.0
_C.MIXUP.PROB = 1.0
_C.MIXUP.SWITCH_PROB = 0.5
_C.MIXUP.LABEL_SMOOTH_VALUE = 0.1

# ---------------------------------------------------------------------------------------------------------
# Optimization
# ---------------------------------------------------------------------------------------------------------
_C.SOLVER = CfgNode()
# Learning rate for a batch of 256 clips; the real lr is BASE_LR * TRAIN.BATCH_SIZE / 256 when
# BASE_LR_SCALE_BATCH is True (MAE-ST "blr"; TRAIN.BATCH_SIZE counts clips over all processes).
_C.SOLVER.BASE_LR = 1.6e-3
_C.SOLVER.BASE_LR_SCALE_BATCH = True
_C.SOLVER.LR_POLICY = "cosine"
_C.SOLVER.COSINE_END_LR = 1e-6
_C.SOLVER.WARMUP_EPOCHS = 5.0
_C.SOLVER.WARMUP_START_LR = 1e-6
_C.SOLVER.MAX_EPOCH = 100
_C.SOLVER.OPTIMIZING_METHOD = "adamw"
_C.SOLVER.MOMENTUM = 0.9
_C.SOLVER.BETAS = [0.9, 0.999]
_C.SOLVER.WEIGHT_DECAY = 0.05
# Layer-wise lr decay (1.0 disables).
_C.SOLVER.LAYER_DECAY = 1.0
# No weight decay on norms, biases and position embeddings.
_C.SOLVER.ZERO_WD_1D_PARAM = True
# Gradient norm clipping (0 disables).
_C.SOLVER.CLIP_GRAD_L2NORM = 0.0

# ---------------------------------------------------------------------------------------------------------
# Data loader
# ---------------------------------------------------------------------------------------------------------
_C.DATA_LOADER = CfgNode()
_C.DATA_LOADER.NUM_WORKERS = 4
_C.DATA_LOADER.PIN_MEMORY = True

# ---------------------------------------------------------------------------------------------------------
# AVA action detection
# ---------------------------------------------------------------------------------------------------------
_C.AVA = CfgNode()
_C.AVA.FRAME_DIR = ""
_C.AVA.FRAME_LIST_DIR = ""
_C.AVA.ANNOTATION_DIR = ""
_C.AVA.TRAIN_LISTS = ["train.csv"]
_C.AVA.TEST_LISTS = ["val.csv"]
_C.AVA.TRAIN_GT_BOX_LISTS = ["ava_train_v2.2.csv"]
_C.AVA.TRAIN_PREDICT_BOX_LISTS = []
_C.AVA.TEST_PREDICT_BOX_LISTS = ["ava_val_predicted_boxes.csv"]
_C.AVA.DETECTION_SCORE_THRESH = 0.8
_C.AVA.LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
_C.AVA.EXCLUSION_FILE = "ava_val_excluded_timestamps_v2.2.csv"
_C.AVA.GROUNDTRUTH_FILE = "ava_val_v2.2.csv"
_C.AVA.TRAIN_USE_COLOR_AUGMENTATION = False
_C.AVA.BGR = False
# Flip test clips (and their boxes) horizontally.
_C.AVA.TEST_FORCE_FLIP = False
# Read clips from raw videos ("" uses extracted frames under FRAME_DIR).
_C.AVA.VIDEO_DIR = ""
# Training ground-truth box jitter: each coordinate moves by up to this fraction of the box size (0 = off).
_C.AVA.TRAIN_BOX_JITTER = 0.0


def get_cfg() -> CfgNode:
    """Return a fresh copy of the default configuration."""
    return _C.clone()
