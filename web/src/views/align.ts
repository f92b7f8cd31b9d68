// Alignment panel: state intents over the selection and sets, run a tuning job, compare
// before / after in the same frame (animated), read the metric deltas and the points that
// moved most, and step through the run history (undo / redo, export).
import { api, jobFinished, type AlignmentHistory, type IntentOut, type IntentSpec, type JobInfo, type RunOut, type SetOut } from '../api';
import { clear, clickable, fmt, h, select } from '../dom';
import { jobProgress } from './progress';

export type Compare = 'before' | 'after';

export interface AlignHandlers {
  /** Store intents; resolves when they are stored (rejects with the server's message). */
  addIntents: (specs: IntentSpec[]) => Promise<void>;
  deleteIntent: (intent: IntentOut) => Promise<void>;
  run: (scope: 'adapter' | 'lora') => Promise<void>;
  /** Ask the running job to stop. */
  cancel: (job: JobInfo) => Promise<void>;
  compare: (mode: Compare) => Promise<void>;
  undo: () => Promise<void>;
  redo: () => Promise<void>;
  pick: (id: string) => void;
}

/** What the form offers: the sets and the selected points (lasso or click). */
export interface AlignContext {
  sets: SetOut[];
  points: string[];
}

/** A point of the shown map and how far it moved in 2-D (layout units). */
export interface Moved {
  id: string;
  distance: number;
}

/** Metrics shown as deltas, in this order, when a dataset has them. */
const METRICS = ['accuracy', 't2i_R@1', 't2i_R@5', 't2i_R@10', 'i2t_R@1', 'i2t_R@5', 'i2t_R@10'];
const SELECTION = 'selection';
/** Most point → set intents one click makes (one per selected point). */
export const MAX_POINT_INTENTS = 50;

const shortId = (id: string): string => (id.length > 42 ? `…${id.slice(-40)}` : id);

export class AlignPanel {
  readonly el = h('section', { class: 'panel align' }, h('h2', {}, 'Align'));
  private readonly version = h('code', { class: 'align-version' }, '–');
  private readonly form = h('form', { class: 'intent-form' });
  private readonly formMessage = h('p', { class: 'panel-message intent-message' });
  private readonly intentList = h('ul', { class: 'intent-list' });
  private readonly scope = select(
    [{ value: 'adapter', label: 'adapter (fast)' }, { value: 'lora', label: 'LoRA (towers)' }],
    'adapter', () => undefined, { name: 'scope' });
  private readonly runButton = h('button', { type: 'button', class: 'run-align' }, 'Run');
  private readonly progress = h('div', { class: 'align-progress', hidden: true });
  private readonly result = h('div', { class: 'align-result', hidden: true });
  private readonly historyList = h('ol', { class: 'run-history' });
  private readonly undoButton = h('button', { type: 'button', class: 'undo', disabled: true }, 'undo');
  private readonly redoButton = h('button', { type: 'button', class: 'redo', disabled: true }, 'redo');
  private readonly compareButtons = new Map<Compare, HTMLButtonElement>();
  private context: AlignContext = { sets: [], points: [] };
  private kind: 'point-set' | 'set-set' = 'point-set';
  private intents: IntentOut[] = [];
  busy = false;

  constructor(private readonly handlers: AlignHandlers) {
    this.runButton.addEventListener('click', () => void this.guard(() => this.handlers.run(this.scope.value as 'adapter' | 'lora')));
    this.undoButton.addEventListener('click', () => void this.guard(() => this.handlers.undo()));
    this.redoButton.addEventListener('click', () => void this.guard(() => this.handlers.redo()));
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submitIntent();
    });
    this.el.append(
      h('div', { class: 'row version-row' }, h('span', { class: 'hint' }, 'version'), this.version),
      this.form,
      this.formMessage,
      h('h3', {}, 'Intents'),
      this.intentList,
      h('div', { class: 'row' }, h('label', { class: 'field inline' }, 'scope', this.scope), this.runButton),
      this.progress,
      this.result,
      h('h3', {}, 'History'),
      h('div', { class: 'row' }, this.undoButton, this.redoButton),
      this.historyList,
    );
    this.renderForm();
    this.renderIntents([]);
  }

  /** Run an action with the buttons disabled; errors are shown under the form. */
  private async guard(action: () => Promise<void>): Promise<void> {
    if (this.busy) return;
    this.setBusy(true);
    this.formMessage.textContent = '';
    try {
      await action();
    } catch (error) {
      this.say(error instanceof Error ? error.message : String(error), 'error');
    } finally {
      this.setBusy(false);
    }
  }

  private setBusy(busy: boolean): void {
    this.busy = busy;
    this.runButton.disabled = busy || !this.intents.length;
    this.el.classList.toggle('busy', busy);
  }

  private say(text: string, kind: 'info' | 'error' = 'info'): void {
    this.formMessage.textContent = text;
    this.formMessage.className = `panel-message intent-message ${kind}`;
  }

  setContext(context: AlignContext): void {
    this.context = context;
    this.renderForm();
    this.renderIntents(this.intents);
  }

  private setOptions(withSelection: boolean, none = false): { value: string; label: string }[] {
    const options = this.context.sets.map((s) => ({ value: String(s.id), label: `${s.name} (${s.n_items})` }));
    if (withSelection && this.context.points.length) {
      options.unshift({ value: SELECTION, label: `the selection (${this.context.points.length})` });
    }
    if (none) options.unshift({ value: '', label: '— none —' });
    return options;
  }

  private renderForm(): void {
    const keep = (name: string) => (this.form.elements.namedItem(name) as HTMLSelectElement | null)?.value;
    const previous = { target: keep('target'), avoid: keep('avoid'), a: keep('set_a'), b: keep('set_b'), mode: keep('mode'), strength: keep('strength') };
    const pick = (options: { value: string }[], value: string | undefined, fallback = 0) =>
      value !== undefined && options.some((o) => o.value === value) ? value : (options[fallback]?.value ?? '');
    const kind = select(
      [{ value: 'point-set', label: 'points → set' }, { value: 'set-set', label: 'set ↔ set' }],
      this.kind, (v) => {
        this.kind = v as 'point-set' | 'set-set';
        this.renderForm();
      }, { name: 'intent_type' });
    const strength = h('input', { type: 'range', name: 'strength', min: 0.1, max: 5, step: 0.1, value: previous.strength ?? '1' });
    const strengthValue = h('span', { class: 'strength-value' }, fmt(Number(strength.value), 1));
    strength.addEventListener('input', () => (strengthValue.textContent = fmt(Number(strength.value), 1)));
    let body: HTMLElement;
    if (this.kind === 'point-set') {
      const targets = this.setOptions(false);
      const avoids = this.setOptions(false, true);
      const n = this.context.points.length;
      const what = n === 0 ? 'no point selected: click or lasso points' : n === 1 ? shortId(this.context.points[0]) : `${n} selected points`;
      body = h('div', { class: 'intent-fields' },
        h('span', { class: 'intent-points', 'data-count': n }, what),
        h('label', { class: 'field' }, 'should join set', select(targets, pick(targets, previous.target), () => undefined, { name: 'target' })),
        h('label', { class: 'field' }, 'and leave set', select(avoids, pick(avoids, previous.avoid), () => undefined, { name: 'avoid' })),
      );
    } else {
      const sets = this.setOptions(true);
      body = h('div', { class: 'intent-fields' },
        h('label', { class: 'field' }, 'set A', select(sets, pick(sets, previous.a), () => undefined, { name: 'set_a' })),
        h('label', { class: 'field' }, 'should', select(
          [{ value: 'align', label: 'come together with' }, { value: 'separate', label: 'move apart from' }],
          previous.mode ?? 'align', () => undefined, { name: 'mode' })),
        h('label', { class: 'field' }, 'set B', select(sets, pick(sets, previous.b, 1), () => undefined, { name: 'set_b' })),
      );
    }
    clear(this.form,
      h('div', { class: 'row' }, kind),
      body,
      h('div', { class: 'row' }, h('label', { class: 'field inline' }, 'strength', strength), strengthValue,
        h('button', { type: 'submit', class: 'add-intent' }, 'add intent')),
    );
  }

  private ref(value: string): number | string[] {
    return value === SELECTION ? [...this.context.points] : Number(value);
  }

  private async submitIntent(): Promise<void> {
    const value = (name: string) => (this.form.elements.namedItem(name) as HTMLInputElement | HTMLSelectElement).value;
    const strength = Number(value('strength'));
    let specs: IntentSpec[];
    if (this.kind === 'point-set') {
      const points = this.context.points;
      const target = value('target');
      const avoid = value('avoid');
      if (!points.length) return this.say('Select the points first: click one, or lasso several (Shift + drag).', 'error');
      if (points.length > MAX_POINT_INTENTS) return this.say(`${points.length} points are selected; one click makes at most ${MAX_POINT_INTENTS} intents.`, 'error');
      if (!target) return this.say('Make a set for the points to join first (lasso points, save as set).', 'error');
      if (avoid && avoid === target) return this.say('The set to leave must differ from the set to join.', 'error');
      specs = points.map((point) => ({ type: 'point-set', point, target: this.ref(target), avoid: avoid ? this.ref(avoid) : null, strength }));
    } else {
      const [a, b] = [value('set_a'), value('set_b')];
      if (!a || !b) return this.say('A set ↔ set intent needs two sets (lasso points, save as set).', 'error');
      if (a === b) return this.say('Choose two different sets.', 'error');
      specs = [{ type: 'set-set', a: this.ref(a), b: this.ref(b), mode: value('mode') as 'align' | 'separate', strength }];
    }
    await this.guard(async () => {
      await this.handlers.addIntents(specs);
      this.say(`Added ${specs.length} intent${specs.length === 1 ? '' : 's'}.`);
    });
  }

  private describeRef(ref: unknown): string {
    if (typeof ref === 'number') return `“${this.context.sets.find((s) => s.id === ref)?.name ?? `set ${ref}`}”`;
    if (typeof ref === 'string') return `“${ref}”`;
    if (Array.isArray(ref)) return `${ref.length} item${ref.length === 1 ? '' : 's'}`;
    return '–';
  }

  describe(spec: IntentSpec): string {
    if (spec.type === 'point-set') {
      const avoid = spec.avoid !== null && spec.avoid !== undefined ? `, away from ${this.describeRef(spec.avoid)}` : '';
      return `${shortId(spec.point)} → ${this.describeRef(spec.target)}${avoid}`;
    }
    return `${this.describeRef(spec.a)} ${spec.mode === 'separate' ? '⟷ apart from' : '↔ with'} ${this.describeRef(spec.b)}`;
  }

  renderIntents(intents: IntentOut[]): void {
    this.intents = intents;
    this.setBusy(this.busy);
    if (!intents.length) {
      clear(this.intentList, h('li', { class: 'hint' }, 'No intents yet: select points or sets above and add one.'));
      return;
    }
    clear(this.intentList, ...intents.map((intent) =>
      h('li', { class: 'intent', 'data-intent-id': intent.id },
        h('span', { class: 'intent-text', title: JSON.stringify(intent.spec) }, this.describe(intent.spec)),
        h('span', { class: 'intent-strength' }, `×${fmt(intent.spec.strength ?? 1, 1)}`),
        h('button', { type: 'button', class: 'small danger', title: 'delete', onclick: () => void this.guard(() => this.handlers.deleteIntent(intent)) }, 'delete'),
      )));
  }

  showJob(job: JobInfo | null): void {
    if (!job || jobFinished(job)) {
      this.progress.hidden = true;
      return;
    }
    this.progress.hidden = false;
    clear(this.progress, ...jobProgress(job, (j) => {
      this.handlers.cancel(j).catch((error: unknown) => this.say(error instanceof Error ? error.message : String(error), 'error'));
    }));
  }

  renderHistory(history: AlignmentHistory | null): void {
    this.version.textContent = history?.active_encoder_id ?? '–';
    this.version.title = history?.active_encoder_id ?? '';
    this.undoButton.disabled = !history?.can_undo;
    this.redoButton.disabled = !history?.can_redo;
    const runs = [...(history?.runs ?? [])].reverse();
    if (!runs.length) {
      clear(this.historyList, h('li', { class: 'hint' }, 'No runs yet.'));
      return;
    }
    clear(this.historyList, ...runs.map((run) =>
      h('li', { class: run.active ? 'run active' : 'run', 'data-run-id': run.id },
        h('span', { class: 'run-name' }, `#${run.id} ${run.scope}`),
        h('span', { class: 'run-facts' }, `${run.intents.length} intent${run.intents.length === 1 ? '' : 's'} · ${fmt(run.seconds, 1)} s`),
        run.active ? h('span', { class: 'run-active', title: 'current version' }, 'current') : null,
        h('a', { class: 'export', href: api.exportUrl(run.id), download: `alignment-run-${run.id}.zip`, title: 'alignment.json + alignment.safetensors; load with aligned:<folder>' }, 'export'),
      )));
  }

  /**
   * The run to compare (None hides the result), its metric deltas per dataset, and the points
   * of the shown map that moved most (``moved``: from the two layouts; when they are not
   * both there, the run's own list, whose ids ``visible`` says can be opened; ``why`` says why
   * before / after cannot be shown).
   */
  renderResult(run: RunOut | null, dataset: string, visible: (id: string) => boolean, moved: Moved[] | null, why: string | null = null): void {
    const compareReady = moved !== null;
    if (!run) {
      this.result.hidden = true;
      clear(this.result);
      return;
    }
    this.result.hidden = false;
    const toggle = h('div', { class: 'compare row' }, h('span', { class: 'hint' }, 'map shows'));
    this.compareButtons.clear();
    for (const mode of ['before', 'after'] as const) {
      const button = h('button', { type: 'button', class: mode === 'after' ? 'active' : '', 'data-compare': mode, disabled: !compareReady,
        onclick: () => void this.guard(() => this.handlers.compare(mode)) }, mode);
      this.compareButtons.set(mode, button);
      toggle.append(button);
    }
    const datasets = Object.keys(run.metrics_after).sort((a, b) => Number(b === dataset) - Number(a === dataset));
    const rows: HTMLElement[] = [];
    for (const name of datasets) {
      const before = run.metrics_before[name] ?? {};
      const after = run.metrics_after[name] ?? {};
      for (const metric of METRICS) {
        const [b, a] = [before[metric], after[metric]];
        if (typeof b !== 'number' || typeof a !== 'number') continue;
        const delta = a - b;
        const trend = Math.abs(delta) < 5e-4 ? 'same' : delta > 0 ? 'up' : 'down';
        rows.push(h('tr', { class: `metric-delta ${trend}`, 'data-dataset': name, 'data-metric': metric },
          h('th', {}, name === dataset ? metric : `${name} ${metric}`),
          h('td', {}, fmt(b)), h('td', { class: 'arrow' }, '→'), h('td', {}, fmt(a)),
          h('td', { class: 'delta' }, `${trend === 'same' ? '' : delta > 0 ? '+' : '−'}${fmt(Math.abs(delta))}`)));
      }
    }
    const list = moved ?? run.moved.map((m) => ({ id: m.item_id, distance: m.distance }));
    const movedItems = list.map((m) => {
      const here = visible(m.id);
      const row = h('li', { class: here ? 'moved-point' : 'moved-point elsewhere', 'data-item-id': m.id, title: here ? 'show it' : 'not on this map' },
        h('span', { class: 'moved-id' }, shortId(m.id)), h('span', { class: 'moved-distance' }, fmt(m.distance, 2)));
      return here ? clickable(row, () => this.handlers.pick(m.id)) : row;
    });
    clear(this.result,
      h('h3', {}, `Run #${run.id} (${run.scope}, ${fmt(run.seconds, 1)} s)`),
      toggle,
      compareReady ? null : h('p', { class: 'hint' }, why ?? 'no stored map of the previous version for this dataset'),
      rows.length ? h('table', { class: 'metric-deltas' }, h('tbody', {}, ...rows)) : h('p', { class: 'hint' }, 'no task metrics'),
      h('h3', {}, moved ? 'Moved most on this map (2-D distance)' : 'Moved most (2-D distance, all maps)'),
      h('ol', { class: 'moved' }, ...movedItems),
    );
  }

  setCompare(mode: Compare): void {
    for (const [name, button] of this.compareButtons) button.classList.toggle('active', name === mode);
  }
}
