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
        # 2.15: the version tensorflow 2.15.1 pins, i.e. what MCT-for-Keras users have (docs/keras.md)
        "tensorboard>=2.15,<2.22",
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
        # MCT for Keras, in its own venv (.venv-keras, scripts/setup_keras.sh; docs/keras.md): MCT 2.6.1 switches
        # its Keras path off for TensorFlow >= 2.16, and tensorflow 2.15.1 pins tensorboard < 2.16, so it cannot
        # share the viewer's venv (tensorboard 2.21) -- and with TensorFlow installed, tensorboard.compat would
        # read every file through it.  The viewer never imports TensorFlow.
        "keras": [
            "model-compression-toolkit==2.6.1",
            "tensorflow==2.15.1",
            "scikit-learn>=1.3,<2",
        ],
        # QDQ ONNX models (tb_xquant_plugin.onnx_run, docs/onnx.md): onnxruntime runs the float and the QDQ model
        # in the user's process, AMD Quark quantizes (its pins: onnx <= 1.22, onnxruntime <= 1.28).  esp-ppq 1.3.12
        # is left out: it pins onnx < 1.20, which Quark's onnx >= 1.21 excludes (install it in a venv of its own).
        # The viewer never imports any of them.
        "onnx": [
            "onnx==1.22.0",
            "onnxruntime==1.28.0",
            "amd-quark==0.13",
        ],
        # s3:// logdirs: TensorBoard's file-system layer speaks S3 through boto3 (docs/cli.md).
        "s3": [
            "boto3>=1.28,<2",
        ],
        "test": [
            "pytest>=8,<10",
            "hypothesis>=6.100,<7",
            "playwright>=1.50,<2",
            # tests/test_model_explorer_export.py opens the export in Model Explorer itself
            "ai-edge-model-explorer==0.1.34",
            # tests/test_s3_logdir.py: boto3 for TensorBoard's S3 file system, moto's S3 server on 127.0.0.1
            "boto3==1.44.5",
            "moto[server]==5.2.5",
        ],
    },
    entry_points={
        "tensorboard_plugins": ["xquant = tb_xquant_plugin.plugin:XQuantPlugin"],
        "console_scripts": ["tb-xquant = tb_xquant_plugin.cli:main"],
    },
    classifiers=["Programming Language :: Python :: 3", "Framework :: TensorFlow"],
)
