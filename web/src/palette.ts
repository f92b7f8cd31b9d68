// Colours: category 0 is always "none" (grey); categories 1.. cycle through Tableau 10.

export const NONE = '#5f6670';
const TABLEAU = [
  '#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f',
  '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac',
];
const EXTRA = ['#1f77b4', '#aec7e8', '#ffbb78', '#98df8a', '#ff9896', '#c5b0d5', '#c49c94'];

/** The colour of category `i` (1-based; 0 is none). */
export function categoryColor(i: number): string {
  if (i <= 0) return NONE;
  const all = [...TABLEAU, ...EXTRA];
  return all[(i - 1) % all.length];
}

/** A palette of `n` categories plus "none" at index 0. */
export function palette(n: number): string[] {
  return Array.from({ length: n + 1 }, (_, i) => categoryColor(i));
}

export const CORRECT = '#59a14f';
export const WRONG = '#e15759';
/** Points that belong to more than one set. */
export const SEVERAL_SETS = '#f2f2f2';
