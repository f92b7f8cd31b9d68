// Projection view: the joint image+text map, with class labels, hover previews and a lasso.
import { clear, h } from '../dom';
import { type Coloring, conceptGroups, glyphs, KIND_LAYERS, type LegendEntry, type Points } from '../points';
import { normalise, type Renderer, Scatter } from '../scatter';
import { PointTooltip } from './tooltip';

/** A screen rectangle: left, top, right, bottom (px). */
type Box = [number, number, number, number];

export interface ProjectionHandlers {
  click: (index: number) => void;
  lasso: (indices: number[]) => void;
  emptyLasso: () => void;
  deselect: () => void;
}

/** Glyph key names, by kind. */
const GLYPH_NAMES = ['image', 'caption', 'concept'] as const;

/** Image dots, caption halos (bigger, faint), concept texts as big discs. */
const GLYPHS = { size: [5, 7, 15], opacity: [0.9, 0.45, 1], layer: KIND_LAYERS };

export class ProjectionView {
  readonly el = h('section', { class: 'view projection-view' });
  readonly scatter: Scatter;
  /** The map's area (what overlays it, e.g. notices, goes in here). */
  readonly stage = h('div', { class: 'stage' });
  private readonly labels = h('div', { class: 'overlay labels' });
  private readonly tooltip = new PointTooltip();
  private readonly legend = h('div', { class: 'legend' });
  private readonly lassoButton: HTMLButtonElement;
  private readonly download: HTMLAnchorElement;
  private points?: Points;
  private groups: { label: string; rows: number[]; el: HTMLElement; size?: [number, number] }[] = [];
  private view = { dataset: '', encoder: '' };

  constructor(
    renderer: Renderer,
    private readonly handlers: ProjectionHandlers,
  ) {
    this.scatter = new Scatter(this.stage, renderer, GLYPHS, {
      click: handlers.click,
      lasso: handlers.lasso,
      emptyLasso: handlers.emptyLasso,
      deselect: handlers.deselect,
      hover: (i) => this.hover(i),
      hoverEnd: () => this.tooltip.hide(),
      view: () => this.placeLabels(),
    });
    this.lassoButton = h('button', { class: 'tool', title: 'Lasso (or hold Shift and drag)' }, 'lasso');
    let lassoOn = false;
    this.lassoButton.addEventListener('click', () => {
      lassoOn = !lassoOn;
      this.lassoButton.classList.toggle('active', lassoOn);
      this.scatter.setLassoMode(lassoOn);
    });
    const reset = h('button', { class: 'tool', title: 'Reset the view', onclick: () => this.scatter.resetView() }, 'reset view');
    this.download = h('a', { class: 'tool', download: '', title: 'Download x, y and item metadata as CSV', hidden: true }, 'download CSV');
    // Toolbar and legend sit outside the map, so they never cover points.
    this.el.replaceChildren(h('div', { class: 'toolbar' }, this.lassoButton, reset, this.download), this.stage, this.legend);
    this.stage.append(this.labels, this.tooltip.el);
  }

  /** Draw ``points``, the map of ``view`` (its dataset and encoder), coloured by ``coloring``. */
  async show(points: Points, coloring: Coloring, view: { dataset: string; encoder: string }): Promise<void> {
    this.points = points;
    this.view = view;
    const { x, y } = normalise(points.x, points.y);
    await this.scatter.draw({ x, y, color: coloring.codes, glyph: glyphs(points) }, coloring.colors);
    this.groups = conceptGroups(points).map((g) => ({ ...g, el: h('div', { class: 'concept-label' }, g.label) }));
    clear(this.labels, ...this.groups.map((g) => g.el));
    this.renderLegend(coloring);
    this.placeLabels();
  }

  /** Animate the shown points to other positions of the same frame (raw layout units). */
  async morph(xs: Float32Array, ys: Float32Array, duration = 800): Promise<void> {
    if (!this.points) return;
    const { x, y } = normalise(xs, ys, true, 0.92, this.points);
    await this.scatter.move(x, y, duration);
    this.placeLabels();
  }

  async recolor(coloring: Coloring): Promise<void> {
    await this.scatter.recolor(coloring.codes, coloring.colors);
    this.renderLegend(coloring);
  }

  /** Offer the shown layout as a CSV download (``null``: nothing to download). */
  setDownload(href: string | null): void {
    this.download.hidden = href === null;
    if (href === null) this.download.removeAttribute('href');
    else this.download.href = href;
  }

  clear(): void {
    this.tooltip.hide();
    this.setDownload(null);
    this.scatter.clear();
    this.points = undefined;
    clear(this.labels);
    clear(this.legend);
    this.groups = [];
  }

  private renderLegend(coloring: Coloring): void {
    // Coloured by kind, each entry shows its kind's glyph in its colour: one key, not two.
    const swatch = (e: LegendEntry) =>
      coloring.byKind
        ? h('span', { class: `glyph glyph-${GLYPH_NAMES[e.code - 1]}`, style: `background:${e.color}` })
        : h('span', { class: 'swatch', style: `background:${e.color}` });
    const present = new Set(this.points?.kind ?? []);
    const kinds = GLYPH_NAMES.filter((_, kind) => present.has(kind));
    // The entries scroll (many sets would take the map's room); the glyph key stays in view.
    clear(
      this.legend,
      h('div', { class: 'legend-entries' },
        coloring.hint ? h('span', { class: 'legend-hint' }, coloring.hint) : null,
        ...coloring.legend.map((e) =>
          h('button', { class: 'legend-entry', title: `select every ${e.label} point`, onclick: () => this.selectEntry(coloring, e) },
            swatch(e), h('span', { class: 'legend-label' }, e.label)),
        ),
      ),
      coloring.byKind
        ? null
        : h('span', { class: 'legend-entry glyphs' },
            ...kinds.flatMap((kind) => [h('span', { class: `glyph glyph-${kind}` }), `${kind} `])),
    );
  }

  /** Select the points of one legend entry, as a lasso around exactly them would. */
  private selectEntry(coloring: Coloring, entry: LegendEntry): void {
    const rows = entry.rows ?? [...coloring.codes.keys()].filter((i) => coloring.codes[i] === entry.code);
    this.scatter.select(rows);
    this.handlers.lasso(rows);
  }

  /** Put each class label at the centre of its concept texts; a label that would overlap
   *  one placed before it is hidden (zooming in spreads them out and shows it again). */
  private placeLabels(): void {
    const placed: Box[] = [];
    const stageWidth = this.labels.clientWidth; // read once: the loop writes styles
    for (const group of this.groups) {
      let [sx, sy] = [0, 0];
      for (const i of group.rows) {
        const p = this.scatter.screenPosition(i);
        if (p) {
          sx += p[0];
          sy += p[1];
        }
      }
      const [x, y] = [sx / group.rows.length, sy / group.rows.length];
      group.size ??= [group.el.offsetWidth, group.el.offsetHeight];
      const [width, height] = group.size;
      // Right of the centre, or left of it where the right side would leave the map.
      let left = x + 10;
      if (left + width > stageWidth) left = Math.max(0, x - 10 - width);
      const box: Box = [left, y - 8, left + width, y - 8 + height];
      const free = placed.every((b) => box[0] >= b[2] || box[2] <= b[0] || box[1] >= b[3] || box[3] <= b[1]);
      if (free) placed.push(box);
      group.el.style.visibility = free ? '' : 'hidden';
      group.el.style.transform = `translate(${box[0]}px, ${box[1]}px)`;
    }
  }

  private hover(index: number): void {
    const pos = this.scatter.screenPosition(index);
    if (this.points && pos) void this.tooltip.show(this.points, index, pos, this.view);
  }
}
