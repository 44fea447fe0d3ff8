"""Report discovery and caching, safe for concurrent requests.

Discovery (which reports exist) is refreshed in a background thread so that neither
``is_active()`` nor a request ever waits on a logdir walk after the first one.  Each report is
rebuilt when its files change (signature of sizes and mtimes of its JSON files and event files);
analyses are cached per (report, thresholds) with a small LRU."""
from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Optional, Tuple

from tb_xquant_plugin import producers
from tb_xquant_plugin.api import studies as study_views
from tb_xquant_plugin.api import views
from tb_xquant_plugin.judges.run import Analysis, analyse
from tb_xquant_plugin.model import study as study_model
from tb_xquant_plugin.model.report import STAGE_GRAPHS, Problem, Report, report_id, unreadable_report
from tb_xquant_plugin.model.thresholds import is_threshold_key
from tb_xquant_plugin.producers.base import Producer
from tb_xquant_plugin.readers import events, files
from tb_xquant_plugin.readers.events import EventSource
from tb_xquant_plugin.readers.files import join

logger = logging.getLogger(__name__)


def _signature(report_dir: str, producer: Producer) -> Tuple:
    """Versions of the files a report is built from: the producer's files and its event run's files."""
    sig = []
    for name in producer.signature_files():
        try:
            sig.append((name,) + files.version_key(join(report_dir, name)))
        except Exception:  # noqa: BLE001 - missing file
            sig.append((name, None))
    run = producer.event_run(".")
    xdir = join(report_dir, run) if run and run != "." else None
    if xdir and files.is_dir(xdir):
        for f in sorted(files.list_dir(xdir)):
            try:
                sig.append((f,) + files.version_key(join(xdir, f)))
            except Exception:  # noqa: BLE001
                sig.append((f, None))
    return tuple(sig)


# A report built before TensorBoard's data provider had loaded its event files (no graph, no
# histograms or no stage run although event files are on disk) is rebuilt after this many seconds
# instead of being cached until its files change.
PROVISIONAL_SECONDS = 2.0


def _completeness(report: Report) -> int:
    """How much of the event data a build found: graph, histograms, stage run (0 to 3)."""
    return int(report.has_graph) + int(bool(report.histograms)) + int(report.stage_run is not None)


def _provisional(report: Report, producer: Producer, local: bool, logdir: str) -> bool:
    """Whether a build may lack event data TensorBoard's data provider has not loaded yet.  Never for a source that
    reads the files itself (``local``: it read all there is), nor for a run holding an event file the plugin does
    not read (waiting changes nothing: the build says so in a problem)."""
    # complete: a graph, histograms and, for a producer with stage graphs (MCT's), the stage run; a QDQ ONNX report
    # has no stage run, and waiting for one would leave it "still loading" for good
    if local or _completeness(report) == 2 + int(STAGE_GRAPHS in producer.supplies):
        return False
    run = producer.event_run(".")
    if not run or run == ".":
        return False
    folder = join(report.dir, run)
    return bool(events.event_files(folder)) and not events.refused_event_files(folder, logdir)


_gc_lock = threading.Lock()
_gc_pauses = 0  # builds and analyses under way
_gc_was_enabled = False


@contextlib.contextmanager
def collector_paused():
    """The cyclic garbage collector off while a report is built or analysed (nested and concurrent pauses count;
    it is switched back on when the last ends, unless it was off before the first).

    A build allocates a few records per graph node and histogram and keeps them all: every full collection during
    it walks every live object and frees nothing.  On a 20,000-layer report that was 11 full collections and about
    a fifth of the cold analysis (bench/backend.py).  What the build drops is freed by reference counting as
    usual; cyclic garbage waits for the next collection after the pause."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


LOADING = Problem("TensorBoard is still loading the event files of this report; what they hold appears on reload",
                  "Wait a few seconds and reload (TensorBoard reads new event files every --reload_interval seconds).")


# Cached analyses (one per report and threshold set): at most this many, holding at most this many
# layers in all (the newest is always kept).
MAX_ANALYSES = 128
MAX_CACHED_ANALYSIS_LAYERS = 200_000


class ReportStore:
    def __init__(self, logdir: str, source_factory: Callable[[], EventSource], refresh_seconds: float = 15.0,
                 background: bool = True, revalidate: Optional[bool] = None):
        self.logdir = logdir
        self._source_factory = source_factory
        self._refresh_seconds = refresh_seconds
        self._lock = threading.RLock()
        self._dirs: Optional[Dict[str, Tuple[str, Producer]]] = None  # rel -> (dir, producer)
        self._runs: List[str] = []
        self._discovered_at = 0.0
        self._reports: Dict[str, Tuple[Tuple, Report, float]] = {}  # rid -> (signature, report, expires)
        self._analyses: "collections.OrderedDict[Tuple, Analysis]" = collections.OrderedDict()
        self._fingerprints: Dict[str, Tuple] = {}  # rel -> (runs, monotonic time, fingerprint, unchanged since)
        self._build_locks: Dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._analysis_locks: Dict[Tuple, threading.Lock] = collections.defaultdict(threading.Lock)
        self._discover_lock = threading.Lock()
        self._local_source = False  # the source reads the files itself (set by each build)
        self._canonical: Dict[str, bool] = {}  # run -> named by its real path (``_canonical_runs``)
        self._study_dirs: Optional[Dict[str, str]] = None  # study rel -> folder (found with the reports)
        self._studies: Dict[str, Tuple[Tuple, study_views.StudyFile]] = {}  # rel -> (study.json version, its reading)
        self._thread: Optional[threading.Thread] = None
        # Under TensorBoard (background): a fingerprint older than FINGERPRINT_SECONDS is answered with and asked
        # again off the request (_provider_fingerprint); without, every request asks the provider in time.
        self._revalidate = background if revalidate is None else revalidate
        self._fingerprinting: set = set()  # rels whose fingerprint a thread is asking for
        if background:
            self._thread = threading.Thread(target=self._loop, name="tb-xquant-discovery", daemon=True)
            self._thread.start()

    # -- discovery -------------------------------------------------------------------------
    def _loop(self):
        # Discover, then build what was found.  While nothing is found or a report is still
        # provisional (TensorBoard's data provider may still be loading the logdir), look again after
        # 0.5, 1, 2, ... seconds, up to the refresh interval.
        wait = 0.25
        while True:
            try:
                found = bool(self.discover())
                pending = self.prefetch()
            except Exception:  # noqa: BLE001
                logger.exception("tb-xquant: discovery failed")
                found, pending = False, False
            ready = found and not pending
            wait = self._refresh_seconds if ready else min(wait * 2, self._refresh_seconds)
            time.sleep(wait)

    def prefetch(self) -> bool:
        """Build every discovered report and its default analysis and views ahead of the first
        request, so that opening the tab does not wait for them.  Returns whether some report is
        still provisional (TensorBoard has not loaded all of its event data yet)."""
        pending = False
        for rid in list(self.ids()):
            try:
                a, report = self.analysis(rid, {})
                if a is None:
                    continue
                with collector_paused():
                    for route in views.ANALYSIS_VIEWS:
                        views.cached_json(a, route)
            except Exception:  # noqa: BLE001 - one report that cannot be analysed must not stop the others' prefetch
                logger.exception("tb-xquant: prefetching report %s failed", rid)
                continue
            with self._lock:
                cached = self._reports.get(rid)
            pending = pending or (cached is not None and cached[2] != float("inf"))
        return pending

    def discover(self) -> Dict[str, Tuple[str, Producer]]:
        with self._discover_lock:
            source = self._source_factory()
            runs = self._canonical_runs(source, fresh=True)
            dirs = producers.discover(self.logdir, runs)
            try:
                study_dirs = study_views.discover(self.logdir)
            except Exception:  # noqa: BLE001 - the studies must not stop the reports' discovery
                logger.exception("tb-xquant: study discovery failed")
                study_dirs = {}
            with self._lock:
                self._runs, self._dirs, self._discovered_at = runs, dirs, time.time()
                self._study_dirs = study_dirs
            return dirs

    def _canonical_runs(self, source: EventSource, fresh: bool = False) -> List[str]:
        """The source's runs, without the second names TensorBoard's walk gives a folder through a symbolic link
        (``loop/run`` for ``loop -> .``, ``alias/run`` for ``alias -> run``): each folder once, by its real path.
        The plugin's own walk (LocalEventSource) never follows a link.  Each run is checked once per discovery
        (``fresh``); builds in between reuse the answers."""
        runs = source.runs()
        if isinstance(source, events.LocalEventSource):
            return runs
        with self._lock:
            known = {} if fresh else self._canonical
        checked: Dict[str, bool] = {}
        out = []
        for r in runs:
            ok = known.get(r)
            if ok is None:
                ok = checked[r] = r == "." or files.is_canonical(self.logdir, join(self.logdir, *r.split("/")))
            if ok:
                out.append(r)
        if checked:
            with self._lock:
                self._canonical = checked if fresh else dict(self._canonical, **checked)
        return out

    def has_reports(self) -> bool:
        """Cheap: never walks the logdir itself (the background thread does)."""
        with self._lock:
            return bool(self._dirs)

    def _found(self, refresh: bool = False) -> Dict[str, Tuple[str, Producer]]:
        with self._lock:
            stale = self._dirs is None or refresh
        if stale:
            return self.discover()
        with self._lock:
            return dict(self._dirs or {})

    def report_dirs(self, refresh: bool = False) -> Dict[str, str]:
        """``{report path relative to the logdir: report folder}``."""
        return {rel: d for rel, (d, _p) in self._found(refresh).items()}

    def ids(self, refresh: bool = False) -> Dict[str, Tuple[str, str]]:
        """``{report id: (relative path, folder)}``."""
        return {rid: (rel, d) for rid, (rel, d, _p) in self._entries(refresh).items()}

    def _entries(self, refresh: bool = False) -> Dict[str, Tuple[str, str, Producer]]:
        return {report_id(rel): (rel, d, p) for rel, (d, p) in self._found(refresh).items()}

    # -- studies ---------------------------------------------------------------------------
    def studies(self, refresh: bool = False) -> List[study_views.StudyFile]:
        """Every study.json found (foreign ones included: ``StudyFile.foreign``), by folder; each file is read again
        only when it changed (size, mtime, inode)."""
        with self._lock:
            stale = self._study_dirs is None or refresh
        if stale:
            self.discover()
        with self._lock:
            dirs = dict(self._study_dirs or {})
        out = []
        for rel in sorted(dirs):
            out.append(self._study(rel, dirs[rel]))
        with self._lock:
            for rel in [r for r in self._studies if r not in dirs]:
                del self._studies[rel]
        return out

    def _study(self, rel: str, folder: str) -> study_views.StudyFile:
        try:
            version: Optional[Tuple] = files.version_key(join(folder, study_model.FILENAME))
        except Exception:  # noqa: BLE001 - gone since the walk: read() says so
            version = None
        with self._lock:
            hit = self._studies.get(rel)
        if hit is not None and version is not None and hit[0] == version:
            return hit[1]
        sf = study_views.read(self.logdir, rel, folder)
        if version is not None:
            with self._lock:
                self._studies[rel] = (version, sf)
        return sf

    def study(self, sid: str) -> Optional[study_views.StudyFile]:
        """The study.json with this id (walking the logdir again once when it is not known)."""
        for refresh in (False, True):
            for sf in self.studies(refresh=refresh):
                if sf.id == sid:
                    return sf
        return None

    # A study names report folders written while it runs: when one is not among the reports discovered, the logdir
    # is walked again, at most this often.
    REDISCOVER_SECONDS = 2.0

    def report_dirs_for(self, rels: List[str]) -> Dict[str, str]:
        """``report_dirs()``, discovered again first when some of ``rels`` is missing and the last discovery is older
        than REDISCOVER_SECONDS."""
        dirs = self.report_dirs()
        with self._lock:
            age = time.time() - self._discovered_at
        if any(r not in dirs for r in rels) and age > self.REDISCOVER_SECONDS:
            dirs = self.report_dirs(refresh=True)
        return dirs

    # -- reports ---------------------------------------------------------------------------
    def report(self, rid: str) -> Optional[Report]:
        ids = self._entries()
        if rid not in ids:
            ids = self._entries(refresh=True)
            if rid not in ids:
                return None
        rel, d, producer = ids[rid]
        with self._lock:
            cached = self._reports.get(rid)
        file_sig = _signature(d, producer)
        sig = file_sig + self._provider_fingerprint(rel, cached[1] if cached else None, producer)
        if cached and cached[0] == sig and time.monotonic() < cached[2]:
            return cached[1]
        with self._lock:
            build_lock = self._build_locks[rid]
        with build_lock:
            with self._lock:
                cached = self._reports.get(rid)
            if cached and cached[0] == sig and time.monotonic() < cached[2]:
                return cached[1]
            report = self._build(rid, rel, d, producer)
            provisional = _provisional(report, producer, self._local_source, self.logdir)
            expires = time.monotonic() + PROVISIONAL_SECONDS if provisional else float("inf")
            changed_while_read = _signature(d, producer) != file_sig
            if cached and cached[0] == sig and _completeness(report) < _completeness(cached[1]):
                # TensorBoard's data provider answered with less than before for unchanged files (it is
                # reloading): keep the fuller build rather than flicker to an empty graph.
                report, expires = cached[1], time.monotonic() + PROVISIONAL_SECONDS
            elif expires != float("inf") and LOADING not in report.problems:
                report.problems.append(LOADING)
            if changed_while_read:
                # the files changed while they were read: answer with this build, but never reuse it
                expires = 0.0
            # The fingerprint covers the report's stage run, known only once it is built: store the signature
            # the next call will compute, or the first build is always thrown away and built again.
            sig = file_sig + self._provider_fingerprint(rel, report, producer)
            with self._lock:
                if cached is None or cached[1] is not report:
                    for k in [k for k in self._analyses if k[0] == rid]:
                        del self._analyses[k]
                self._reports[rid] = (sig, report, expires)
            return report

    FINGERPRINT_SECONDS = 1.0  # the data provider reloads every few seconds: ask it at most this often
    # A fingerprint the provider has answered unchanged for this long is settled (TensorBoard has loaded the runs):
    # from then on an expired one is asked again off the request.  While the runs still load (the first seconds
    # after TensorBoard starts, or after new files), every expired check is made in time.
    SETTLE_SECONDS = 20.0

    def _provider_fingerprint(self, rel: str, last: Optional[Report], producer: Producer) -> Tuple:
        # Every run the last build read (its own events, the stage graphs, the stage it compared with), not only
        # the report's own run: a stage TensorBoard had not loaded yet must not leave a half-paired report cached.
        # The names of the runs beside the report count too: the stage logs are chosen by name among them, and a
        # stage run TensorBoard has not listed yet must not leave the report built from another stage.
        own = producer.event_run(rel)
        runs = list(dict.fromkeys(([own] if own else []) + (list(last.source_runs) if last is not None else [])))
        now = time.monotonic()
        with self._lock:
            hit = self._fingerprints.get(rel)
            if hit and hit[0] == runs and now - hit[1] >= self.FINGERPRINT_SECONDS and self._revalidate and \
                    hit[1] - hit[3] >= self.SETTLE_SECONDS:  # confirmed unchanged over that long
                # Asking the provider lists every histogram tag of the runs (50-150 ms at 5,000 layers, on every
                # tab open): for a settled report the last answer serves this request, and a thread asks again; a
                # change it finds rebuilds the report on the next request (the panel polls).
                if rel not in self._fingerprinting:
                    self._fingerprinting.add(rel)
                    threading.Thread(target=self._fingerprint_now, args=(rel, runs), daemon=True,
                                     name="tb-xquant-fingerprint").start()
                return hit[2]
        if hit and hit[0] == runs and now - hit[1] < self.FINGERPRINT_SECONDS:
            return hit[2]
        return self._fingerprint_now(rel, runs)

    def _fingerprint_now(self, rel: str, runs: List[str]) -> Tuple:
        """Ask the data provider (what _provider_fingerprint returns) and remember the answer."""
        now = time.monotonic()
        try:
            source = self._source_factory()
            beside: Tuple[str, ...] = ()
            if not isinstance(source, events.LocalEventSource):  # files read directly: their signature decides
                scopes = {r.rsplit("/", 1)[0] + "/" for r in [rel] + runs if "/" in r}
                beside = tuple(sorted(r for r in source.runs() if any(r.startswith(p) for p in scopes)))
            fp = (("provider", beside) + source.fingerprint(runs),)
        except Exception:  # noqa: BLE001 - no fingerprint: the file signature alone decides
            fp = ()
        with self._lock:
            last = self._fingerprints.get(rel)
            since = last[3] if last and last[0] == runs and last[2] == fp else now  # unchanged since
            self._fingerprints[rel] = (runs, now, fp, since)
            self._fingerprinting.discard(rel)
        return fp

    def _build(self, rid: str, rel: str, report_dir: str, producer: Producer) -> Report:
        try:
            inner = self._source_factory()
            self._local_source = isinstance(inner, events.LocalEventSource)
            try:
                runs = self._canonical_runs(inner)
            except Exception:  # noqa: BLE001 - fall back to the runs of the last discovery
                with self._lock:
                    runs = list(self._runs)
            source = events.RecordingSource(inner)
            with collector_paused():
                report = producer.build(source, self.logdir, rel, report_dir, runs)
            report.source_runs = tuple(source.runs_read)
            return report
        except Exception as e:  # noqa: BLE001 - one unreadable report must not take the others down
            logger.exception("tb-xquant: report %s could not be built", rel)
            return unreadable_report(rid, rel, report_dir, e)

    def analysis(self, rid: str, th_args: Dict[str, str]) -> Tuple[Optional[Analysis], Optional[Report]]:
        """Raises ValueError for bad threshold arguments."""
        report = self.report(rid)
        if report is None:
            return None, None
        th = report.defaults.with_overrides(th_args)
        key = (rid, id(report), th.key())
        with self._lock:
            a = self._analyses.get(key)
            if a is not None:
                self._analyses.move_to_end(key)
                return a, report
            lock = self._analysis_locks[key]
        # One computation per key: the panel asks for report, layers and graph at once, and three threads
        # computing the same analysis under the GIL take three times as long.
        with lock:
            with self._lock:
                a = self._analyses.get(key)
            if a is None:
                with collector_paused():
                    a = analyse(report, th)
        with self._lock:
            self._analysis_locks.pop(key, None)
            self._analyses[key] = a
            # Bounded by count and by size: an analysis of a 20,000-layer report holds 10-20 MB.
            while len(self._analyses) > 1 and (
                    len(self._analyses) > MAX_ANALYSES
                    or sum(len(x.report.layers) for x in self._analyses.values()) > MAX_CACHED_ANALYSIS_LAYERS):
                self._analyses.popitem(last=False)
        return a, report

    def all_reports(self) -> List[Report]:
        out = []
        ids = self.ids()
        for rid in sorted(ids, key=lambda r: ids[r][0]):
            r = self.report(rid)
            if r is not None:
                out.append(r)
        return out


def threshold_args(args) -> Dict[str, str]:
    """The threshold parameters of a query (validated by ``Thresholds.with_overrides``)."""
    return {k: args.get(k) for k in args.keys() if is_threshold_key(k)}


__all__ = ["ReportStore", "threshold_args"]
