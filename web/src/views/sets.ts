// Sets: the current lasso selection (save it as a named set) and the stored sets
// (show, rename, delete). Sets live in the workspace, so they survive a reload.
import type { SetOut } from '../api';
import { clear, h } from '../dom';
import { categoryColor } from '../palette';
import { hasVisibleCharacter } from '../text';

export interface SetHandlers {
  save: (name: string) => Promise<boolean>;
  clearSelection: () => void;
  show: (set: SetOut) => void;
  rename: (set: SetOut, name: string) => Promise<void>;
  remove: (set: SetOut) => Promise<void>;
}

export class SetsPanel {
  readonly el = h('section', { class: 'panel sets' }, h('h2', {}, 'Sets'));
  private readonly selection = h('div', { class: 'selection', hidden: true });
  private readonly list = h('ul', { class: 'set-list' });

  constructor(private readonly handlers: SetHandlers) {
    this.el.append(this.selection, this.list);
  }

  showSelection(count: number, images: number, suggested: string): void {
    const name = h('input', { type: 'text', name: 'set_name', value: suggested, maxLength: 100 });
    name.addEventListener('input', () => name.setCustomValidity(''));
    const form = h('form', { class: 'save-set' },
      h('span', { class: 'selection-count', 'data-count': count }, `${count} selected (${images} images, ${count - images} texts)`),
      name,
      h('button', { type: 'submit' }, 'save as set'),
      h('button', { type: 'button', onclick: () => this.handlers.clearSelection() }, 'clear'),
    );
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      if (!hasVisibleCharacter(name.value)) {
        name.setCustomValidity('Type a name for the set.');
        name.reportValidity();
        return;
      }
      if (await this.handlers.save(name.value)) this.hideSelection();
    });
    clear(this.selection, form);
    this.selection.hidden = false;
  }

  hideSelection(): void {
    this.selection.hidden = true;
    clear(this.selection);
  }

  render(sets: SetOut[]): void {
    if (!sets.length) {
      clear(this.list, h('li', { class: 'hint' }, 'No sets yet: lasso points (Shift + drag) or click a legend entry, then save the selection.'));
      return;
    }
    clear(this.list, ...sets.map((set, i) => this.row(set, set.color ?? categoryColor(i + 1))));
  }

  private row(set: SetOut, color: string): HTMLElement {
    const name = h('button', { class: 'set-name', title: `${set.name}: show on the map`, onclick: () => this.handlers.show(set) }, set.name);
    const li = h('li', { class: 'set', 'data-set-id': set.id },
      h('span', { class: 'swatch', style: `background:${color}` }),
      name,
      h('span', { class: 'set-count' }, String(set.n_items)),
    );
    const rename = h('button', { class: 'small', title: 'rename', onclick: () => this.startRename(set, name) }, 'rename');
    const remove = h('button', { class: 'small danger', title: 'delete' }, 'delete');
    remove.addEventListener('click', () => remove.replaceWith(this.confirmRemove(set, remove)));
    li.append(rename, remove);
    return li;
  }

  /** Edit the name in place: Enter or leaving the field saves it (once), Escape cancels. */
  private startRename(set: SetOut, name: HTMLElement): void {
    const input = h('input', { type: 'text', value: set.name, maxLength: 100, class: 'rename-input' });
    let finished = false;
    const finish = (commit: boolean) => {
      if (finished) return; // swapping the input out blurs it: that blur must not save again
      finished = true;
      const value = input.value.trim();
      if (commit && value && value !== set.name) void this.handlers.rename(set, value);
      else input.replaceWith(name);
    };
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') finish(true);
      if (e.key === 'Escape') finish(false);
    });
    input.addEventListener('blur', () => finish(true));
    name.replaceWith(input);
    input.focus();
    input.select();
  }

  /** Deleting a set cannot be undone: ask inline first. */
  private confirmRemove(set: SetOut, remove: HTMLButtonElement): HTMLElement {
    const ask = h('span', { class: 'confirm' }, 'delete?');
    ask.append(
      h('button', { type: 'button', class: 'small danger confirm-yes', onclick: () => void this.handlers.remove(set) }, 'yes'),
      h('button', { type: 'button', class: 'small confirm-no', onclick: () => ask.replaceWith(remove) }, 'no'),
    );
    return ask;
  }
}
