// ModalChorus web UI: wires the settings, the projection and concept-axis views, the
// instance detail, sets and metrics panels to the API.
import './style.css';
import {
  type AlignmentHistory,
  api,
  ApiError,
  type AugmentResult,
  followJob,
  type IntentOut,
  type IntentSpec,
  type ItemDetail,
  type ProjectionMeta,
  type RunOut,
  type SetOut,
  type Settings,
} from './api';
import { clear, h } from './dom';
import { type ColorBy, colorChoices, coloring, KIND_IMAGE, type Points, pointsFromFrame } from './points';
import { sharedRenderer } from './scatter';
import { AlignPanel, type Compare, type Moved } from './views/align';
import { type AugmentRequest, AugmentPanel } from './views/augment';
import { ConceptAxisView } from './views/concept-axis';
import { DetailPanel } from './views/detail';
import { MetricsPanel } from './views/metrics';
import { Notices } from './views/notices';
import { ProjectionView } from './views/projection';
import { SetsPanel } from './views/sets';
import { type Choice, SettingsBar } from './views/settings';

type Tab = 'projection' | 'axis';

/** What the browser tests and the benchmark read (window.__modalchorus). */
export interface Probe {
  ready: boolean;
  pointCount: number;
  itemCount: number;
  choice: Choice | null;
  timings: Record<string, number>;
  notices: { kind: string; message: string }[];
  detailId: string | null;
  axis: { pointCount: number; rendered: boolean; screenPosition: (index: number) => [number, number] | undefined };
  lasso: (vertices: [number, number][]) => void;
  /** Select rows as a lasso would (the selection panel and the align panel follow). */
  selectRows: (rows: number[]) => void;
  screenPosition: (index: number) => [number, number] | undefined;
  indexOf: (id: string) => number;
  sets: () => SetOut[];
  /** Ids of the items the last augmentation added (or found present). */
  augmented: string[];
  /** Rows currently selected on the map. */
  selection: () => number[];
  align: {
    /** The embedding version the map shows (the family's active one). */
    version: string;
    running: boolean;
    /** Which layout the map shows while a run is compared, null when there is none. */
    compare: Compare | null;
    moving: boolean;
    runId: number | null;
    intents: () => IntentOut[];
  };
}

declare global {
  interface Window {
    __modalchorus: Probe;
  }
}

/** The settings last used on a workspace (see ``restoreSession``); storage may be refused. */
const session = {
  key: (workspace: string) => `modalchorus:session:${workspace}`,
  load(workspace: string): string | null {
    try {
      return localStorage.getItem(this.key(workspace));
    } catch {
      return null;
    }
  },
  save(workspace: string, query: string): void {
    try {
      localStorage.setItem(this.key(workspace), query);
    } catch {
      // private browsing or a full store: the URL still holds the settings
    }
  },
};

class App {
  private settings!: Settings;
  private choice!: Choice;
  private points: Points | null = null;
  private meta: ProjectionMeta | null = null;
  private sets: SetOut[] = [];
  private selection: number[] = [];
  private tab: Tab = 'projection';
  private generation = 0;
  /** performance.now() at milestones of the first load (for the benchmark). */
  private readonly marks: Record<string, number> = {};
  private readonly renderer = sharedRenderer();
  private readonly notices = new Notices();
  private readonly bar = new SettingsBar(
    (change) => void this.change(change),
    // The job's follower sees its final ``cancelled`` state.
    (job) => void api.cancelJob(job.id).catch((error: unknown) => this.notices.error(error)),
  );
  private readonly detail = new DetailPanel(
    (id) => void this.pick(id),
    (item) => this.removeItem(item),
  );
  private readonly metrics = new MetricsPanel();
  private readonly setsPanel = new SetsPanel({
    save: (name) => this.saveSet(name),
    clearSelection: () => this.clearSelection(),
    show: (set) => this.showSet(set),
    rename: (set, name) => this.renameSet(set, name),
    remove: (set) => this.removeSet(set),
  });
  private readonly projection = new ProjectionView(this.renderer, {
    click: (i) => this.pointClicked(i),
    lasso: (rows) => this.lassoed(rows),
    emptyLasso: () => {
      this.clearSelection();
      this.notices.show('The lasso enclosed no points: nothing is selected.');
    },
    deselect: () => this.clearSelection(), // the map, the sets and the align panel agree
  });
  private readonly axis = new ConceptAxisView(this.renderer, (i) => this.pointClicked(i));
  private readonly augmentPanel = new AugmentPanel((request) => this.augment(request));
  private readonly alignPanel = new AlignPanel({
    addIntents: (specs) => this.addIntents(specs),
    deleteIntent: (intent) => this.deleteIntent(intent),
    run: (scope) => this.runAlignment(scope),
    cancel: async (job) => {
      await api.cancelJob(job.id);
    },
    compare: (mode) => this.compare(mode),
    undo: () => this.step('undo'),
    redo: () => this.step('redo'),
    pick: (id) => void this.pick(id),
  });
  private intents: IntentOut[] = [];
  private history: AlignmentHistory | null = null;
  /** The clicked point (an intent's point when nothing is lassoed). */
  private clicked: string | null = null;
  /** Positions of the shown rows in the compared run's parent version (same frame). */
  private before: { x: Float32Array; y: Float32Array } | null = null;
  private readonly tabs = new Map<Tab, HTMLButtonElement>();
  private readonly status = h('div', { class: 'status' });
  readonly probe: Probe;

  constructor(private readonly root: HTMLElement) {
    this.probe = {
      ready: false,
      pointCount: 0,
      itemCount: 0,
      choice: null,
      timings: {},
      notices: this.notices.log,
      detailId: null,
      axis: { pointCount: 0, rendered: false, screenPosition: (i) => this.axis.scatter.screenPosition(i) },
      lasso: (vertices) => this.projection.scatter.lasso(vertices),
      selectRows: (rows) => {
        this.projection.scatter.select(rows);
        this.lassoed(rows);
      },
      screenPosition: (i) => this.projection.scatter.screenPosition(i),
      indexOf: (id) => this.points?.index.get(id) ?? -1,
      sets: () => this.sets,
      augmented: [],
      selection: () => this.selection,
      align: { version: '', running: false, compare: null, moving: false, runId: null, intents: () => this.intents },
    };
    Object.defineProperty(this.probe.axis, 'pointCount', { get: () => this.axis.pointCount });
    Object.defineProperty(this.probe.axis, 'rendered', { get: () => this.axis.rendered });
    window.__modalchorus = this.probe;
  }

  async start(): Promise<void> {
    this.marks.start = performance.now();
    this.layout();
    try {
      const [settings, sets, intents] = await Promise.all([api.settings(), api.sets(), api.intents()]);
      this.marks.settings = performance.now();
      this.settings = settings;
      this.restoreSession(settings.workspace);
      this.sets = sets;
      this.intents = intents;
      this.setsPanel.render(sets);
      this.alignPanel.renderIntents(intents);
      this.alignContext();
      this.choice = this.initialChoice(settings);
      if (!this.choice.dataset || !this.choice.encoder) {
        this.status.textContent = 'This workspace has no embedded datasets yet (modalchorus embed …).';
        return;
      }
      await this.refreshHistory();
      await this.load();
    } catch (error) {
      this.notices.error(error);
    }
  }

  private layout(): void {
    const tabBar = h('nav', { class: 'tabs' });
    for (const [tab, label] of [['projection', 'Projection'], ['axis', 'Concept axis']] as const) {
      const button = h('button', { class: 'tab', 'data-tab': tab, onclick: () => this.openTab(tab) }, label);
      this.tabs.set(tab, button);
      tabBar.append(button);
    }
    const main = h('main', { class: 'main' }, tabBar, this.status, this.projection.el, this.axis.el);
    const side = h('aside', { class: 'side' }, this.detail.el, this.setsPanel.el, this.alignPanel.el, this.augmentPanel.el, this.metrics.el);
    this.root.append(this.bar.el, h('div', { class: 'body' }, main, side));
    this.showTab(urlTab());
    // Back and Forward step through the settings the user chose (see ``syncUrl``).
    window.addEventListener('popstate', () => void this.restoreUrl());
  }

  private showTab(tab: Tab): void {
    this.tab = tab;
    this.projection.el.hidden = tab !== 'projection';
    this.axis.el.hidden = tab !== 'axis';
    // Notices go in the shown map's corner: in the window's, they covered the side panel's
    // metrics and controls, which the user reads and works with as a notice comes.
    (tab === 'projection' ? this.projection.stage : this.axis.stage).append(this.notices.el);
    for (const [name, button] of this.tabs) button.classList.toggle('active', name === tab);
  }

  private openTab(tab: Tab): void {
    this.showTab(tab);
    this.syncUrl('push');
  }

  /** Opened without settings in the URL: take those last used on this workspace. */
  private restoreSession(workspace: string): void {
    const saved = location.search ? null : session.load(workspace);
    if (!saved) return;
    history.replaceState(null, '', `?${saved}`);
    this.showTab(urlTab());
  }

  private initialChoice(settings: Settings): Choice {
    const params = new URLSearchParams(location.search);
    const pick = (value: string | null, options: string[]) =>
      value && options.includes(value) ? value : (options[0] ?? '');
    const dataset = pick(params.get('dataset'), settings.datasets.map((d) => d.name));
    const tasks = settings.datasets.find((d) => d.name === dataset)?.tasks ?? [];
    return {
      dataset,
      task: pick(params.get('task'), tasks),
      encoder: pick(params.get('encoder'), settings.encoders),
      method: pick(params.get('method') ?? settings.default_method, settings.methods),
      colorBy: (params.get('color') as ColorBy) ?? 'label',
    };
  }

  /** Write the settings into the URL: a user's choice is a new history entry (``push``), a
   *  correction (e.g. a colouring the data lacks) rewrites the current one. */
  private syncUrl(mode: 'push' | 'replace' = 'replace'): void {
    if (!this.choice) return;
    const params = new URLSearchParams({
      dataset: this.choice.dataset,
      task: this.choice.task,
      encoder: this.choice.encoder,
      method: this.choice.method,
      color: this.choice.colorBy,
      view: this.tab,
    });
    const url = `?${params}`;
    if (mode === 'push' && url !== location.search) history.pushState(null, '', url);
    else history.replaceState(null, '', url);
    session.save(this.settings.workspace, params.toString());
  }

  /** Back or Forward: show the settings of that history entry. */
  private async restoreUrl(): Promise<void> {
    if (!this.choice) return;
    this.showTab(urlTab());
    await this.apply(this.initialChoice(this.settings), 'replace');
  }

  private async change(change: Partial<Choice>): Promise<void> {
    const next = { ...this.choice, ...change };
    if (change.dataset) {
      const tasks = this.settings.datasets.find((d) => d.name === change.dataset)?.tasks ?? [];
      next.task = tasks[0] ?? '';
    }
    await this.apply(next, 'push');
  }

  /** Show ``next``, reloading the map only when its dataset, encoder or method changed. */
  private async apply(next: Choice, mode: 'push' | 'replace'): Promise<void> {
    const changed = (k: keyof Choice) => next[k] !== this.choice[k];
    const [dataset, encoder, method, task] = (['dataset', 'encoder', 'method', 'task'] as const).map(changed);
    this.choice = next;
    this.syncUrl(mode);
    // The shown item and its neighbours belong to the old view.
    if (dataset || encoder) this.resetDetail();
    if (encoder) await this.refreshHistory();
    if (dataset || encoder || method) await this.load();
    else {
      this.renderBar();
      await this.recolor();
      if (task) void this.loadTaskMetrics(this.generation);
    }
  }

  private renderBar(): void {
    const choices = this.points ? colorChoices(this.points) : [this.choice.colorBy];
    if (!choices.includes(this.choice.colorBy)) this.choice.colorBy = choices[0];
    this.bar.render(this.settings, this.choice, choices);
    this.probe.choice = { ...this.choice };
  }

  /** Fit or read the projection for the current choice and draw it. */
  private async load(): Promise<void> {
    const generation = ++this.generation;
    const started = performance.now();
    this.probe.ready = false;
    this.points = null;
    this.meta = null;
    this.before = null;
    this.probe.align.compare = null;
    this.projection.clear();
    this.clearSelection();
    this.renderBar();
    this.syncUrl();
    const key = { dataset: this.choice.dataset, encoder: this.choice.encoder, method: this.choice.method };
    this.status.textContent = `loading ${key.method} projection of ${key.dataset}…`;
    try {
      let answer = await api.ensureProjection(key);
      const fitted = answer.status === 'fitting';
      this.marks.ensured = performance.now();
      if (answer.status === 'fitting' && answer.job) {
        void this.loadTaskMetrics(generation);
        this.status.textContent = `fitting the ${key.method} projection of ${key.dataset} (runs in the background)…`;
        const job = await followJob(answer.job.id, (j) => {
          if (generation === this.generation) this.bar.showJob(j);
        });
        if (generation !== this.generation) return;
        this.bar.showJob(null);
        if (job.status === 'failed') throw new Error(`fitting failed: ${job.error}`);
        if (job.status === 'cancelled') {
          this.fitCancelled(key.method, key.dataset);
          return;
        }
        answer = await api.ensureProjection(key);
      }
      const fetchStart = performance.now();
      const frame = await api.points(key);
      if (generation !== this.generation) return;
      const fetched = performance.now();
      const points = pointsFromFrame(frame);
      this.points = points;
      this.meta = answer.projection ?? null;
      this.renderBar();
      this.syncUrl(); // the colouring may have been corrected for these points
      const colors = coloring(points, this.choice.colorBy, this.sets);
      await this.projection.show(points, colors, key);
      this.projection.setDownload(api.csvUrl(key));
      await new Promise(requestAnimationFrame);
      if (generation !== this.generation) return;
      const now = performance.now();
      this.probe.timings = {
        ...this.marks,
        firstRender: now,
        load: now - started,
        fetchPoints: fetched - fetchStart,
        draw: now - fetched,
        frameBytes: frame.nbytes,
        fitted: fitted ? 1 : 0,
      };
      this.probe.pointCount = this.projection.scatter.count;
      this.probe.itemCount = points.n;
      this.probe.ready = true;
      const version = String(frame.meta.encoder ?? key.encoder);
      this.probe.align.version = version;
      this.status.textContent = `${points.n} items · ${key.method} · ${version}`;
      this.metrics.renderProjection(this.meta);
      this.axis.setContext(this.axisContext(colors));
      // The metrics panel fills in after the map is drawn (the map comes first).
      if (!this.probe.timings.fitted) void this.loadTaskMetrics(generation);
      await this.loadCompare(generation);
    } catch (error) {
      if (generation !== this.generation) return;
      this.bar.showJob(null);
      // The reason stays in view (e.g. a dataset without texts): notices fade.
      const reason = error instanceof Error ? error.message : String(error);
      this.status.textContent = `could not load the projection: ${reason}`;
      this.notices.error(error);
    }
  }

  /** The map stays empty; the status line offers to start the fit again. */
  private fitCancelled(method: string, dataset: string): void {
    const again = h('button', { type: 'button', class: 'small fit-again', onclick: () => void this.load() }, 'fit again');
    clear(this.status, `Fitting the ${method} projection of ${dataset} was cancelled. `, again);
  }

  private async loadTaskMetrics(generation: number): Promise<void> {
    try {
      const metrics = await api.taskMetrics(this.choice.dataset, this.choice.encoder);
      if (generation === this.generation) this.metrics.renderTask(metrics, this.choice.task);
    } catch (error) {
      if (generation === this.generation) this.metrics.renderTask(null, this.choice.task);
      if (!(error instanceof ApiError && error.status === 404)) this.notices.error(error);
    }
  }

  private axisContext(colors: ReturnType<typeof coloring>) {
    return {
      dataset: this.choice.dataset,
      encoder: this.choice.encoder,
      points: this.points!,
      coloring: colors,
      maxLength: this.settings.max_concept_length ?? 200,
    };
  }

  private async recolor(): Promise<void> {
    if (!this.points) return;
    const colors = coloring(this.points, this.choice.colorBy, this.sets);
    await this.projection.recolor(colors);
    this.axis.setContext(this.axisContext(colors));
  }

  /** A click on a point (either view) selects it alone: it replaces a lassoed selection. */
  private pointClicked(index: number): void {
    this.selection = [];
    this.setsPanel.hideSelection();
    void this.showDetail(index);
  }

  private async showDetail(index: number): Promise<void> {
    if (!this.points) return;
    const id = this.points.ids[index];
    this.clicked = id;
    this.alignContext();
    this.probe.detailId = null;
    this.detail.loading(id);
    try {
      const [item, neighbours] = await Promise.all([
        api.item(id, this.choice.encoder, this.choice.dataset),
        api.neighbours(id, this.choice.encoder, 10, this.choice.dataset),
      ]);
      if (this.clicked !== id) return; // another point was opened, or the view changed
      this.detail.render(item, neighbours);
      this.probe.detailId = id;
    } catch (error) {
      this.notices.error(error);
    }
  }

  private async pick(id: string): Promise<void> {
    const index = this.points?.index.get(id);
    if (index === undefined) return;
    this.projection.scatter.select([index]);
    await this.showDetail(index);
  }

  /** Add uploaded images and typed texts, redraw the map and select the new points. */
  private async augment(request: AugmentRequest): Promise<string> {
    const { dataset, encoder } = this.choice;
    const results: AugmentResult[] = [];
    if (request.files.length) {
      const form = new FormData();
      for (const file of request.files) form.append('files', file, file.name);
      form.append('dataset', dataset);
      form.append('encoder', encoder);
      if (request.setName) form.append('set_name', request.setName);
      results.push(await api.uploadImages(form));
    }
    let refused: unknown = null;
    if (request.texts.length) {
      try {
        results.push(await api.addTexts({ dataset, encoder, texts: request.texts, set_name: request.setName || null }));
      } catch (error) {
        if (!results.length) throw error;
        refused = error; // the images are stored: show them, and say what was refused
      }
    }
    const items = results.flatMap((r) => r.items);
    const ids = [...new Set(items.map((i) => i.id))];
    this.probe.augmented = ids;
    if (request.setName) await this.refreshSets();
    await this.load();
    const rows = ids.map((id) => this.points?.index.get(id)).filter((i): i is number => i !== undefined);
    if (rows.length) {
      this.projection.scatter.select(rows);
      this.lassoed(rows);
    }
    const fresh = results.reduce((n, r) => n + r.n_new, 0);
    const placed = results.some((r) => r.projection) ? 'placed in the map by the fitted MFM (no re-fit)' : 'the map is being fitted';
    const tagged = request.setName ? `, tagged “${request.setName}”` : '';
    let summary = `Added ${fresh} new item${fresh === 1 ? '' : 's'} (${ids.length - fresh} already present)${tagged}; ${placed}.`;
    if (refused) summary += ` The texts were not added: ${refused instanceof Error ? refused.message : String(refused)}`;
    this.notices.show(summary, refused ? 'error' : 'info');
    if (refused) throw new Error(summary);
    return summary;
  }

  /** Remove an uploaded item; the map and the sets are reloaded without it. */
  private async removeItem(item: ItemDetail): Promise<void> {
    try {
      await api.removeItem(item.id);
    } catch (error) {
      this.notices.error(error);
      return;
    }
    this.resetDetail();
    await this.refreshSets();
    await this.load();
    this.notices.show(`Removed ${item.kind === 'image' ? 'the image' : 'the text'} ${item.id}.`);
  }

  private resetDetail(): void {
    this.clicked = null;
    this.detail.reset();
    this.probe.detailId = null;
  }

  private lassoed(rows: number[]): void {
    if (!this.points) return;
    this.selection = rows;
    const images = rows.filter((i) => this.points!.kind[i] === KIND_IMAGE).length;
    const taken = new Set(this.sets.map((s) => s.name));
    let k = this.sets.length + 1;
    while (taken.has(`selection ${k}`)) k++;
    this.setsPanel.showSelection(rows.length, images, `selection ${k}`);
    this.alignContext();
  }

  private clearSelection(): void {
    this.selection = [];
    this.clicked = null;
    this.setsPanel.hideSelection();
    this.projection.scatter.select([]);
    this.alignContext();
  }

  private async saveSet(name: string): Promise<boolean> {
    if (!this.points || !this.selection.length) {
      this.notices.show('Nothing is selected, so no set was created.');
      return false;
    }
    try {
      const ids = this.selection.map((i) => this.points!.ids[i]);
      const set = await api.createSet({ name, item_ids: ids, color: null, description: '' });
      this.notices.show(`Saved set “${set.name}” (${set.n_items} items).`);
      await this.refreshSets();
      this.clearSelection();
      return true;
    } catch (error) {
      this.notices.error(error);
      return false;
    }
  }

  private showSet(set: SetOut): void {
    if (!this.points) return;
    const rows = set.item_ids.map((id) => this.points!.index.get(id)).filter((i): i is number => i !== undefined);
    if (!rows.length) {
      this.clearSelection();
      this.notices.show(`No item of “${set.name}” is in this view.`);
      return;
    }
    // Selected as a legend click would: ready to align or to save under another name.
    this.projection.scatter.select(rows);
    this.lassoed(rows);
  }

  private async renameSet(set: SetOut, name: string): Promise<void> {
    try {
      await api.renameSet(set.id, name);
    } catch (error) {
      this.notices.error(error);
    }
    await this.refreshSets();
  }

  private async removeSet(set: SetOut): Promise<void> {
    try {
      await api.deleteSet(set.id);
      this.notices.show(`Deleted set “${set.name}”.`);
    } catch (error) {
      this.notices.error(error);
    }
    await this.refreshSets();
  }

  private async refreshSets(): Promise<void> {
    this.sets = await api.sets();
    this.setsPanel.render(this.sets);
    this.alignContext();
    if (this.choice.colorBy === 'set') await this.recolor();
  }

  // ------------------------------------------------------------------ alignment

  /** The align panel's choices: the sets, and the lassoed points (else the clicked one). */
  private alignContext(): void {
    const points = this.points;
    const selected = points && this.selection.length ? this.selection.map((i) => points.ids[i]) : this.clicked ? [this.clicked] : [];
    this.alignPanel.setContext({ sets: this.sets, points: selected });
  }

  private async refreshHistory(): Promise<void> {
    try {
      this.history = await api.alignmentHistory(this.choice.encoder);
    } catch (error) {
      this.history = null;
      if (!(error instanceof ApiError && error.status === 404)) this.notices.error(error);
    }
    this.alignPanel.renderHistory(this.history);
  }

  private activeRun(): RunOut | null {
    return this.history?.runs.find((r) => r.id === this.history?.active_run_id) ?? null;
  }

  /** Fetch the active run's parent layout of the shown rows, for the before/after toggle. */
  private async loadCompare(generation: number): Promise<void> {
    const run = this.activeRun();
    const points = this.points;
    this.probe.align.runId = run?.id ?? null;
    if (!run || !points) {
      this.alignPanel.renderResult(null, this.choice.dataset, () => false, null);
      return;
    }
    let moved: Moved[] | null = null;
    let why: string | null = null;
    try {
      const key = { dataset: this.choice.dataset, encoder: this.choice.encoder, method: 'mfm' };
      const parent = await api.points(key, run.parent_encoder_id);
      if (generation !== this.generation) return;
      const px = parent.columns.x as Float32Array;
      const py = parent.columns.y as Float32Array;
      const row = new Map((parent.columns.id as string[]).map((id, i) => [id, i]));
      const x = Float32Array.from(points.x);
      const y = Float32Array.from(points.y);
      points.ids.forEach((id, i) => {
        const j = row.get(id);
        if (j !== undefined) [x[i], y[i]] = [px[j], py[j]];
      });
      if (this.choice.method === 'mfm') {
        this.before = { x, y };
        moved = topMoved(points, this.before, MOVED_SHOWN);
      } else {
        why = `before / after is shown on the MFM map, the one new versions are placed in (this is the ${this.choice.method} map)`;
      }
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) this.notices.error(error);
    }
    if (generation !== this.generation) return;
    this.probe.align.compare = moved ? 'after' : null;
    this.alignPanel.renderResult(run, this.choice.dataset, (id) => points.index.has(id), moved, why);
  }

  private async compare(mode: Compare): Promise<void> {
    const points = this.points;
    if (!points || !this.before) return;
    this.probe.align.moving = true;
    try {
      const [x, y] = mode === 'before' ? [this.before.x, this.before.y] : [points.x, points.y];
      await this.projection.morph(x, y, 800);
      this.probe.align.compare = mode;
      this.alignPanel.setCompare(mode);
    } finally {
      this.probe.align.moving = false;
    }
  }

  private async addIntents(specs: IntentSpec[]): Promise<void> {
    try {
      for (const spec of specs) await api.createIntent(spec);
    } finally {
      this.intents = await api.intents();
      this.alignPanel.renderIntents(this.intents);
    }
  }

  private async deleteIntent(intent: IntentOut): Promise<void> {
    try {
      await api.deleteIntent(intent.id);
    } finally {
      this.intents = await api.intents();
      this.alignPanel.renderIntents(this.intents);
    }
  }

  private async runAlignment(scope: 'adapter' | 'lora'): Promise<void> {
    if (!this.intents.length) throw new Error('Add an intent first.');
    const job = await api.startAlignment({
      encoder: this.choice.encoder,
      intent_ids: this.intents.map((i) => i.id),
      intents: [],
      scope,
      params: null,
    });
    this.probe.align.running = true;
    try {
      const done = await followJob(job.id, (j) => {
        this.alignPanel.showJob(j);
        this.bar.showJob(j);
      });
      this.alignPanel.showJob(null);
      this.bar.showJob(null);
      if (done.status === 'failed') throw new Error(`alignment failed: ${done.error}`);
      if (done.status === 'cancelled') {
        this.notices.show('Alignment run cancelled: nothing changed.');
        return;
      }
      await this.refreshHistory();
      this.notices.show(`Alignment run #${done.result} done: ${this.history?.active_encoder_id ?? ''} is current.`);
      await this.load();
    } finally {
      this.probe.align.running = false;
    }
  }

  private async step(direction: 'undo' | 'redo'): Promise<void> {
    const answer = direction === 'undo' ? await api.undo(this.choice.encoder) : await api.redo(this.choice.encoder);
    this.history = answer.history;
    this.alignPanel.renderHistory(this.history);
    if (!answer.run) {
      this.notices.show(`Nothing to ${direction}.`);
      return;
    }
    this.notices.show(`${direction === 'undo' ? 'Undid' : 'Redid'} run #${answer.run.id}: ${answer.history.active_encoder_id} is current.`);
    await this.load();
  }
}

/** The tab the URL names. */
const urlTab = (): Tab => (new URLSearchParams(location.search).get('view') === 'axis' ? 'axis' : 'projection');

/** How many of the points that moved most the align panel lists. */
const MOVED_SHOWN = 12;

/** The ``k`` points that moved most between ``before`` and the shown layout. */
function topMoved(points: Points, before: { x: Float32Array; y: Float32Array }, k: number): Moved[] {
  const moved = points.ids.map((id, i) => ({ id, distance: Math.hypot(points.x[i] - before.x[i], points.y[i] - before.y[i]) }));
  return moved.sort((a, b) => b.distance - a.distance).slice(0, k);
}

void new App(document.getElementById('app')!).start();
