// Loading the backend's answers and keeping the last ones: the report list, and the current report's summary, layers
// and comparison (with the JSON text of the list and the summary, so that a poll can tell whether anything changed).
// Requests of a report load are numbered; a newer load aborts the older one and makes its answers stale.
import type {CompareResponse, GraphNode, GraphResponse, LayerDetail, LayersResponse, Problem, ReportRef, ReportsResponse,
  ReportSummary, StudiesResponse, StudyRef, StudyResponse, VerdictsResponse} from '../api';
import {ApiError, getJson} from '../api';
import {MAX_ENCODED_LAYER_NAME} from '../constants';
import {verdictLayerNames} from '../derived';
import {type AppState, thresholdQuery} from '../state';

/** The answers of one report load but the graph (the charts and the summary need no graph). A failed `layers` or
 *  `compare` request leaves its error, shown as a problem; `compare` is null when there is nothing to compare with. */
export interface ReportAnswers {
  summary: ReportSummary;
  layers: LayersResponse | Error;
  compare: CompareResponse | Error | null;
}

/** A report load under way: its number, the graph answer (a failed request leaves its error), the drawing of the
 *  graph (started as soon as it arrives) and the other answers (rejected with an AbortError when a newer load
 *  started, or with the `report` request's error), which do not wait for the graph. */
export interface ReportLoad { gen: number; graph: Promise<GraphResponse | Error>; graphDrawn: Promise<void>; answers: Promise<ReportAnswers> }

export class DataStore {
  reports: ReportRef[] = [];
  summary: ReportSummary | null = null;
  layers: LayersResponse | null = null;
  compare: CompareResponse | null = null;
  /** the studies of the logdir (GET studies) and the one the Attempts view shows (GET study) */
  studies: StudyRef[] = [];
  study: StudyResponse | null = null;
  private studiesJson = '';
  private studyAbort: AbortController | null = null;
  private reportsJson = '';
  private summaryJson = '';
  private layerNames = new Set<string>();
  private gen = 0;
  private abort: AbortController | null = null;
  private layerAbort: AbortController | null = null;

  constructor(private state: () => AppState) {}

  /** Query parameters of the thresholds the user changed. */
  params(): Record<string, string> { return thresholdQuery(this.state().t); }

  // ---------------------------------------------------------------- report list
  /** GET reports (`refresh=1`: the backend walks the logdir again first). */
  async loadReports(refresh = false): Promise<ReportsResponse> {
    const r = await getJson<ReportsResponse>('reports', refresh ? {refresh: 1} : {});
    this.reportsJson = JSON.stringify(r);
    this.reports = r.reports ?? [];
    return r;
  }
  reportRef(id: string | null): ReportRef | undefined { return this.reports.find((r) => r.id === id); }
  /** The report to open when the state names none, or one that is gone: the first complete one. */
  defaultReport(): string { return (this.reports.find((x) => x.has_quant_report) ?? this.reports[0]).id; }

  /** Whether GET reports answers something else than the list loaded last (the list itself is not replaced). */
  async reportsChanged(): Promise<boolean> {
    return JSON.stringify(await getJson<ReportsResponse>('reports')) !== this.reportsJson;
  }
  /** Whether GET report for `report` answers something else than the summary loaded last. */
  async summaryChanged(report: string): Promise<boolean> {
    return JSON.stringify(await getJson<ReportSummary>('report', {report, ...this.params()})) !== this.summaryJson;
  }

  // ---------------------------------------------------------------- studies
  /** GET studies; a backend that fails to answer leaves no study (the reports do not depend on it). */
  async loadStudies(refresh = false): Promise<StudyRef[]> {
    try {
      const r = await getJson<StudiesResponse>('studies', refresh ? {refresh: 1} : {});
      this.studiesJson = JSON.stringify(r);
      this.studies = r.studies ?? [];
    } catch {
      this.studiesJson = '';
      this.studies = [];
    }
    return this.studies;
  }
  studyRef(id: string | null): StudyRef | undefined { return this.studies.find((s) => s.id === id); }
  /** Whether GET studies answers something else than the list loaded last. */
  async studiesChanged(): Promise<boolean> {
    try { return JSON.stringify(await getJson<StudiesResponse>('studies')) !== this.studiesJson; } catch { return false; }
  }
  /** GET study (aborting the previous one); kept as `study`. */
  async loadStudy(id: string): Promise<StudyResponse> {
    this.studyAbort?.abort();
    const ac = this.studyAbort = new AbortController();
    const s = await getJson<StudyResponse>('study', {study: id}, ac.signal);
    this.study = s;
    return s;
  }

  // ---------------------------------------------------------------- current report
  /** Start loading the state's report (and the comparison with `cmp`); `onGraph` gets the graph's nodes as soon as
   *  they arrive: drawing needs neither the summary nor the layers. */
  loadReport(onGraph: (nodes: GraphNode[]) => Promise<void>, graphNow = true): ReportLoad {
    const s = this.state();
    this.abort?.abort();
    const ac = this.abort = new AbortController();
    const gen = ++this.gen;
    const q = {report: s.report, ...this.params()};
    // `graphNow` false (the chart view): the graph is asked for once startGraph() is called (the graph view opens)
    let start: () => void = () => {};
    const started = new Promise<void>((resolve) => { start = resolve; });
    this.startGraph = start;
    if (graphNow) start();
    const graph = started.then(() => getJson<GraphResponse>('graph', q, ac.signal)).catch(keepError);
    const graphDrawn = graph.then(async (g) => {
      if (gen === this.gen && !(g instanceof Error) && g.nodes?.length) await onGraph(g.nodes);
    });
    graphDrawn.catch(() => { /* aborted: reported through the answers */ });
    const answers = Promise.all([
      getJson<ReportSummary>('report', q, ac.signal),
      getJson<LayersResponse>('layers', q, ac.signal).catch(keepError),
      s.cmp && s.cmp !== s.report
        ? getJson<CompareResponse>('compare', {a: s.cmp, b: s.report, ...this.params()}, ac.signal).catch(keepError)
        : Promise.resolve(null),
    ]).then(([summary, layers, compare]) => ({summary, layers, compare}));
    return {gen, graph, graphDrawn, answers};
  }

  /** Ask for the graph of the latest report load if it was started without (no-op once asked). */
  startGraph: () => void = () => {};

  /** Whether `gen` is still the latest report load. */
  isCurrent(gen: number): boolean { return gen === this.gen; }

  /** Keep a load's answers; returns the problems to show: the summary's and the failed requests'. */
  accept(a: ReportAnswers): Problem[] {
    this.summary = a.summary;
    this.summaryJson = JSON.stringify(a.summary);
    this.layers = a.layers instanceof Error ? null : a.layers;
    this.layerNames = new Set((this.layers?.layers ?? []).map((l) => l.name));
    this.compare = a.compare instanceof Error ? null : a.compare;
    const problems: Problem[] = [...(a.summary.problems ?? [])];
    if (a.layers instanceof Error) problems.push(errProblem('layers', a.layers));
    if (a.compare instanceof Error) problems.push(errProblem('compare', a.compare));
    return problems;
  }

  /** The graph answer's problems (a failed request, or what the graph answer says). */
  graphProblems(g: GraphResponse | Error): Problem[] {
    return g instanceof Error ? [errProblem('graph', g)] : [...(g.problems ?? [])];
  }

  /** A quant_report layer of the current report. */
  hasLayer(name: string): boolean { return this.layerNames.has(name); }
  /** A name some verdict of the current report points at (the summary's groups name their first few layers; `GET
   *  layers`' verdict_nodes every graph node a verdict names that is not a layer). */
  isVerdictLayer(name: string): boolean {
    return verdictLayerNames(this.summary).has(name) || (this.layers?.verdict_nodes ?? []).some((n) => n.name === name);
  }

  /** A loader of GET verdicts (every measured join) for the report shown now, with the thresholds current when it
   *  runs; it answers null once another report load started. */
  verdictsLoader(): () => Promise<VerdictsResponse | null> {
    const report = this.state().report, gen = this.gen;
    return () => getJson<VerdictsResponse>('verdicts', {report, ...this.params()}).then((v) => (gen === this.gen ? v : null));
  }

  // ---------------------------------------------------------------- selected layer
  /** GET layer for a layer of `report` (aborting the previous one). */
  loadLayer(report: string, layer: string): Promise<LayerDetail> {
    this.layerAbort?.abort();
    const ac = this.layerAbort = new AbortController();
    return getJson<LayerDetail>('layer', {report, ...this.layerQuery(layer), ...this.params()}, ac.signal);
  }

  /** A layer by name, or by its index in GET layers when the name is too long for a URL. */
  private layerQuery(layer: string): Record<string, string | number> {
    if (encodeURIComponent(layer).length <= MAX_ENCODED_LAYER_NAME) return {layer};
    const row = this.layers?.layers.find((l) => l.name === layer);
    return row ? {index: row.index} : {layer};
  }
}

/** `layers`, `graph` and `compare` may fail without failing the load: their error is kept as the answer. An abort
 *  still rejects. */
function keepError(e: unknown): Error {
  if ((e as Error).name === 'AbortError') throw e;
  return e as Error;
}

function errProblem(route: string, e: Error): Problem {
  return {what: `${route}: ${e.message}`, hint: e instanceof ApiError ? e.hint : ''};
}
