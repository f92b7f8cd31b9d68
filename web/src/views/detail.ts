// Instance detail: the image or text, label and prediction, and top-k cross-modal neighbours.
import { api, type ItemDetail, type Neighbours } from '../api';
import { clear, clickable, fmt, h } from '../dom';

/** The dataset of the items a user added (uploads and typed texts). */
const UPLOADS = 'uploads';
const HINT = 'Click a point to see it and its nearest items of the other modality.';

export class DetailPanel {
  readonly el = h('section', { class: 'panel detail' }, h('h2', {}, 'Instance'));
  private readonly body = h('div', { class: 'detail-body' });

  constructor(
    private readonly onPick: (id: string) => void,
    /** Remove an uploaded image or added text (only those can be removed). */
    private readonly onRemove: (item: ItemDetail) => Promise<void>,
  ) {
    this.reset();
    this.el.append(this.body);
  }

  /** Back to the hint (e.g. after the shown item was removed). */
  reset(): void {
    clear(this.body, h('p', { class: 'hint' }, HINT));
  }

  loading(id: string): void {
    clear(this.body, h('p', { class: 'hint' }, `loading ${id}…`));
  }

  render(item: ItemDetail, neighbours: Neighbours): void {
    const content =
      item.kind === 'image'
        ? h('img', { class: 'detail-image', src: api.thumbnailUrl(item.id), alt: item.id })
        : h('blockquote', { class: 'detail-text' }, item.text ?? '');
    const facts = h('dl', { class: 'facts' });
    const fact = (name: string, value: string | Node) => facts.append(h('dt', {}, name), h('dd', {}, value));
    fact('id', item.id);
    fact('kind', item.is_concept ? 'concept text' : item.kind === 'text' ? 'caption' : 'image');
    if (item.label) fact('label', item.label);
    if (item.predicted) {
      const ok = item.predicted === item.label;
      fact('predicted', h('span', { class: ok ? 'ok' : 'bad' }, `${item.predicted} ${ok ? '✓' : '✗'}`));
    }
    if (item.related.length) {
      fact(item.kind === 'image' ? 'captions' : 'image', h('span', {}, ...item.related.map((r) => this.link(r.id, r.text ?? r.id))));
    }
    const list = h('ol', { class: 'neighbours' });
    for (const n of neighbours.neighbours) {
      const preview =
        n.kind === 'image'
          ? h('img', { src: api.thumbnailUrl(n.id), alt: n.id, class: 'thumb' })
          : h('span', { class: 'neighbour-text' }, n.text ?? n.id);
      const bar = h('span', { class: 'sim-bar' }, h('span', { class: 'sim-fill', style: `width:${Math.max(0, n.similarity) * 100}%` }));
      list.append(
        clickable(
          h('li', { class: n.is_pair ? 'neighbour pair' : 'neighbour', title: n.text ?? n.id },
            preview,
            h('span', { class: 'neighbour-label' }, n.label ?? ''),
            bar,
            h('span', { class: 'sim' }, fmt(n.similarity)),
            n.is_pair ? h('span', { class: 'pair-mark', title: 'ground-truth pair' }, '★') : null,
          ),
          () => this.onPick(n.id),
        ),
      );
    }
    clear(
      this.body,
      content,
      facts,
      item.dataset === UPLOADS ? this.removeButton(item) : null,
      h('h3', {}, `Top ${neighbours.neighbours.length} ${item.kind === 'image' ? 'texts' : 'images'} (cosine similarity)`),
      list,
    );
  }

  private removeButton(item: ItemDetail): HTMLButtonElement {
    const button = h('button', { type: 'button', class: 'small danger remove-item', title: 'Remove this item you added from the workspace' }, 'remove');
    button.addEventListener('click', () => {
      button.disabled = true;
      void this.onRemove(item).finally(() => {
        button.disabled = false;
      });
    });
    return button;
  }

  private link(id: string, text: string): HTMLElement {
    return h('a', { href: '#', class: 'related', onclick: (e: Event) => { e.preventDefault(); this.onPick(id); } }, text);
  }
}
