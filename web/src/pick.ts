// Which point a click or a hover means. regl-scatterplot takes the point whose centre is
// nearest the pointer, whatever is drawn on top: a click at an image dot's centre could open
// a caption halo drawn under it whose centre lies a fraction of a pixel closer.

/** A uniform grid over point positions, to find the points near the pointer quickly. */
export class PointGrid {
  private readonly k: number;
  private readonly x0: number;
  private readonly y0: number;
  private readonly cellW: number;
  private readonly cellH: number;
  /** Points of cell c: ``items[start[c]]`` up to ``items[start[c + 1]]``. */
  private readonly start: Uint32Array;
  private readonly items: Uint32Array;

  constructor(x: ArrayLike<number>, y: ArrayLike<number>) {
    const n = x.length;
    this.k = Math.max(1, Math.ceil(Math.sqrt(n / 8))); // about eight points a cell
    let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
    for (let i = 0; i < n; i++) {
      x0 = Math.min(x0, x[i]);
      x1 = Math.max(x1, x[i]);
      y0 = Math.min(y0, y[i]);
      y1 = Math.max(y1, y[i]);
    }
    [this.x0, this.y0] = [x0, y0];
    this.cellW = (x1 - x0) / this.k || 1;
    this.cellH = (y1 - y0) / this.k || 1;
    const cellOf = new Uint32Array(n);
    this.start = new Uint32Array(this.k * this.k + 1);
    for (let i = 0; i < n; i++) {
      cellOf[i] = this.cell(this.column(x[i]), this.row(y[i]));
      this.start[cellOf[i] + 1]++;
    }
    for (let c = 0; c < this.k * this.k; c++) this.start[c + 1] += this.start[c];
    const fill = this.start.slice(0, -1);
    this.items = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.items[fill[cellOf[i]]++] = i;
  }

  private column(x: number): number {
    return Math.min(this.k - 1, Math.max(0, Math.floor((x - this.x0) / this.cellW)));
  }

  private row(y: number): number {
    return Math.min(this.k - 1, Math.max(0, Math.floor((y - this.y0) / this.cellH)));
  }

  private cell(column: number, row: number): number {
    return row * this.k + column;
  }

  /** Indices of the points in the cells that the rectangle x ± rx, y ± ry touches. */
  near(x: number, y: number, rx: number, ry: number): number[] {
    const out: number[] = [];
    const [c0, c1, r0, r1] = [this.column(x - rx), this.column(x + rx), this.row(y - ry), this.row(y + ry)];
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) {
        const cell = this.cell(c, r);
        for (let s = this.start[cell]; s < this.start[cell + 1]; s++) out.push(this.items[s]);
      }
    }
    return out;
  }
}

/** A point near the pointer: its draw position and visible size, in canvas pixels. */
export interface Candidate {
  index: number;
  /** Distance of its centre from the pointer. */
  distance: number;
  /** Radius of its disc as drawn. */
  radius: number;
  /** Draw order: a higher one is drawn later, on top. */
  order: number;
}

/**
 * The point the user sees at the pointer: of the discs that cover it, the one drawn last;
 * where none does (beside the dots), the nearest centre within ``tolerance`` px, as the plot
 * picks, so small dots stay easy to hit. -1 when there is none.
 */
export function pointAtPointer(candidates: Candidate[], tolerance: number): number {
  let [top, topOrder] = [-1, -Infinity];
  let [nearest, nearestDistance] = [-1, tolerance];
  for (const c of candidates) {
    if (c.distance <= c.radius && c.order > topOrder) [top, topOrder] = [c.index, c.order];
    if (c.distance < nearestDistance) [nearest, nearestDistance] = [c.index, c.distance];
  }
  return top >= 0 ? top : nearest;
}
