// Every tuning number, limit, timeout and fixed colour of the panel, in one place. Theme-dependent colours live in
// theme.ts (Palette); this file has no imports and no side effects, so the layout worker bundle can use it too.

// ------------------------------------------------------------------ timing (ms)
/** Re-check `reports` and the current `report` this often (also when the tab becomes visible again). */
export const POLL_MS = 30_000;
/** TensorBoard's reload refetches several routes in the parent page: one poll per burst. */
export const PARENT_RELOAD_DEBOUNCE_MS = 500;
/** Threshold edits are re-requested once the typing pauses this long. */
export const THRESHOLD_DEBOUNCE_MS = 350;
/** Right after start-up TensorBoard may not have read the graph a report lists yet: retry this often … */
export const GRAPH_RETRY_MS = 2000;
/** … at most this many times in a row. */
export const GRAPH_RETRIES = 10;
/** How long "Link copied" / "Copied" stays on a copy button. */
export const COPY_FEEDBACK_MS = 1500;

// ------------------------------------------------------------------ limits
/** Layer names longer than this (URL-encoded) are requested by their index in `GET layers` instead. */
export const MAX_ENCODED_LAYER_NAME = 4000;
/** Rows of the summary's degraded-layer list made before "Show all". */
export const DEGRADED_LIST_MAX = 200;
/** The degraded-layer list groups by the shallowest scope depth that gives at least this many groups. */
export const SCOPE_GROUPS_MIN = 3;
/** Rows of the comparison's per-layer delta table. */
export const DELTA_TABLE_MAX = 100;
/** Layer links on one line of the summary's "Causes found". */
export const VERDICT_LINE_LAYERS_MAX = 6;
/** Buttons under the graph's search box. */
export const SEARCH_HITS_MAX = 30;

// ------------------------------------------------------------------ defaults and judgements made by the panel
/** Detection z-score used for the histogram lines while no summary is loaded. */
export const DEFAULT_ZSCORE = 5;
/** An accuracy drop (float → quantized) above this many percentage points colours the stat red. */
export const ACCURACY_DROP_BAD_PTS = 0.5;
/** The datasets of a layer's metrics, in display order. */
export const DATASETS = ['repr', 'val'] as const;
/** The judges that put a mark on graph nodes, in legend order. */
export const NODE_JUDGES = ['outlier_removal', 'shift_negative_activation', 'unbalanced_concatenation',
  'mixed_precision_with_model_output_loss_objective'] as const;

// ------------------------------------------------------------------ graph structure and layout
/** No group (and so no dagre call) has more direct children: a larger level is split into "part" groups of about
 *  √n consecutive children each (graph/model.ts). */
export const CHUNK_ABOVE = 60;
/** The top level is split above OPEN_MAX_BOXES children already, into at most this many parts (the first view of
 *  a flat model). */
export const ROOT_PARTS = 16;
/** A graph opens on the scope level that shows about this many boxes (scopes expanded level by level while the
 *  count stays at most OPEN_MAX_BOXES; below OPEN_MIN_BOXES smaller scopes are opened one by one), and scopes
 *  holding degraded layers are preferred when only some of a level fit. */
export const OPEN_MIN_BOXES = 10;
export const OPEN_MAX_BOXES = 40;
export const NODE_H = 34;
export const GROUP_H = 40;
/** Padding around an expanded group's children, and the height of its title strip. */
export const PAD = 14;
export const HEADER = 26;
/** dagre spacing between boxes of one level. */
export const DAGRE_SPACING = {nodesep: 20, ranksep: 26, edgesep: 8} as const;
/** A box whose inputs include at least this many skip edges (inputs that also reach it through another input, e.g.
 *  a DenseNet concatenation) gets them bundled on a bus line instead of routed one by one. */
export const BUNDLE_MIN_SKIPS = 2;
/** Distance of the bus line from the right side of its column. */
export const BUS_OFFSET = 12;
/** A level taller than the view is folded into columns of consecutive ranks, this far apart (when it has at least
 *  FOLD_MIN_RANKS ranks). */
export const COL_GAP = 44;
export const FOLD_MIN_RANKS = 4;

// ------------------------------------------------------------------ graph view (zoom and level of detail)
export const ZOOM_MIN = 0.01;
export const ZOOM_MAX = 4;
/** Zoom factor of the +/− buttons and keys. */
export const ZOOM_STEP_IN = 1.25;
export const ZOOM_STEP_OUT = 0.8;
/** Wheel zoom: factor exp(−deltaY × this), per line (deltaMode 1) or per pixel. */
export const WHEEL_ZOOM_PER_LINE = 0.05;
export const WHEEL_ZOOM_PER_PIXEL = 0.0015;
export const FIT_ZOOM_MIN = 0.02;
export const FIT_ZOOM_MAX = 2;
/** "Expand all" / "Collapse all" fit the whole graph, but never zoomed out further than this (a big graph then
 *  starts at its top left). */
export const INITIAL_ZOOM_MIN = 0.6;
/** Node and group labels are drawn at this size (canvas px at zoom 1) … */
export const LABEL_PX = 12;
/** … and the first view keeps them at least this large on screen: it zooms to at least LEGIBLE_PX / LABEL_PX,
 *  folds levels to the view's height at that zoom and collapses scopes until the degraded layers fit. */
export const LEGIBLE_PX = 9.6;
/** The first view does not zoom in further than this (a single degraded layer is not shown huge). */
export const INITIAL_ZOOM_MAX = 1.1;
/** Margin kept around what a view fits (canvas px). */
export const FIT_MARGIN = 24;
/** Fold heights the first view tries, as fractions of the canvas height at the legible zoom (the one whose layout
 *  fits the canvas at the largest scale is kept), and the fold height while the canvas has no size (hidden view). */
export const FOLD_TRIES = [1, 0.9, 0.8, 0.7, 0.62, 0.55, 0.48, 0.4];
export const DEFAULT_FOLD = 720;
/** Bringing a node into view from further out than ZOOM_IN_BELOW zooms to ZOOM_IN_TO. */
export const ZOOM_IN_BELOW = 0.5;
export const ZOOM_IN_TO = 0.9;
/** Labels are drawn above this zoom, arrowheads above ARROW_MIN_ZOOM. */
export const TEXT_MIN_ZOOM = 0.33;
export const ARROW_MIN_ZOOM = 0.25;

// ------------------------------------------------------------------ charts
/** The y axis of an error chart turns logarithmic when max / min exceeds this. */
export const CHART_LOG_RATIO = 1e3;
/** The histogram's count axis turns logarithmic above this count. */
export const HIST_LOG_COUNT = 1000;

// ------------------------------------------------------------------ canvas text and colours that do not follow the theme
export const CANVAS_FONT = '-apple-system, Roboto, "Segoe UI", Helvetica, Arial, sans-serif';
/** Text on coloured badges and judge marks. */
export const BADGE_TEXT = '#fff';
/** Outline of the graph nodes that match the search. */
export const SEARCH_MATCH = '#fdd835';
/** Judge marks: letter on the node, title, colour (also the chips in the summary and the side panel). */
export const JUDGE_MARK: Record<string, {letter: string; title: string; color: string}> = {
  outlier_removal: {letter: 'O', title: 'Outlier removal (z-score threshold)', color: '#8e24aa'},
  shift_negative_activation: {letter: 'S', title: 'Shift negative activation', color: '#1e88e5'},
  unbalanced_concatenation: {letter: 'C', title: 'Unbalanced concatenation', color: '#00897b'},
  mixed_precision_with_model_output_loss_objective: {letter: 'M', title: 'Mixed precision with model output loss objective', color: '#6d4c41'},
  general: {letter: 'G', title: 'General troubleshoot', color: '#757575'},
};
/** Colour of a judge that JUDGE_MARK does not know. */
export const UNKNOWN_JUDGE_COLOR = '#757575';
