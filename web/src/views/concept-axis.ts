// Concept axis: two typed concepts define an axis, items are placed by
// cos(x, c_b) - cos(x, c_a); y is a second axis or one strip per colour group,
// with the distribution of every group drawn beside the plot.
import { api, ApiError } from '../api';
import { clear, fmt, h } from '../dom';
import { characters, hasVisibleCharacter } from '../text';
import type { Coloring, Points } from '../points';
import { glyphs, KIND_CONCEPT, KIND_LAYERS } from '../points';
import type { Renderer } from '../scatter';
import { Scatter } from '../scatter';
import { PointTooltip } from './tooltip';

const GLYPHS = { size: [5, 7, 15], opacity: [0.85, 0.45, 1], layer: KIND_LAYERS };
/** Points of a kind drawn at full opacity; above, opacity falls as 1/n (overlaps grow with n), to MIN_FADE. */
const FADE_FROM = 4000;
const MIN_FADE = 0.05;
const BINS = 24;
/** A strip label's line (style.css) and a pixel between two. */
const STRIP_PX = 13;
/** The strips fill this share of the plot's height (y in [-0.9, 0.9] of [-1, 1]). */
const STRIPS_SPAN = 0.9;
/** The plot grows to give each strip label its line up to this height (about 120 strips);
 *  past it, labels that would overlap wait until the user zooms in. */
const MAX_STRIPS_HEIGHT = 1600;

/** Opacity per kind: tens of thousands of images or captions would draw solid blocks, so
 * each fades with its count (the few concept texts stay opaque). */
function fadedOpacity(kinds: ArrayLike<number>): number[] {
  const count = GLYPHS.opacity.map(() => 0);
  for (let i = 0; i < kinds.length; i++) count[kinds[i]] += 1;
  return GLYPHS.opacity.map((o, kind) =>
    kind === KIND_CONCEPT ? o : o * Math.min(1, Math.max(MIN_FADE, FADE_FROM / Math.max(1, count[kind]))));
}

export interface AxisContext {
  dataset: string;
  encoder: string;
  points: Points;
  coloring: Coloring;
  maxLength: number;
}

interface Group {
  label: string;
  color: string;
  code: number;
}

/** A deterministic jitter in [-1, 1] for row i (no Math.random: the same picture every time). */
const jitter = (i: number): number => {
  const s = Math.sin(i * 12.9898 + 78.233) * 43758.5453;
  return 2 * (s - Math.floor(s)) - 1;
};

export class ConceptAxisView {
  readonly el = h('section', { class: 'view axis-view' });
  readonly scatter: Scatter;
  /** The map's area (what overlays it, e.g. notices, goes in here). */
  readonly stage = h('div', { class: 'stage' });
  pointCount = 0;
  rendered = false;
  private context?: AxisContext;
  private values?: { x: Float32Array; y?: Float32Array; concepts: string[] };
  private readonly inputs: HTMLInputElement[];
  private readonly secondAxis: HTMLInputElement;
  private readonly message = h('p', { class: 'form-message', role: 'alert' });
  private readonly overlay = h('div', { class: 'overlay axis-labels' });
  /** The x axis's end labels, under the plot: over it they would cover points and strip labels. */
  private readonly ends = h('div', { class: 'axis-ends' });
  private readonly distributions = h('div', { class: 'distributions' });
  private stripLabels: { el: HTMLElement; y: number }[] = [];

  private readonly tooltip = new PointTooltip();

  /** ``click(row)`` opens a point (a row of the context's points) in the instance detail. */
  constructor(renderer: Renderer, click: (index: number) => void) {
    const input = (name: string, placeholder: string) =>
      h('input', { type: 'text', name, placeholder, autocomplete: 'off' });
    this.inputs = [
      input('concept_a', 'concept A, e.g. "a photo of a cat"'),
      input('concept_b', 'concept B, e.g. "a photo of a dog"'),
      input('concept_c', 'second axis: concept C'),
      input('concept_d', 'second axis: concept D'),
    ];
    this.secondAxis = h('input', { type: 'checkbox', name: 'second_axis' });
    const second = h('span', { class: 'second-axis', hidden: true }, this.inputs[2], '→', this.inputs[3]);
    this.secondAxis.addEventListener('change', () => (second.hidden = !this.secondAxis.checked));
    const form = h('form', { class: 'axis-form' },
      this.inputs[0], h('span', { class: 'arrow' }, '→'), this.inputs[1],
      h('label', { class: 'check' }, this.secondAxis, 'second axis'), second,
      h('button', { type: 'submit' }, 'place items'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    const plot = h('div', { class: 'axis-plot' }, this.stage, this.ends);
    this.el.append(form, this.message, h('div', { class: 'axis-body' }, plot, this.distributions));
    this.scatter = new Scatter(
      this.stage,
      renderer,
      GLYPHS,
      { view: () => this.placeLabels(), hover: (i) => this.hover(i), hoverEnd: () => this.tooltip.hide(), click },
      true,
    );
    this.stage.append(this.overlay, this.tooltip.el);
  }

  setContext(context: AxisContext): void {
    const changed = context.points !== this.context?.points;
    this.context = context;
    if (changed) {
      this.values = undefined;
      this.rendered = false;
      this.pointCount = 0;
      this.scatter.clear();
      this.fitStrips(0);
      clear(this.overlay);
      clear(this.ends);
      clear(this.distributions, h('p', { class: 'hint' }, 'Type two concepts and press “place items”.'));
    } else if (this.values) {
      void this.draw();
    }
  }

  /** Check the typed concepts; returns the message to show, or null when they are fine. */
  private validate(texts: string[]): string | null {
    const max = this.context?.maxLength ?? 200;
    const names = ['A', 'B', 'C', 'D'];
    for (const [i, text] of texts.entries()) {
      if (!text.trim()) return `Concept ${names[i]} is empty: type a word or a phrase.`;
      if (!hasVisibleCharacter(text)) return `Concept ${names[i]} has no visible character: type a word or a phrase.`;
      const length = characters(text.trim());
      if (length > max) return `Concept ${names[i]} is ${length} characters long; at most ${max} are allowed.`;
    }
    if (texts[0].trim() === texts[1].trim()) return 'Concepts A and B are the same: the axis would be flat.';
    if (texts.length === 4 && texts[2].trim() === texts[3].trim()) {
      return 'Concepts C and D are the same: the second axis would be flat.';
    }
    return null;
  }

  async submit(): Promise<void> {
    const context = this.context;
    if (!context) return;
    const count = this.secondAxis.checked ? 4 : 2;
    const texts = this.inputs.slice(0, count).map((i) => i.value);
    const problem = this.validate(texts);
    this.message.textContent = problem ?? '';
    this.message.classList.toggle('error', Boolean(problem));
    if (problem) return;
    try {
      this.message.textContent = 'encoding the concepts…';
      const frame = await api.conceptAxis({
        dataset: context.dataset,
        encoder: context.encoder,
        concept_a: texts[0].trim(),
        concept_b: texts[1].trim(),
        concept_c: count === 4 ? texts[2].trim() : null,
        concept_d: count === 4 ? texts[3].trim() : null,
      });
      this.values = {
        x: frame.columns.x as Float32Array,
        y: frame.columns.y as Float32Array | undefined,
        concepts: texts.map((t) => t.trim()),
      };
      this.message.textContent = '';
      await this.draw();
    } catch (error) {
      this.message.classList.add('error');
      this.message.textContent = error instanceof ApiError ? error.message : String(error);
    }
  }

  private groups(): Group[] {
    const c = this.context!.coloring;
    const present = new Set(c.codes);
    const groups: Group[] = c.legend.filter((g) => present.has(g.code));
    if (present.has(0)) groups.push({ label: 'other', color: c.colors[0], code: 0 });
    return groups;
  }

  private async draw(): Promise<void> {
    const context = this.context!;
    const values = this.values!;
    const { points, coloring } = context;
    const n = points.n;
    const scale = (v: Float32Array) => {
      let m = 1e-6;
      for (const a of v) m = Math.max(m, Math.abs(a));
      return 0.95 / m;
    };
    const sx = scale(values.x) * 0.97;
    const x = values.x.map((v) => v * sx);
    const groups = this.groups();
    const stripOf = new Map(groups.map((g, s) => [g.code, s]));
    let y: Float32Array;
    this.stripLabels = [];
    if (values.y) {
      const sy = scale(values.y);
      y = values.y.map((v) => v * sy);
    } else {
      // One strip per group in [-STRIPS_SPAN, STRIPS_SPAN].
      const height = (2 * STRIPS_SPAN) / groups.length;
      y = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const s = stripOf.get(coloring.codes[i]) ?? 0;
        y[i] = STRIPS_SPAN - (s + 0.5) * height + jitter(i) * height * 0.35;
      }
      this.stripLabels = groups.map((g, s) => ({
        el: h('div', { class: 'strip-label', style: `color:${g.color}`, title: g.label }, g.label),
        y: STRIPS_SPAN - (s + 0.5) * height,
      }));
    }
    this.fitStrips(this.stripLabels.length);
    this.scatter.setOpacity(fadedOpacity(points.kind));
    await this.scatter.draw({ x, y, color: coloring.codes, glyph: glyphs(points) }, coloring.colors);
    this.scatter.annotate([{ x: 0, y1: -1, y2: 1, lineColor: [1, 1, 1, 0.35], lineWidth: 1 }]);
    const [a, b, c, d] = values.concepts;
    const end = (side: string, text: string) => h('div', { class: `axis-end ${side}`, title: text }, text);
    clear(this.ends, end('left', `← ${a}`), end('right', `${b} →`));
    const ends = c && d ? [end('bottom', `↓ ${c}`), end('top', `${d} ↑`)] : [];
    clear(this.overlay, ...ends, ...this.stripLabels.map((s) => s.el));
    this.placeLabels();
    this.renderDistributions(groups, values.x, coloring.codes, values.concepts);
    this.pointCount = this.scatter.count;
    this.rendered = true;
  }

  private hover(index: number): void {
    const pos = this.scatter.screenPosition(index);
    if (this.context && pos) void this.tooltip.show(this.context.points, index, pos, this.context);
  }

  /** Make the plot tall enough for ``strips`` labels, one line each (the view scrolls when
   *  the window is shorter); 0 for none (a second axis). */
  private fitStrips(strips: number): void {
    const height = Math.min(MAX_STRIPS_HEIGHT, Math.ceil((strips * STRIP_PX) / STRIPS_SPAN));
    this.stage.style.setProperty('--strips-height', `${height}px`);
    this.scatter.resize(); // now, not at the next resize event: the labels are placed next
  }

  /** Put each strip's label at its strip, top to bottom; one that would overlap the label
   *  above it is hidden (zooming out, or more strips than MAX_STRIPS_HEIGHT has lines for;
   *  zooming in spreads the strips and shows it again). */
  private placeLabels(): void {
    const height = this.stripLabels[0]?.el.offsetHeight ?? 0; // read once: the loop writes styles
    let taken = -Infinity; // the bottom of the last label shown
    for (const s of this.stripLabels) {
      const top = this.scatter.toScreen(-1, s.y)[1] - height / 2;
      const free = top >= taken;
      if (free) taken = top + height;
      s.el.style.visibility = free ? '' : 'hidden';
      s.el.style.transform = `translate(4px, ${top}px)`;
    }
  }

  private renderDistributions(groups: Group[], x: Float32Array, codes: Float32Array, concepts: string[]): void {
    let m = 1e-6;
    for (const v of x) m = Math.max(m, Math.abs(v));
    const rows = groups.map((g) => {
      const counts = new Array<number>(BINS).fill(0);
      let sum = 0;
      let n = 0;
      for (let i = 0; i < x.length; i++) {
        if (codes[i] !== g.code) continue;
        counts[Math.min(BINS - 1, Math.floor(((x[i] + m) / (2 * m)) * BINS))]++;
        sum += x[i];
        n++;
      }
      return { group: g, counts, mean: n ? sum / n : NaN, n };
    });
    const svgNs = 'http://www.w3.org/2000/svg';
    const histogram = (counts: number[], color: string, mean: number) => {
      const svg = document.createElementNS(svgNs, 'svg');
      svg.setAttribute('viewBox', `0 0 ${BINS} 10`);
      svg.setAttribute('preserveAspectRatio', 'none');
      svg.setAttribute('class', 'histogram');
      const top = Math.max(...counts, 1);
      counts.forEach((count, bin) => {
        const rect = document.createElementNS(svgNs, 'rect');
        const height = (10 * count) / top;
        rect.setAttribute('x', String(bin + 0.05));
        rect.setAttribute('y', String(10 - height));
        rect.setAttribute('width', '0.9');
        rect.setAttribute('height', String(height));
        rect.setAttribute('fill', color);
        svg.append(rect);
      });
      for (const [pos, cls] of [[BINS / 2, 'zero'], [((mean + m) / (2 * m)) * BINS, 'mean']] as const) {
        const line = document.createElementNS(svgNs, 'line');
        line.setAttribute('x1', String(pos));
        line.setAttribute('x2', String(pos));
        line.setAttribute('y1', '0');
        line.setAttribute('y2', '10');
        line.setAttribute('class', cls);
        svg.append(line);
      }
      return svg;
    };
    clear(
      this.distributions,
      h('h3', {}, `cos(x, “${concepts[1]}”) − cos(x, “${concepts[0]}”)`),
      ...rows.map((r) =>
        h('div', { class: 'dist-row' },
          h('span', { class: 'dist-name', style: `color:${r.group.color}`, title: r.group.label }, r.group.label),
          histogram(r.counts, r.group.color, r.mean),
          h('span', { class: 'dist-mean', title: `mean over ${r.n} items` }, fmt(r.mean, 3)),
        ),
      ),
    );
  }
}
