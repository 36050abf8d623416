"""Packaging for hiera-video: the Hiera video-understanding toolkit."""
from setuptools import find_packages, setup

setup(
    name="hiera-video",
    version="0.1.0",
    description="Video understanding with the hierarchical Hiera transformer: models, data, training, AVA.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["hiera_video", "hiera_video.*"]),
    install_requires=[
        "torch",
        "torchvision",
        "av",
        "einops",
        "fvcore",
        "iopath",
        "numpy",
        "pyyaml",
        "tqdm",
        "safetensors",
        "fsspec",  # remote lists, videos, shards and checkpoints (s3fs / gcsfs add s3:// and gs://)
        "aiohttp",  # fsspec's http(s):// backend
    ],
    extras_require={
        "decord": ["decord"],
        "tensorboard": ["tensorboard"],
        "plot": ["matplotlib"],
        "profile": ["py-spy"],
        "export": ["onnx", "onnxruntime"],
        "dev": ["pytest", "pytest-timeout", "hypothesis", "hiera-transformer==0.1.4", "decord", "matplotlib",
                "onnx", "onnxruntime", "webdataset",
                "transformers",  # the HF-layout tests compare with transformers' own Hiera
                "torchcodec"],  # loads only beside FFmpeg's shared libraries (.ci/run installs them)
    },
)
