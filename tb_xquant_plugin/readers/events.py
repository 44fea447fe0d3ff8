"""Where event data comes from: TensorBoard's data provider (inside TensorBoard) or event files
read directly through ``gfile`` (the CLI, tests and benchmarks).

Both sources answer the same three questions about a run: its name, its graph (serialized
``GraphDef`` bytes) and its histograms (``tag -> float array [k, 3]`` of left edge, right edge,
count, exactly as TensorBoard's histogram plugin stores them).
"""
from __future__ import annotations

import logging
import struct
import threading
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.files import join

logger = logging.getLogger(__name__)

GRAPHS_PLUGIN = "graphs"
RUN_GRAPH_TAG = "__run_graph__"
HISTOGRAMS_PLUGIN = "histograms"


class EventSource:
    """Interface of the event readers."""

    def runs(self) -> List[str]:
        raise NotImplementedError

    def graph(self, run: str) -> Optional[bytes]:
        raise NotImplementedError

    def histograms(self, run: str) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def fingerprint(self, runs: List[str]) -> tuple:
        """What changes when the source has new data for these runs (event files read directly: nothing
        beyond the files themselves, which the store stats)."""
        return ()


class RecordingSource(EventSource):
    """Passes every call to ``inner`` and records the runs whose graph or histograms were read, in order: what a
    report was built from, so that the store can tell when TensorBoard's data provider has loaded more of them."""

    def __init__(self, inner: EventSource):
        self.inner = inner
        self.runs_read: List[str] = []

    def _note(self, run: str) -> None:
        if run not in self.runs_read:
            self.runs_read.append(run)

    def runs(self) -> List[str]:
        return self.inner.runs()

    def graph(self, run: str) -> Optional[bytes]:
        self._note(run)
        return self.inner.graph(run)

    def histograms(self, run: str) -> Dict[str, np.ndarray]:
        self._note(run)
        return self.inner.histograms(run)

    def fingerprint(self, runs: List[str]) -> tuple:
        return self.inner.fingerprint(runs)


def _is_event_file(name: str) -> bool:
    return "tfevents" in name


def use_native_crc32c() -> bool:
    """Let TensorBoard's TensorFlow-free record reader check CRC-32C with ``google-crc32c``.

    Without TensorFlow, ``tensorboard.compat.tensorflow_stub`` verifies every record's checksum in
    pure Python (a byte-by-byte table loop: seconds for a large XQuant run).  ``google-crc32c``
    computes the same checksum in C; the reader, its framing and its error handling stay
    TensorBoard's.  Returns whether the native implementation is in use."""
    try:
        import google_crc32c
        from tensorboard.compat.tensorflow_stub import pywrap_tensorflow as stub
    except ImportError:
        return False
    if getattr(stub.crc32c, "_tb_xquant_native", False):
        return True
    if google_crc32c.implementation != "c":
        return False

    def crc32c(data) -> int:
        return google_crc32c.value(bytes(data))

    crc32c._tb_xquant_native = True  # type: ignore[attr-defined]
    stub.crc32c = crc32c
    return True


# MCT's statistics collector logs 2,048 buckets per histogram.  A logged histogram with more is merged on read, so
# that no consumer (z-scores, the z_threshold replay, value ranges, the panel) works on millions of buckets.
MAX_HISTOGRAM_BUCKETS = 16_384


def bounded_buckets(arr: np.ndarray) -> np.ndarray:
    """``[k, 3]`` buckets with at most MAX_HISTOGRAM_BUCKETS rows: neighbours merged in equal groups (the left edge
    of the first, the right edge of the last, the counts summed), so evenly spaced buckets stay evenly spaced."""
    n = len(arr)
    if n <= MAX_HISTOGRAM_BUCKETS:
        return arr
    k = -(-n // MAX_HISTOGRAM_BUCKETS)
    starts = np.arange(0, n, k)
    ends = np.minimum(starts + k, n) - 1
    return np.stack([arr[starts, 0], arr[ends, 1], np.add.reduceat(arr[:, 2], starts)], axis=1)


_DOUBLE = struct.Struct("<d")


def _varint(buf, i):
    shift = result = 0
    while True:
        b = buf[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _histogram_fields(data: bytes):
    """(min, max, bucket_limit, bucket) of a serialized ``HistogramProto`` (its two repeated doubles packed), or
    None for any other encoding."""
    mn = mx = 0.0
    limits = counts = None
    i, n = 0, len(data)
    while i < n:
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 1:  # 64-bit
            if field in (6, 7):  # an unpacked repeated double
                return None
            if field == 1:
                mn = _DOUBLE.unpack_from(data, i)[0]
            elif field == 2:
                mx = _DOUBLE.unpack_from(data, i)[0]
            i += 8
        elif wire == 2:  # length-delimited
            size, i = _varint(data, i)
            if field in (6, 7):
                if size % 8:
                    return None
                arr = np.frombuffer(data, dtype="<f8", count=size // 8, offset=i)
                if field == 6:
                    if limits is not None:
                        return None
                    limits = arr
                else:
                    if counts is not None:
                        return None
                    counts = arr
            i += size
        elif wire == 0:
            _, i = _varint(data, i)
        elif wire == 5:
            i += 4
        else:
            return None
    if i != n:
        return None
    return mn, mx, limits if limits is not None else np.zeros(0), counts if counts is not None else np.zeros(0)


def legacy_histogram_buckets(histo) -> np.ndarray:
    """:func:`legacy_histogram_buckets_slow` with the two repeated fields read from the message's bytes at once (C
    speed for MCT's 2,048 buckets) rather than one Python float at a time; the same arrays, bit for bit."""
    fields = _histogram_fields(histo.SerializeToString())
    if fields is None or len(fields[2]) != len(fields[3]):
        return legacy_histogram_buckets_slow(histo)
    mn, mx, limits, counts = fields
    nonzero = np.flatnonzero(counts > 0)
    if nonzero.size == 0:
        return np.zeros((0, 3))
    start, end = int(nonzero[0]), int(nonzero[-1])
    out = np.empty((end - start + 1, 3), dtype=np.float64)
    out[0, 0] = mn
    out[1:, 0] = limits[start:end]
    out[:-1, 1] = limits[start:end]
    out[-1, 1] = mx
    out[:, 2] = counts[start:end + 1]
    return out.astype(np.float32).astype(np.float64)


def legacy_histogram_buckets_slow(histo) -> np.ndarray:
    """``[k, 3]`` buckets (left edge, right edge, count) of a ``HistogramProto`` (what
    ``torch.utils.tensorboard`` and so MCT write), as TensorBoard's histogram plugin stores them
    (``tensorboard.data_compat``): empty buckets at both ends dropped, the outer edges replaced by
    the data's min and max, float32 precision."""
    counts = np.asarray(histo.bucket, dtype=np.float64)
    nonzero = np.flatnonzero(counts > 0)
    if nonzero.size == 0:
        return np.zeros((0, 3))
    start, end = int(nonzero[0]), int(nonzero[-1])
    inner = np.asarray(histo.bucket_limit, dtype=np.float64)[start:end]
    lefts = np.concatenate(([histo.min], inner))
    rights = np.concatenate((inner, [histo.max]))
    out = np.stack([lefts, rights, counts[start:end + 1]], axis=1)
    return out.astype(np.float32).astype(np.float64)


class LocalEventSource(EventSource):
    """Reads event files under a logdir with TensorBoard's loader (``gfile``: local or remote).

    Runs are named as TensorBoard names them: the directory holding event files, relative to the
    logdir (``.`` for the logdir itself).
    """

    def __init__(self, logdir: str):
        use_native_crc32c()
        self.logdir = logdir
        self._runs: Optional[Dict[str, List[str]]] = None
        self._loaded: Dict[str, tuple] = {}

    def _scan(self) -> Dict[str, List[str]]:
        if self._runs is None:
            runs: Dict[str, List[str]] = {}
            for dirpath, names in files.walk(self.logdir):
                evs = [join(dirpath, f) for f in sorted(names) if _is_event_file(f)]
                evs = [p for p in evs if files.exists(p, self.logdir)]  # regular files inside the logdir
                if evs:
                    runs[files.rel_path(self.logdir, dirpath)] = evs
            self._runs = runs
        return self._runs

    def runs(self) -> List[str]:
        return sorted(self._scan())

    def _events(self, run: str) -> Iterable:
        from tensorboard.backend.event_processing import event_file_loader

        for path in self._scan().get(run, []):
            try:
                # Events as written (no per-value migration): legacy histograms are converted
                # below with numpy, which is what makes large runs fast.
                loader = event_file_loader.LegacyEventFileLoader(path)
                for ev in loader.Load():
                    yield ev
            except Exception as e:  # noqa: BLE001 - a broken file must not stop the others
                logger.warning("tb-xquant: stopped reading %s: %s", path, e)

    def _load(self, run: str):
        """Graph and histograms of a run, from one pass over its event files (cached)."""
        from tensorboard.util import tensor_util

        if run in self._loaded:
            return self._loaded[run]
        graph: Optional[bytes] = None
        hists: Dict[str, np.ndarray] = {}
        for ev in self._events(run):
            if ev.HasField("graph_def"):
                graph = ev.graph_def
            elif ev.HasField("summary"):
                for v in ev.summary.value:
                    if v.HasField("histo"):
                        hists[v.tag] = bounded_buckets(legacy_histogram_buckets(v.histo))
                        continue
                    if v.metadata.plugin_data.plugin_name != HISTOGRAMS_PLUGIN or not v.HasField("tensor"):
                        continue
                    try:
                        arr = np.asarray(tensor_util.make_ndarray(v.tensor), dtype=np.float64)
                    except Exception:  # noqa: BLE001
                        continue
                    hists[v.tag] = bounded_buckets(arr.reshape(-1, 3)) if arr.size % 3 == 0 else np.zeros((0, 3))
        self._loaded[run] = (graph, hists)
        return self._loaded[run]

    def graph(self, run: str) -> Optional[bytes]:
        return self._load(run)[0]

    def histograms(self, run: str) -> Dict[str, np.ndarray]:
        return self._load(run)[1]


class DataProviderSource(EventSource):
    """Reads through TensorBoard's data provider (works with the Rust data server and remote logdirs).

    ``logdir``: where a run's graph is read from its event files when the provider has none for it although the
    run is listed.  TensorBoard's Python loader (``--load_fast=false``) can keep a run's GraphDef in its
    accumulator yet list no ``__run_graph__`` for it (seen with MCT's stage-log runs while the plugin reads them
    during the loader's reloads): without the fallback such a report is paired with no stage graph for good."""

    def __init__(self, provider, ctx, experiment_id: str = "", logdir: Optional[str] = None):
        self.provider = provider
        self.ctx = ctx
        self.eid = experiment_id
        self.logdir = logdir

    def _graph_from_files(self, run: str) -> Optional[bytes]:
        if not self.logdir:
            return None
        try:
            folder = self.logdir if run == "." else join(self.logdir, *run.split("/"))
            for path in reversed(event_files(folder, self.logdir)):
                graph = last_graph_in_file(path, self.logdir)
                if graph:
                    return graph
        except Exception as e:  # noqa: BLE001 - an unreadable folder: no graph, as from the provider
            logger.warning("tb-xquant: no graph read from the event files of run %s: %s", run, e)
        return None

    def runs(self) -> List[str]:
        return sorted(r.run_name for r in self.provider.list_runs(self.ctx, experiment_id=self.eid))

    def graph(self, run: str) -> Optional[bytes]:
        from tensorboard.data import provider as dp

        seqs = self.provider.read_blob_sequences(
            self.ctx,
            experiment_id=self.eid,
            plugin_name=GRAPHS_PLUGIN,
            downsample=1,
            run_tag_filter=dp.RunTagFilter(runs=[run], tags=[RUN_GRAPH_TAG]),
        )
        data = seqs.get(run, {}).get(RUN_GRAPH_TAG)
        blobs = data[-1].values if data else None
        if not blobs:
            return self._graph_from_files(run)
        return self.provider.read_blob(self.ctx, blob_key=blobs[0].blob_key)

    def histograms(self, run: str) -> Dict[str, np.ndarray]:
        from tensorboard.data import provider as dp

        res = self.provider.read_tensors(
            self.ctx,
            experiment_id=self.eid,
            plugin_name=HISTOGRAMS_PLUGIN,
            downsample=1,
            run_tag_filter=dp.RunTagFilter(runs=[run]),
        )
        out: Dict[str, np.ndarray] = {}
        for tag, data in res.get(run, {}).items():
            if not data:
                continue
            arr = np.asarray(data[-1].numpy, dtype=np.float64)
            out[tag] = bounded_buckets(arr.reshape(-1, 3)) if arr.size % 3 == 0 else np.zeros((0, 3))
        return out

    def fingerprint(self, runs: List[str]) -> tuple:
        """Latest step / wall time of the graph and histograms of these runs as TensorBoard has loaded them
        (metadata only): a report built before the data provider reloaded a changed run is rebuilt."""
        from tensorboard.data import provider as dp

        flt = dp.RunTagFilter(runs=list(runs))
        out = []
        for kind, plugin in (("g", GRAPHS_PLUGIN), ("h", HISTOGRAMS_PLUGIN)):
            lister = self.provider.list_blob_sequences if kind == "g" else self.provider.list_tensors
            res = lister(self.ctx, experiment_id=self.eid, plugin_name=plugin, run_tag_filter=flt)
            for run in sorted(res):
                for tag, ts in sorted(res[run].items()):
                    out.append((kind, run, tag, ts.max_step, ts.max_wall_time))
        return tuple(out)


def last_graph_in_file(path: str, root: Optional[str] = None) -> Optional[bytes]:
    """The last ``graph_def`` of one event file (what TensorBoard's EventAccumulator keeps), or None."""
    from tensorboard.backend.event_processing import event_file_loader

    if not files.exists(path, root):
        return None
    graph = None
    for ev in event_file_loader.LegacyEventFileLoader(path).Load():
        if ev.HasField("graph_def"):
            graph = ev.graph_def
    return graph


def refused_event_files(folder: str, root: Optional[str]) -> List[Tuple[str, str]]:
    """``(name, why)`` for every entry of a run folder that is named like an event file but is not a regular file
    inside ``root`` (a FIFO, a device, a link out of the logdir).  The plugin never opens one, but TensorBoard's
    own loader does, so the data provider's answers for that run may hold what it read."""
    if root is None or files.is_remote(folder):
        return []
    out: List[Tuple[str, str]] = []
    for name in sorted(files.list_dir(folder, root)):
        if not _is_event_file(name):
            continue
        try:
            files.regular_file(join(folder, name), root, name)
        except files.ReadError as e:
            out.append((name, e.what))
    return out


def drop_refused_runs(logdir: str, runs: List[str], under: str = "") -> Tuple[List[str], List[Tuple[str, str]]]:
    """``runs`` without the runs below ``under`` (a folder relative to the logdir; ``""``: all of them) whose folder
    holds an event file the plugin does not read (:func:`refused_event_files`), whichever source serves the
    events; and ``(run, why)`` per run dropped."""
    kept: List[str] = []
    dropped: List[Tuple[str, str]] = []
    prefix = under.strip("/") + "/" if under.strip("/") not in ("", ".") else ""
    for run in runs:
        if prefix and not run.startswith(prefix):
            kept.append(run)
            continue
        folder = logdir if run == "." else join(logdir, *run.split("/"))
        refused = refused_event_files(folder, logdir)
        if refused:
            dropped.append((run, refused[0][1]))
        else:
            kept.append(run)
    return kept, dropped


def event_files(folder: str, root: Optional[str] = None) -> List[str]:
    """The event files of a run folder, in name order."""
    return [join(folder, f) for f in sorted(files.list_dir(folder, root))
            if _is_event_file(f) and files.exists(join(folder, f), root)]


# event file path -> (file identity, bytes already scanned, marker found)
_marker_scans: Dict[str, tuple] = {}
_marker_lock = threading.Lock()
_MAX_MARKER_SCANS = 4096


def file_contains(path: str, markers: Sequence[bytes]) -> bool:
    """Whether an (append-only) event file holds one of ``markers``: a byte search, not a decode.

    Remembered per file; a file that grew is searched only in its new bytes, so the discovery loop
    re-checks growing files cheaply."""
    identity, size = files.file_identity(path)
    with _marker_lock:
        last = _marker_scans.get(path)
    if last is not None and last[0] == identity and last[1] <= size:
        if last[2] or last[1] == size:
            return last[2]
        start = last[1]
    else:
        start = 0
    keep = max(len(m) for m in markers) - 1
    pos = max(0, start - keep)
    tail, found = b"", False
    for chunk in files.chunks(path, pos, max(0, size - pos)):
        window = tail + chunk
        if any(m in window for m in markers):
            found = True
            break
        tail = window[-keep:]
        pos += len(chunk)
    with _marker_lock:
        if len(_marker_scans) >= _MAX_MARKER_SCANS:
            _marker_scans.clear()
        _marker_scans[path] = (identity, size if found else min(pos, size), found)
    return found


def run_contains(run_dir: str, markers: Sequence[bytes], root: Optional[str] = None) -> bool:
    """Whether one of the event files of a run folder holds one of ``markers``."""
    for path in event_files(run_dir, root):
        try:
            if file_contains(path, markers):
                return True
        except Exception:  # noqa: BLE001 - unreadable or vanished file
            continue
    return False
