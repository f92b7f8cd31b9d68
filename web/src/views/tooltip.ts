// Hover preview of a map point: an image's thumbnail and label, or a text (fetched once).
import { api } from '../api';
import { clear, h } from '../dom';
import { KIND_IMAGE, type Points } from '../points';

export class PointTooltip {
  /** Append to the map's stage: the tooltip is kept inside it. */
  readonly el = h('div', { class: 'tooltip', hidden: true });
  private readonly texts = new Map<string, string>();
  /** The point shown now: a text that arrives after the pointer moved on is not placed. */
  private current: string | null = null;

  /** Show row ``index`` of ``points`` (the view of ``dataset`` under ``encoder``) beside the canvas position ``pos``. */
  async show(points: Points, index: number, pos: [number, number], view: { dataset: string; encoder: string }): Promise<void> {
    const id = points.ids[index];
    this.current = id;
    this.el.dataset.id = id; // which point it previews (the browser tests read it)
    const label = points.label[index] >= 0 ? points.labelNames[points.label[index]] : '';
    this.el.hidden = false;
    if (points.kind[index] === KIND_IMAGE) {
      clear(this.el, h('img', { src: api.thumbnailUrl(id), alt: id }), h('div', {}, label || id));
      this.place(pos);
      return;
    }
    const text = h('div', { class: 'tooltip-text' }, this.texts.get(id) ?? '…');
    clear(this.el, text);
    this.place(pos);
    if (!this.texts.has(id)) {
      try {
        this.texts.set(id, (await api.item(id, view.encoder, view.dataset)).text ?? id);
      } catch {
        this.texts.set(id, id); // the map works without the text
      }
      if (this.current !== id) return;
      text.textContent = this.texts.get(id)!;
      this.place(pos);
    }
  }

  hide(): void {
    this.current = null;
    this.el.hidden = true;
  }

  /** Beside the point, on whichever side keeps the tooltip inside the stage. */
  private place([px, py]: [number, number]): void {
    const stage = this.el.parentElement;
    const [width, height] = [this.el.offsetWidth, this.el.offsetHeight];
    let [x, y] = [px + 12, py + 12];
    if (stage && x + width > stage.clientWidth) x = Math.max(0, px - 12 - width);
    if (stage && y + height > stage.clientHeight) y = Math.max(0, py - 12 - height);
    this.el.style.transform = `translate(${x}px, ${y}px)`;
  }
}
