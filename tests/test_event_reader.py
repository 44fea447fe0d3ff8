"""The direct event reader (CLI, tests, benchmarks) against TensorBoard's own conversions."""
from __future__ import annotations

import glob

import numpy as np
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto.summary_pb2 import HistogramProto
from tensorboard.util import tensor_util

from tb_xquant_plugin.readers.events import LocalEventSource, legacy_histogram_buckets, use_native_crc32c


def tensorboard_histograms(path):
    """tag -> buckets exactly as TensorBoard's loader migrates them for its histogram plugin."""
    out = {}
    for ev in event_file_loader.EventFileLoader(path).Load():
        for v in ev.summary.value:
            if v.metadata.plugin_data.plugin_name == "histograms":
                out[v.tag] = np.asarray(tensor_util.make_ndarray(v.tensor), dtype=np.float64).reshape(-1, 3)
    return out


def test_histograms_equal_tensorboards_migration(demo_logdir):
    files = glob.glob(str(demo_logdir / "*" / "xquant_report" / "xquant" / "*tfevents*"))
    assert files
    source = LocalEventSource(str(demo_logdir))
    compared = 0
    for path in files:
        run = path.split(str(demo_logdir) + "/", 1)[1].rsplit("/", 1)[0]
        ours = source.histograms(run)
        ref = tensorboard_histograms(path)
        assert set(ours) == set(ref) and ref
        for tag, buckets in ref.items():
            assert np.array_equal(ours[tag], buckets), tag
            compared += 1
    assert compared >= len(files)


def test_legacy_histogram_edge_cases():
    empty = HistogramProto(min=0, max=0, bucket_limit=[1.0, 2.0], bucket=[0, 0])
    assert legacy_histogram_buckets(empty).shape == (0, 3)
    one = HistogramProto(min=-3.0, max=5.0, bucket_limit=[-1.0, 0.0, 1.0, 1.7976931348623157e308],
                         bucket=[0, 4, 0, 0])
    np.testing.assert_array_equal(legacy_histogram_buckets(one), [[-3.0, 5.0, 4.0]])
    inner = HistogramProto(min=-2.0, max=3.0, bucket_limit=[-1.0, 0.0, 1.0, 9.0], bucket=[1, 0, 2, 5])
    np.testing.assert_array_equal(legacy_histogram_buckets(inner),
                                  [[-2.0, -1.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 2.0], [1.0, 3.0, 5.0]])


def test_native_crc_reads_the_same_events(demo_logdir):
    """With google-crc32c the stub reader's checksums are computed in C; records are unchanged and a
    damaged record is still refused (see test_bad_input.py for truncated and corrupted files)."""
    assert use_native_crc32c()
    from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub

    data = b"tb-xquant" * 1000
    assert stub.crc32c(data) == stub.crc_finalize(stub.crc_update(stub.CRC_INIT, data))
    path = glob.glob(str(demo_logdir / "outlier" / "xquant_report" / "xquant" / "*tfevents*"))[0]
    assert tensorboard_histograms(path)
