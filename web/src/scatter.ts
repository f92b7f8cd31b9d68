// A WebGL scatter plot (regl-scatterplot) with categorical colours, per-kind glyphs
// (size and opacity by kind), hover/click/lasso events and data -> screen mapping.
import createScatterplot, { createRenderer } from 'regl-scatterplot';
import { type Candidate, PointGrid, pointAtPointer } from './pick';

export type Renderer = ReturnType<typeof createRenderer>;
type Plot = ReturnType<typeof createScatterplot>;

/** Points in normalised coordinates ([-1, 1]) with integer colour and glyph categories. */
export interface ScatterPoints {
  x: Float32Array;
  y: Float32Array;
  color: Float32Array;
  glyph: Float32Array;
}

/** Size (px), opacity and layer of each glyph category. */
export interface Glyphs {
  size: number[];
  opacity: number[];
  /** Draw order: categories of a higher layer are drawn later, on top (default: all 0). */
  layer?: number[];
}

export interface ScatterEvents {
  click?: (index: number) => void;
  lasso?: (indices: number[]) => void;
  emptyLasso?: () => void;
  /** The plot dropped its selection itself (Escape, a double click, an empty lasso). */
  deselect?: () => void;
  hover?: (index: number) => void;
  hoverEnd?: () => void;
  view?: () => void;
}

/** How far (px) the mouse may move between press and release for a click (the plot's
 *  ``lassoMinDist``). */
const CLICK_DISTANCE = 3;
/** How much (px) a selected point's disc grows: ``pointSizeSelected`` plus two outlines. */
const SELECTED_GROWTH = 2 + 2 * 2;

export function sharedRenderer(): Renderer {
  return createRenderer();
}

/**
 * Scale coordinates into [-margin, margin], keeping the aspect ratio when asked.
 * With ``reference``, the scaling that fits the reference points is applied instead (so two
 * layouts in the same frame, e.g. before and after an alignment, stay comparable).
 */
export function normalise(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  keepAspect = true,
  margin = 0.92,
  reference?: { x: ArrayLike<number>; y: ArrayLike<number> },
): { x: Float32Array; y: Float32Array } {
  const n = xs.length;
  const [bx, by] = reference ? [reference.x, reference.y] : [xs, ys];
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (let i = 0; i < bx.length; i++) {
    x0 = Math.min(x0, bx[i]);
    x1 = Math.max(x1, bx[i]);
    y0 = Math.min(y0, by[i]);
    y1 = Math.max(y1, by[i]);
  }
  let sx = (x1 - x0) / 2 || 1;
  let sy = (y1 - y0) / 2 || 1;
  if (keepAspect) sx = sy = Math.max(sx, sy);
  const [cx, cy] = [(x0 + x1) / 2, (y0 + y1) / 2];
  const x = new Float32Array(n);
  const y = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    x[i] = ((xs[i] - cx) / sx) * margin;
    y[i] = ((ys[i] - cy) / sy) * margin;
  }
  return { x, y };
}

export class Scatter {
  readonly canvas: HTMLCanvasElement;
  readonly plot: Plot;
  count = 0;
  /** The points in the caller's order; the plot holds them in draw order (see ``arrange``). */
  private points?: ScatterPoints;
  /** Plot index -> caller's index, and the reverse. */
  private order = new Uint32Array(0);
  private rank = new Uint32Array(0);
  private spatialIndex?: ArrayBuffer;
  /** The drawn positions (plot order) and a grid over them, for ``pointAt``. */
  private drawn?: { x: Float32Array; y: Float32Array; grid: PointGrid };
  /** Plot indices drawn as selected: on top of the others, with an outline. */
  private selected = new Set<number>();
  /** Plot index of the point under the mouse, -1 for none. */
  private hovered = -1;
  private drawing: Promise<void> = Promise.resolve();
  /** Camera distance of the view that shows every point (see ``homeDistance``). */
  private home = 1;
  private readonly resizer: ResizeObserver;

  constructor(
    private readonly container: HTMLElement,
    renderer: Renderer,
    private readonly glyphs: Glyphs,
    events: ScatterEvents,
    private readonly fillWidth = false,
  ) {
    this.canvas = document.createElement('canvas');
    this.canvas.className = 'scatter-canvas';
    container.append(this.canvas);
    const { width, height } = this.size();
    this.plot = createScatterplot({
      canvas: this.canvas,
      renderer,
      width,
      height,
      aspectRatio: fillWidth ? width / height : 1,
      backgroundColor: '#14171c',
      pointSize: glyphs.size,
      opacity: glyphs.opacity,
      sizeBy: 'valueB',
      opacityBy: 'valueB',
      colorBy: 'valueA',
      pointColorHover: '#ffffff',
      pointColorActive: '#ffffff',
      pointSizeSelected: 2,
      pointOutlineWidth: 2,
      lassoColor: '#7fb2ff',
      lassoMinDelay: 10,
      lassoClearEvent: 'lassoEnd',
      deselectOnDblClick: true,
      deselectOnEscape: true,
    });
    this.plot.subscribe('select', ({ points }) => {
      this.selected = new Set(points);
      if (points.length === 1) events.click?.(this.order[points[0]]);
    });
    this.plot.subscribe('lassoEnd', () => {
      const selected = this.plot.get('selectedPoints') as number[];
      if (selected.length) events.lasso?.(selected.map((i) => this.order[i]));
      else events.emptyLasso?.();
    });
    this.plot.subscribe('deselect', () => {
      this.selected.clear();
      events.deselect?.(); // not fired by calls that prevent events
    });
    // Clicks and hovers on a point are resolved here (see ``pointAt``), not by the plot.
    let down = [0, 0];
    container.addEventListener('mousedown', (e) => (down = [e.clientX, e.clientY]), { capture: true });
    container.addEventListener('click', (e) => {
      if (Math.hypot(e.clientX - down[0], e.clientY - down[1]) < CLICK_DISTANCE) this.click(e);
    }, { capture: true });
    const hover = (index: number) => {
      this.plot.hover(index, { preventEvent: true }); // the plot highlights the same point
      if (index === this.hovered) return;
      this.hovered = index;
      if (index >= 0) events.hover?.(this.order[index]);
      else events.hoverEnd?.();
    };
    // After the plot's own handler (registered first), which highlights its nearest point.
    window.addEventListener('mousemove', (e) => {
      const over = e.target === this.canvas && !e.buttons; // not while panning or lassoing
      if (over || this.hovered >= 0) hover(over ? this.pointAt(e.clientX, e.clientY) : -1);
    });
    this.canvas.addEventListener('mouseleave', () => hover(-1));
    this.plot.subscribe('view', () => events.view?.());
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(container);
  }

  /** Select the point shown under ``click`` (a click beside every point goes on to the plot). */
  private click(click: MouseEvent): void {
    const index = click.target === this.canvas ? this.pointAt(click.clientX, click.clientY) : -1;
    if (index < 0) return;
    click.stopPropagation(); // the plot would pick the nearest centre instead
    // regl-scatterplot reports no selection when the point already is the selection, yet a
    // click must always open its point.
    if (this.selected.size === 1 && this.selected.has(index)) this.plot.deselect({ preventEvent: true });
    this.plot.select([index]);
  }

  /** Plot index of the point the user sees at a client position, -1 for none: the disc
   *  drawn on top there (selected points are drawn last), else the nearest within the plot's
   *  pick radius. */
  private pointAt(clientX: number, clientY: number): number {
    if (!this.drawn || !this.points) return -1;
    const rect = this.canvas.getBoundingClientRect();
    const [px, py] = [clientX - rect.left, clientY - rect.top];
    const scale = this.pointScale();
    const tolerance = Math.max(...this.glyphs.size) * scale + 4 / window.devicePixelRatio; // as the plot's raycast
    const [a, b, c, d, e, f] = this.screenMap();
    const det = a * e - b * d;
    const [x, y] = [(e * (px - c) - b * (py - f)) / det, (a * (py - f) - d * (px - c)) / det];
    const { x: xs, y: ys, grid } = this.drawn;
    const n = xs.length;
    const candidates: Candidate[] = grid.near(x, y, tolerance / Math.hypot(a, d), tolerance / Math.hypot(b, e)).map((j) => {
      const chosen = this.selected.has(j);
      const size = this.glyphs.size[this.points!.glyph[this.order[j]]] * scale + (chosen ? SELECTED_GROWTH : 0);
      const distance = Math.hypot(a * xs[j] + b * ys[j] + c - px, d * xs[j] + e * ys[j] + f - py);
      return { index: j, distance, radius: size / 2, order: chosen ? n + j : j };
    });
    return pointAtPointer(candidates, tolerance);
  }

  /** Point size factor (CSS px) at the current zoom: regl-scatterplot's 'asinh' scaling. */
  private pointScale(): number {
    const view = this.plot.get('cameraView') as Float32Array;
    const scaling = Math.hypot(view[0], view[1], view[2]);
    if (scaling > 1) return Math.asinh(scaling) / Math.asinh(1);
    return Math.max(1 / this.glyphs.size[0], scaling); // the plot's minPointScale
  }

  /** The affine map of ``toScreen`` as [a, b, c, d, e, f]: px = a·x + b·y + c, py = d·x + e·y + f. */
  private screenMap(): number[] {
    const [c, f] = this.toScreen(0, 0);
    const [x1, y1] = this.toScreen(1, 0);
    const [x2, y2] = this.toScreen(0, 1);
    return [x1 - c, x2 - c, c, y1 - f, y2 - f, f];
  }

  private size(): { width: number; height: number } {
    const rect = this.container.getBoundingClientRect();
    return { width: Math.max(1, Math.floor(rect.width)), height: Math.max(1, Math.floor(rect.height)) };
  }

  resize(): void {
    const wasHome = this.atHome();
    const { width, height } = this.size();
    const props: Record<string, number> = { width, height };
    if (this.fillWidth) props.aspectRatio = width / height;
    this.plot.set(props);
    if (wasHome) this.resetView(); // keep a user's zoom, but refit the untouched view
  }

  /** Camera distance that shows the whole data square [-1, 1]²: regl-scatterplot's default
   *  view fits the height only, which crops the sides of a canvas taller than wide. */
  private homeDistance(): number {
    const { width, height } = this.size();
    return this.fillWidth ? 1 : Math.max(1, height / width);
  }

  private atHome(): boolean {
    const [tx, ty] = this.plot.get('cameraTarget') as number[];
    const distance = this.plot.get('cameraDistance') as number;
    return Math.abs(tx) + Math.abs(ty) < 1e-6 && Math.abs(distance - this.home) < 1e-6;
  }

  /** Back to the view that shows every point. */
  resetView(): void {
    this.plot.reset();
    this.home = this.homeDistance();
    if (this.home !== 1) this.plot.set({ cameraDistance: this.home });
  }

  /** Run ``work`` after every earlier draw has finished (regl-scatterplot ignores a draw
   *  that starts while the previous one is still running). */
  private serial(work: () => Promise<void>): Promise<void> {
    const next = this.drawing.then(work, work);
    this.drawing = next.catch(() => undefined);
    return next;
  }

  /** Set the draw order: by glyph layer, then the caller's order (one pass per layer). */
  private arrange(glyph: Float32Array): void {
    const layerOf = (i: number) => this.glyphs.layer?.[glyph[i]] ?? 0;
    const layers = [...new Set(Array.from(glyph.keys(), layerOf))].sort((a, b) => a - b);
    const order = new Uint32Array(glyph.length);
    let k = 0;
    for (const layer of layers) for (let i = 0; i < glyph.length; i++) if (layerOf(i) === layer) order[k++] = i;
    this.order = order;
    this.rank = new Uint32Array(order.length);
    order.forEach((index, j) => (this.rank[index] = j));
  }

  /** The points in draw order, as regl-scatterplot takes them. */
  private drawData(points: ScatterPoints) {
    const ordered = (values: Float32Array) => Float32Array.from(this.order, (index) => values[index]);
    return { x: ordered(points.x), y: ordered(points.y), valueA: ordered(points.color), valueB: ordered(points.glyph) };
  }

  /** Remember where the points are drawn (plot order), for ``pointAt``. */
  private placed(data: { x: Float32Array; y: Float32Array }): void {
    this.drawn = { x: data.x, y: data.y, grid: new PointGrid(data.x, data.y) };
  }

  /** Draw new points (a new spatial index is built). */
  draw(points: ScatterPoints, colors: string[]): Promise<void> {
    return this.serial(async () => {
      this.points = points;
      this.arrange(points.glyph);
      this.plot.set({ pointColor: colors });
      this.plot.deselect({ preventEvent: true });
      this.selected.clear();
      this.hovered = -1;
      const data = this.drawData(points);
      await this.plot.draw(data, { zDataType: 'categorical', wDataType: 'categorical' });
      this.placed(data);
      this.spatialIndex = this.plot.get('spatialIndex') as ArrayBuffer;
      this.count = points.x.length;
      this.resetView();
    });
  }

  /** Opacity per glyph category (replacing the constructor's), e.g. to keep dense plots readable. */
  setOpacity(opacity: number[]): void {
    this.plot.set({ opacity });
  }

  /** New colour categories for the same points (the spatial index is reused). */
  recolor(color: Float32Array, colors: string[]): Promise<void> {
    return this.serial(async () => {
      if (!this.points) return;
      this.points = { ...this.points, color };
      this.plot.set({ pointColor: colors });
      await this.plot.draw(this.drawData(this.points), {
        zDataType: 'categorical',
        wDataType: 'categorical',
        spatialIndex: this.spatialIndex,
        preventFilterReset: true,
      });
    });
  }

  /** Move the same points to new positions, animated over ``duration`` ms. */
  move(x: Float32Array, y: Float32Array, duration = 800): Promise<void> {
    return this.serial(async () => {
      if (!this.points || x.length !== this.points.x.length) return;
      const selected = [...(this.plot.get('selectedPoints') as number[])];
      this.points = { ...this.points, x, y };
      const ended =
        duration > 0 ? new Promise<void>((resolve) => this.plot.subscribe('transitionEnd', () => resolve(), 1)) : null;
      const data = this.drawData(this.points);
      await this.plot.draw(data, {
        zDataType: 'categorical',
        wDataType: 'categorical',
        transition: duration > 0,
        transitionDuration: duration,
        preventFilterReset: true,
      });
      if (ended) await ended;
      this.placed(data);
      this.spatialIndex = this.plot.get('spatialIndex') as ArrayBuffer;
      if (selected.length) this.plot.select(selected, { preventEvent: true }); // draw order
    });
  }

  clear(): void {
    this.plot.clear();
    this.points = undefined;
    this.drawn = undefined;
    this.selected.clear();
    this.hovered = -1;
    this.count = 0;
  }

  select(indices: number[]): void {
    const ranks = indices.map((i) => this.rank[i]);
    this.plot.select(ranks, { preventEvent: true });
    this.selected = new Set(ranks);
  }

  /** Lasso a polygon given in normalised (GL) coordinates: same path as a drawn lasso. */
  lasso(vertices: [number, number][]): void {
    this.plot.lassoSelect(vertices, { isGl: true });
  }

  setLassoMode(on: boolean): void {
    this.plot.set({ mouseMode: on ? 'lasso' : 'panZoom' });
  }

  screenPosition(index: number): [number, number] | undefined {
    return this.count ? this.plot.getScreenPosition(this.rank[index]) : undefined;
  }

  /** Canvas pixel position of a point given in normalised coordinates. */
  toScreen(x: number, y: number): [number, number] {
    const view = this.plot.get('cameraView') as Float32Array;
    const { width, height } = this.size();
    const dataAspect = this.fillWidth ? width / height : 1;
    const mx = x * dataAspect;
    const cx = (view[0] * mx + view[4] * y + view[12]) / (width / height);
    const cy = view[1] * mx + view[5] * y + view[13];
    return [(width * (cx + 1)) / 2, height * (0.5 - cy / 2)];
  }

  annotate(annotations: Parameters<Plot['drawAnnotations']>[0]): void {
    void this.plot.drawAnnotations(annotations);
  }
}
