// A WebGL scatter plot (regl-scatterplot) with categorical colours, per-kind glyphs
// (size and opacity by kind), hover/click/lasso events and data -> screen mapping.
import createScatterplot, { createRenderer } from 'regl-scatterplot';

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

/** How far (px) the mouse may move between press and release for a click (as the plot's). */
const CLICK_DISTANCE = 2;

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
      if (points.length === 1) events.click?.(this.order[points[0]]);
    });
    this.plot.subscribe('lassoEnd', () => {
      const selected = this.plot.get('selectedPoints') as number[];
      if (selected.length) events.lasso?.(selected.map((i) => this.order[i]));
      else events.emptyLasso?.();
    });
    this.plot.subscribe('pointOver', (i) => events.hover?.(this.order[i]));
    this.plot.subscribe('pointOut', () => events.hoverEnd?.());
    this.plot.subscribe('deselect', () => events.deselect?.()); // not fired by calls that prevent events
    // regl-scatterplot reports no selection when the clicked point already is the selection,
    // yet a click must always open its point: deselect it silently just before the plot's click.
    let down = [0, 0];
    container.addEventListener('mousedown', (e) => (down = [e.clientX, e.clientY]), { capture: true });
    container.addEventListener('click', (e) => {
      if (Math.hypot(e.clientX - down[0], e.clientY - down[1]) < CLICK_DISTANCE) this.forgetClickedSelection(e);
    }, { capture: true });
    this.plot.subscribe('view', () => events.view?.());
    this.resizer = new ResizeObserver(() => this.resize());
    this.resizer.observe(container);
  }

  /** Deselect the only selected point when ``click`` lands on it. */
  private forgetClickedSelection(click: MouseEvent): void {
    const selected = this.plot.get('selectedPoints') as number[];
    if (selected.length !== 1 || !this.points) return;
    const [x, y] = this.plot.getScreenPosition(selected[0]) ?? [NaN, NaN];
    const canvas = this.canvas.getBoundingClientRect();
    const radius = this.glyphs.size[this.points.glyph[this.order[selected[0]]]] / 2 + CLICK_DISTANCE;
    if (Math.hypot(click.clientX - canvas.left - x, click.clientY - canvas.top - y) <= radius) {
      this.plot.deselect({ preventEvent: true });
    }
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

  /** Draw new points (a new spatial index is built). */
  draw(points: ScatterPoints, colors: string[]): Promise<void> {
    return this.serial(async () => {
      this.points = points;
      this.arrange(points.glyph);
      this.plot.set({ pointColor: colors });
      this.plot.deselect({ preventEvent: true });
      await this.plot.draw(this.drawData(points), { zDataType: 'categorical', wDataType: 'categorical' });
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
      await this.plot.draw(this.drawData(this.points), {
        zDataType: 'categorical',
        wDataType: 'categorical',
        transition: duration > 0,
        transitionDuration: duration,
        preventFilterReset: true,
      });
      if (ended) await ended;
      this.spatialIndex = this.plot.get('spatialIndex') as ArrayBuffer;
      if (selected.length) this.plot.select(selected, { preventEvent: true }); // draw order
    });
  }

  clear(): void {
    this.plot.clear();
    this.points = undefined;
    this.count = 0;
  }

  select(indices: number[]): void {
    this.plot.select(indices.map((i) => this.rank[i]), { preventEvent: true });
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
