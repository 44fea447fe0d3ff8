"""tb-xquant: an XQuant tab for TensorBoard (MCT quantization troubleshooting)."""
from setuptools import find_namespace_packages, setup

setup(
    name="tb-xquant",
    version="0.1.0",
    description="TensorBoard plugin: MCT XQuant per-layer errors, degraded layers, judged causes and countermeasures",
    long_description=open("README.md", encoding="utf-8").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    # find_namespace_packages: static/ and manual/entries/ hold data files, not modules, but setuptools
    # still treats every folder as a package; listing them avoids its "package would be ignored" warning.
    packages=find_namespace_packages(include=["tb_xquant_plugin", "tb_xquant_plugin.*"]),
    package_data={
        "tb_xquant_plugin": ["static/*", "static/**/*", "manual/entries/*.md"],
    },
    include_package_data=True,
    install_requires=[
        "tensorboard>=2.16,<2.22",
        "numpy>=1.24,<3",
        "protobuf>=3.20,<8",
        "werkzeug>=2.2,<4",
        # C CRC-32C for TensorBoard's TensorFlow-free event reader (readers/events.py)
        "google-crc32c>=1.5,<2",
        "markdown>=3.4,<4",
    ],
    extras_require={
        # The demo and the tests quantize real models with MCT; the viewer never imports these.
        "mct": [
            "model-compression-toolkit==2.6.1",
            "torch==2.15.0",
            "torchvision==0.29.2",
            "scikit-learn>=1.3,<2",
        ],
        "test": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "playwright>=1.50,<2",
        ],
    },
    entry_points={
        "tensorboard_plugins": ["xquant = tb_xquant_plugin.plugin:XQuantPlugin"],
        "console_scripts": ["tb-xquant = tb_xquant_plugin.cli:main"],
    },
    classifiers=["Programming Language :: Python :: 3", "Framework :: TensorFlow"],
)
