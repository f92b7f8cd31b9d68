// The projection's points as the front end keeps them, and their colour encodings.
import type { SetOut } from './api';
import type { Frame } from './frame';
import { CORRECT, NONE, SEVERAL_SETS, WRONG, categoryColor, palette } from './palette';

export const KIND_IMAGE = 0;
export const KIND_CAPTION = 1;
export const KIND_CONCEPT = 2;
export const KIND_LABELS = ['image', 'caption', 'concept text'];
/** Draw layer of each kind (see ``Glyphs.layer``): caption halos at the bottom, images over
 *  them (caption datasets have five per image), concept texts on top. */
export const KIND_LAYERS = [1, 0, 2];

export type ColorBy = 'label' | 'predicted' | 'correct' | 'set' | 'modality';
export const COLOR_BY_LABELS: Record<ColorBy, string> = {
  label: 'label',
  predicted: 'predicted class',
  correct: 'prediction correct?',
  set: 'set',
  modality: 'modality',
};

export interface Points {
  n: number;
  x: Float32Array;
  y: Float32Array;
  kind: Uint8Array;
  label: Int16Array;
  predicted: Int16Array;
  pair: Int32Array;
  ids: string[];
  labelNames: string[];
  index: Map<string, number>;
  tasks: string[];
}

export function pointsFromFrame(frame: Frame): Points {
  const c = frame.columns;
  const ids = c.id as string[];
  return {
    n: frame.n,
    x: c.x as Float32Array,
    y: c.y as Float32Array,
    kind: c.kind as Uint8Array,
    label: c.label as Int16Array,
    predicted: c.predicted as Int16Array,
    pair: c.pair as Int32Array,
    ids,
    labelNames: (frame.meta.label_names as string[]) ?? [],
    index: new Map(ids.map((id, i) => [id, i])),
    tasks: (frame.meta.tasks as string[]) ?? [],
  };
}

export interface LegendEntry {
  label: string;
  color: string;
  code: number;
  /** The rows the entry selects, where they are not just the points of its colour. */
  rows?: number[];
}

export interface Coloring {
  codes: Float32Array;
  colors: string[];
  legend: LegendEntry[];
  /** The legend names the point kinds (entry code = kind + 1): no separate glyph key. */
  byKind?: boolean;
  /** Why every point has no colour (shown in place of the legend). */
  hint?: string;
}

/** Which colourings make sense for these points; the first is the default. */
export function colorChoices(points: Points): ColorBy[] {
  const out: ColorBy[] = [];
  if (points.labelNames.length) out.push('label');
  if (points.predicted.some((p) => p >= 0)) out.push('predicted', 'correct');
  // Unlabelled data (e.g. a user's captioned photos): modality, not sets that may not exist yet.
  out.push(...(out.length ? ['set', 'modality'] : ['modality', 'set']) as ColorBy[]);
  return out;
}

function byLabel(points: Points, codeOf: (i: number) => number): Coloring {
  const codes = new Float32Array(points.n);
  for (let i = 0; i < points.n; i++) codes[i] = codeOf(i) + 1;
  const legend = points.labelNames.map((label, i) => ({ label, color: categoryColor(i + 1), code: i + 1 }));
  return { codes, colors: palette(points.labelNames.length), legend };
}

/** Colour category (0 = none) of every point, the colour table, and the legend. */
export function coloring(points: Points, by: ColorBy, sets: SetOut[]): Coloring {
  switch (by) {
    case 'label':
      return byLabel(points, (i) => points.label[i]);
    case 'predicted':
      // Images by their prediction; concept texts by the class they name.
      return byLabel(points, (i) => (points.kind[i] === KIND_IMAGE ? points.predicted[i] : points.label[i]));
    case 'correct': {
      const codes = new Float32Array(points.n);
      for (let i = 0; i < points.n; i++) {
        if (points.predicted[i] >= 0 && points.label[i] >= 0) {
          codes[i] = points.predicted[i] === points.label[i] ? 1 : 2;
        }
      }
      return {
        codes,
        colors: [NONE, CORRECT, WRONG],
        legend: [
          { label: 'correct', color: CORRECT, code: 1 },
          { label: 'wrong', color: WRONG, code: 2 },
        ],
      };
    }
    case 'set': {
      // A point in several sets gets its own colour: painting it with one of them would
      // hide its other memberships. A set's legend entry still selects all its members.
      const memberships = new Uint16Array(points.n);
      const members = sets.map((set) => {
        const rows = set.item_ids.map((id) => points.index.get(id)).filter((i): i is number => i !== undefined);
        for (const i of rows) memberships[i]++;
        return rows;
      });
      const several = sets.length + 1;
      const codes = new Float32Array(points.n);
      const colors = [NONE];
      const legend: LegendEntry[] = sets.map((set, s) => {
        const color = set.color ?? categoryColor(s + 1);
        colors.push(color);
        for (const i of members[s]) codes[i] = memberships[i] > 1 ? several : s + 1;
        return { label: set.name, color, code: s + 1, rows: members[s] };
      });
      colors.push(SEVERAL_SETS);
      if (memberships.some((m) => m > 1)) {
        legend.push({ label: 'in several sets', color: SEVERAL_SETS, code: several });
      }
      const hint = !sets.length
        ? 'No sets yet: save a selection as a set to colour its points.'
        : codes.some((c) => c > 0) ? undefined : 'No point of this map is in a set.';
      return { codes, colors, legend, hint };
    }
    case 'modality': {
      const codes = new Float32Array(points.n);
      for (let i = 0; i < points.n; i++) codes[i] = points.kind[i] + 1;
      const present = new Set(points.kind);
      const legend = KIND_LABELS.map((label, k) => ({ label, color: categoryColor(k + 1), code: k + 1 }))
        .filter((_, k) => present.has(k));
      return { codes, colors: palette(3), legend, byKind: true };
    }
  }
}

/** Glyph category (the kind) of every point, as the scatter plot wants it. */
export function glyphs(points: Points): Float32Array {
  return Float32Array.from(points.kind);
}

/** Concept texts grouped by the class they name: where class labels go on the map. */
export function conceptGroups(points: Points): { label: string; rows: number[] }[] {
  const groups = new Map<number, number[]>();
  for (let i = 0; i < points.n; i++) {
    if (points.kind[i] === KIND_CONCEPT && points.label[i] >= 0) {
      const rows = groups.get(points.label[i]) ?? [];
      rows.push(i);
      groups.set(points.label[i], rows);
    }
  }
  return [...groups.entries()].map(([code, rows]) => ({ label: points.labelNames[code], rows }));
}
