// ModalChorus web UI: wires the settings, the projection and concept-axis views, the
// instance detail, sets and metrics panels to the API.
import './style.css';
import { api, ApiError, followJob, type ProjectionMeta, type SetOut, type Settings } from './api';
import { h } from './dom';
import { type ColorBy, colorChoices, coloring, KIND_IMAGE, type Points, pointsFromFrame } from './points';
import { sharedRenderer } from './scatter';
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
  axis: { pointCount: number; rendered: boolean };
  lasso: (vertices: [number, number][]) => void;
  screenPosition: (index: number) => [number, number] | undefined;
  indexOf: (id: string) => number;
  sets: () => SetOut[];
}

declare global {
  interface Window {
    __modalchorus: Probe;
  }
}

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
  private readonly bar = new SettingsBar((change) => void this.change(change));
  private readonly detail = new DetailPanel((id) => void this.pick(id));
  private readonly metrics = new MetricsPanel();
  private readonly setsPanel = new SetsPanel({
    save: (name) => this.saveSet(name),
    clearSelection: () => this.clearSelection(),
    show: (set) => this.showSet(set),
    rename: (set, name) => this.renameSet(set, name),
    remove: (set) => this.removeSet(set),
  });
  private readonly projection = new ProjectionView(this.renderer, {
    click: (i) => void this.showDetail(i),
    lasso: (rows) => this.lassoed(rows),
    emptyLasso: () => this.notices.show('The lasso enclosed no points, so no set was created.'),
  });
  private readonly axis = new ConceptAxisView(this.renderer);
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
      axis: { pointCount: 0, rendered: false },
      lasso: (vertices) => this.projection.scatter.lasso(vertices),
      screenPosition: (i) => this.projection.scatter.screenPosition(i),
      indexOf: (id) => this.points?.index.get(id) ?? -1,
      sets: () => this.sets,
    };
    Object.defineProperty(this.probe.axis, 'pointCount', { get: () => this.axis.pointCount });
    Object.defineProperty(this.probe.axis, 'rendered', { get: () => this.axis.rendered });
    window.__modalchorus = this.probe;
  }

  async start(): Promise<void> {
    this.marks.start = performance.now();
    this.layout();
    try {
      const [settings, sets] = await Promise.all([api.settings(), api.sets()]);
      this.marks.settings = performance.now();
      this.settings = settings;
      this.sets = sets;
      this.setsPanel.render(sets);
      this.choice = this.initialChoice(settings);
      if (!this.choice.dataset || !this.choice.encoder) {
        this.status.textContent = 'This workspace has no embedded datasets yet (modalchorus embed …).';
        return;
      }
      await this.load();
    } catch (error) {
      this.notices.error(error);
    }
  }

  private layout(): void {
    const tabBar = h('nav', { class: 'tabs' });
    for (const [tab, label] of [['projection', 'Projection'], ['axis', 'Concept axis']] as const) {
      const button = h('button', { class: 'tab', 'data-tab': tab, onclick: () => this.showTab(tab) }, label);
      this.tabs.set(tab, button);
      tabBar.append(button);
    }
    const main = h('main', { class: 'main' }, tabBar, this.status, this.projection.el, this.axis.el);
    const side = h('aside', { class: 'side' }, this.detail.el, this.setsPanel.el, this.metrics.el);
    this.root.append(this.bar.el, h('div', { class: 'body' }, main, side), this.notices.el);
    const params = new URLSearchParams(location.search);
    this.showTab(params.get('view') === 'axis' ? 'axis' : 'projection');
  }

  private showTab(tab: Tab): void {
    this.tab = tab;
    this.projection.el.hidden = tab !== 'projection';
    this.axis.el.hidden = tab !== 'axis';
    for (const [name, button] of this.tabs) button.classList.toggle('active', name === tab);
    this.syncUrl();
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

  private syncUrl(): void {
    if (!this.choice) return;
    const params = new URLSearchParams({
      dataset: this.choice.dataset,
      task: this.choice.task,
      encoder: this.choice.encoder,
      method: this.choice.method,
      color: this.choice.colorBy,
      view: this.tab,
    });
    history.replaceState(null, '', `?${params}`);
  }

  private async change(change: Partial<Choice>): Promise<void> {
    const reload = ['dataset', 'encoder', 'method'].some(
      (k) => k in change && change[k as keyof Choice] !== this.choice[k as keyof Choice],
    );
    this.choice = { ...this.choice, ...change };
    if (change.dataset) {
      const tasks = this.settings.datasets.find((d) => d.name === change.dataset)?.tasks ?? [];
      this.choice.task = tasks[0] ?? '';
    }
    if (reload) await this.load();
    else {
      this.renderBar();
      await this.recolor();
      if ('task' in change) void this.loadTaskMetrics(this.generation);
      this.syncUrl();
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
      const colors = coloring(points, this.choice.colorBy, this.sets);
      await this.projection.show(points, colors, key.encoder);
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
      this.status.textContent = `${points.n} items · ${key.method} · ${key.encoder}`;
      this.metrics.renderProjection(this.meta);
      this.axis.setContext(this.axisContext(colors));
      // The metrics panel fills in after the map is drawn (the map comes first).
      if (!this.probe.timings.fitted) void this.loadTaskMetrics(generation);
    } catch (error) {
      if (generation !== this.generation) return;
      this.bar.showJob(null);
      this.status.textContent = 'could not load the projection';
      this.notices.error(error);
    }
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

  private async showDetail(index: number): Promise<void> {
    if (!this.points) return;
    const id = this.points.ids[index];
    this.probe.detailId = null;
    this.detail.loading(id);
    try {
      const [item, neighbours] = await Promise.all([
        api.item(id, this.choice.encoder),
        api.neighbours(id, this.choice.encoder, 10),
      ]);
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

  private lassoed(rows: number[]): void {
    if (!this.points) return;
    this.selection = rows;
    const images = rows.filter((i) => this.points!.kind[i] === KIND_IMAGE).length;
    const taken = new Set(this.sets.map((s) => s.name));
    let k = this.sets.length + 1;
    while (taken.has(`selection ${k}`)) k++;
    this.setsPanel.showSelection(rows.length, images, `selection ${k}`);
  }

  private clearSelection(): void {
    this.selection = [];
    this.setsPanel.hideSelection();
    this.projection.scatter.select([]);
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
      this.selection = [];
      return true;
    } catch (error) {
      this.notices.error(error);
      return false;
    }
  }

  private showSet(set: SetOut): void {
    if (!this.points) return;
    const rows = set.item_ids.map((id) => this.points!.index.get(id)).filter((i): i is number => i !== undefined);
    this.projection.scatter.select(rows);
    if (!rows.length) this.notices.show(`No item of “${set.name}” is in this view.`);
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
    if (this.choice.colorBy === 'set') await this.recolor();
  }
}

void new App(document.getElementById('app')!).start();
