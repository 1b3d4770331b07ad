"""rocketctr: co-train a deep booster and a cheap light CTR net; serve only the light net."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="rocketctr",
    version="0.1.0",
    description=(
        "Distillation for CTR models: a deep booster net trains beside a cheap light net "
        "on shared embeddings; only the light net is exported and served."
    ),
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["rocketctr", "rocketctr.*"]) + ["rocketctr.data_schemas"],
    # The schemas live at the top of the repository (users edit them there) and install as
    # package data, so `--schema criteo` works from a wheel as well as from a checkout.
    package_dir={"rocketctr.data_schemas": "data_schemas"},
    package_data={"rocketctr.data_schemas": ["*.yaml"], "rocketctr.config.presets": ["*.yaml"]},
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "tf-keras>=2.16,<2.22",
        "tensorboard",  # TF 2.21 no longer installs it; Keras TensorBoard logging needs it
        "tensorflow-recommenders==0.7.7",
        # PredictionLog/PredictRequest protos for the export's TF Serving warmup file.
        "tensorflow-serving-api>=2.16,<2.22",
        "pandas",
        "pyarrow",
        "absl-py",
        "pyyaml",
        "matplotlib",  # `rocketctr report`'s plots
    ],
    extras_require={
        "test": ["pytest", "pytest-xdist", "ruff==0.17.6"],
        # The docs site (mkdocs.yml): `mkdocs serve`, `mkdocs build --strict`.
        "docs": ["mkdocs>=1.6,<2", "mkdocs-material>=9.5,<10", "mkdocstrings[python]>=0.26,<2"],
    },
    entry_points={"console_scripts": ["rocketctr=rocketctr.cli:run"]},
)
