// Notices: short messages the user should see (a saved set, an empty lasso, an error).
import { h } from '../dom';

export type NoticeKind = 'info' | 'error';

export class Notices {
  readonly el = h('div', { class: 'notices', role: 'status', 'aria-live': 'polite' });
  readonly log: { kind: NoticeKind; message: string }[] = [];

  show(message: string, kind: NoticeKind = 'info', ms = 6000): void {
    this.log.push({ kind, message });
    const note = h('div', { class: `notice notice-${kind}` }, message);
    const close = h('button', { class: 'notice-close', title: 'dismiss', onclick: () => note.remove() }, '×');
    note.append(close);
    this.el.append(note);
    window.setTimeout(() => note.remove(), ms);
  }

  error(error: unknown): void {
    this.show(error instanceof Error ? error.message : String(error), 'error', 10000);
  }
}
