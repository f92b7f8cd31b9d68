// Metrics panel: task metrics (zero-shot accuracy + confusion matrix, or Recall@k) and the
// current projection's inter-modal trustworthiness / continuity.
import type { ProjectionMeta, TaskMetrics } from '../api';
import { clear, fmt, h } from '../dom';

export class MetricsPanel {
  readonly el = h('section', { class: 'panel metrics' }, h('h2', {}, 'Metrics'));
  private readonly task = h('div', { class: 'task-metrics' });
  private readonly projection = h('div', { class: 'projection-metrics' });

  constructor() {
    this.el.append(this.task, this.projection);
  }

  renderTask(metrics: TaskMetrics | null, task: string): void {
    if (!metrics || !metrics.task) {
      clear(this.task, h('p', { class: 'hint' }, `no ${task || 'task'} metrics for this dataset`));
      return;
    }
    if (metrics.task === 'zero-shot classification' && metrics.confusion && metrics.classes) {
      clear(
        this.task,
        h('div', { class: 'big-number' }, h('span', { class: 'value', 'data-metric': 'accuracy' }, fmt(metrics.accuracy)),
          h('span', { class: 'caption' }, `zero-shot accuracy on ${metrics.n} images`)),
        confusionTable(metrics.classes, metrics.confusion),
      );
    } else if (metrics.recall) {
      const ks = [...new Set(Object.keys(metrics.recall).map((k) => k.split('@')[1]))];
      const table = h('table', { class: 'recall' },
        h('thead', {}, h('tr', {}, h('th', {}, ''), ...ks.map((k) => h('th', {}, `R@${k}`)))),
        h('tbody', {}, ...[['t2i', 'text → image'], ['i2t', 'image → text']].map(([d, name]) =>
          h('tr', {}, h('th', {}, name), ...ks.map((k) => h('td', { 'data-metric': `${d}_R@${k}` }, fmt(metrics.recall![`${d}_R@${k}`])))))),
      );
      clear(this.task, h('h3', {}, 'Retrieval recall'), table);
    }
  }

  renderProjection(meta: ProjectionMeta | null): void {
    if (!meta) {
      clear(this.projection);
      return;
    }
    const m = meta.metrics as Record<string, unknown>;
    const ks = (m.ks as number[] | undefined) ?? [10];
    const k = ks.includes(10) ? 10 : ks[0];
    const cell = (key: string) => {
      const value = m[`${key}@${k}`];
      return h('td', { 'data-metric': key }, typeof value === 'number' ? fmt(value) : '–');
    };
    const row = (name: string, suffix: string) =>
      h('tr', {}, h('th', {}, name), cell(`inter_T${suffix}`), cell(`inter_C${suffix}`));
    clear(
      this.projection,
      h('h3', {}, `Projection quality (${meta.method}, k = ${k})`),
      h('table', { class: 'quality' },
        h('thead', {}, h('tr', {}, h('th', {}, 'inter-modal'), h('th', {}, 'trust.'), h('th', {}, 'contin.'))),
        h('tbody', {},
          row('mean', ''),
          row('image → text', '_image_to_text'),
          row('text → image', '_text_to_image'),
        ),
      ),
      typeof m.agreement === 'number' ? agreementLine(m.agreement, m.n_concepts) : null,
      Array.isArray(m.skipped) && m.skipped.length
        ? h('p', { class: 'hint' }, `not computed (too few points): ${m.skipped.join(', ')}`)
        : null,
      sampleHint(m),
    );
  }
}

/** The agreement, with how many texts it chose among: with every caption a concept, an
 *  image agrees only when the very same one of thousands is nearest in both spaces. */
function agreementLine(agreement: number, nConcepts: unknown): HTMLElement {
  const among = typeof nConcepts === 'number' ? nConcepts : null;
  return h('p', {
    class: 'agreement',
    title: 'share of images whose nearest concept text is the same in 2-D and in the embedding space'
      + (among && among > 100 ? '; each of these texts counts as a concept, so an exact match is rare' : ''),
  },
  'cross-modal agreement ', h('strong', { 'data-metric': 'agreement' }, fmt(agreement)),
  among ? h('span', { class: 'hint', 'data-metric': 'n_concepts' }, ` (nearest of ${among.toLocaleString('en')} texts)`) : null);
}

/** Large layouts are scored on a fixed sample of their points (the server's METRIC_MAX_POINTS). */
function sampleHint(m: Record<string, unknown>): HTMLElement | null {
  const total = Number(m.n_image) + Number(m.n_text);
  const scored = Number(m.n_image_scored) + Number(m.n_text_scored);
  if (!(scored < total)) return null; // also old reports without the *_scored keys
  return h('p', { class: 'hint', 'data-metric': 'sample' },
    `estimated on a fixed sample of ${scored.toLocaleString('en')} of ${total.toLocaleString('en')} points`);
}

/** Above this many classes the matrix is drawn as a heat map without numbers (hover a cell). */
const COMPACT_ABOVE = 12;
/** Above this many classes a compact matrix's cells lose their grid lines (they would be all line). */
const GRID_UP_TO = 60;

/** The matrix always fits the side panel's width (style.css): its columns share the width
 *  left of the class names, and a long name is cut (whole in its title). */
function confusionTable(classes: string[], confusion: number[][]): HTMLElement {
  const compact = classes.length > COMPACT_ABOVE;
  const kind = compact ? `confusion compact${classes.length > GRID_UP_TO ? ' dense' : ''}` : 'confusion';
  // The longest count shown (style.css fits its type to the cells); a heat map shows none.
  const chars = compact ? 1 : Math.max(1, ...confusion.flat().map((count) => shortCount(count).length));
  const table = h('table', {
    class: kind,
    title: 'rows: true class, columns: predicted class',
    style: `--n:${classes.length};--chars:${chars}`,
  });
  if (!compact) {
    const head = (c: string) => h('th', { class: 'col', title: c }, h('span', {}, c));
    table.append(h('thead', {}, h('tr', {}, h('th', { class: 'corner' }, 'true \\ pred'), ...classes.map(head))));
  }
  const body = h('tbody');
  confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    body.append(
      h('tr', {}, compact ? null : h('th', { class: 'row', title: classes[i] }, h('span', {}, classes[i])),
        ...row.map((count, j) => {
          const share = count / total;
          const hue = i === j ? '89,161,79' : '225,87,89';
          const style = `background:rgba(${hue},${Math.min(1, share * 1.5)})`;
          return h('td', { style, title: `${classes[i]} → ${classes[j]}: ${count}` }, count && !compact ? shortCount(count) : '');
        }),
      ),
    );
  });
  table.append(body);
  const note = compact
    ? h('p', { class: 'hint' }, `${classes.length} classes: rows are the true class, columns the predicted one (class order); hover a cell for its count.`)
    : null;
  return h('div', { class: 'confusion-wrap' }, table, note);
}

/** A count in four characters at most: 1698 -> "1.7k", 25000 -> "25k" (the cell's title has it exactly). */
function shortCount(count: number): string {
  if (count < 1000) return String(count);
  const thousands = count / 1000;
  return `${thousands < 9.95 ? thousands.toFixed(1) : Math.round(thousands)}k`;
}
