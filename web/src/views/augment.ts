// Augmentation panel: upload images and type texts; the server validates and embeds them
// and places them in the shown Modal Fusion Map (no re-fit). Optionally tags them into a set.
import { h } from '../dom';
import { hasVisibleCharacter } from '../text';

export interface AugmentRequest {
  files: File[];
  texts: string[];
  setName: string;
}

/** Adds the items; resolves to a summary, rejects with the server's message. */
export type AugmentHandler = (request: AugmentRequest) => Promise<string>;

const ACCEPT = 'image/png,image/jpeg,image/webp,image/gif,image/bmp';

export class AugmentPanel {
  readonly el = h('section', { class: 'panel augment' }, h('h2', {}, 'Augment'));
  private readonly files = h('input', { type: 'file', name: 'augment_files', multiple: true, accept: ACCEPT });
  private readonly texts = h('textarea', { name: 'augment_texts', rows: 3, placeholder: 'one text per line' });
  private readonly setName = h('input', { type: 'text', name: 'augment_set', maxLength: 100, placeholder: 'optional' });
  private readonly button = h('button', { type: 'submit' }, 'Add');
  private readonly message = h('p', { class: 'panel-message augment-message' });

  constructor(private readonly onAdd: AugmentHandler) {
    const form = h('form', { class: 'augment-form' },
      h('label', { class: 'field' }, 'images (PNG, JPEG, WebP, GIF, BMP; ≤ 10 MB, ≤ 40 MP each)', this.files),
      h('label', { class: 'field' }, 'texts', this.texts),
      h('label', { class: 'field' }, 'tag into set', this.setName),
      h('div', { class: 'row' }, this.button),
      this.message,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
    this.el.append(form);
  }

  private say(text: string, kind: 'info' | 'error' | 'busy' = 'info'): void {
    this.message.textContent = text;
    this.message.className = `panel-message augment-message ${kind}`;
  }

  private async submit(): Promise<void> {
    const files = [...(this.files.files ?? [])];
    const texts = this.texts.value.split('\n').map((t) => t.trim()).filter(Boolean);
    if (!files.length && !texts.length) {
      this.say('Choose images or type texts (one per line) first.', 'error');
      return;
    }
    const blank = texts.findIndex((t) => !hasVisibleCharacter(t));
    if (blank >= 0) {
      this.say(`Text ${blank + 1} has no visible character (only invisible ones such as U+200B): nothing was added.`, 'error');
      return;
    }
    const setName = this.setName.value.trim();
    if (setName && !hasVisibleCharacter(setName)) {
      this.say('The set name has no visible character: nothing was added.', 'error');
      return;
    }
    const what = [files.length && `${files.length} image${files.length > 1 ? 's' : ''}`,
      texts.length && `${texts.length} text${texts.length > 1 ? 's' : ''}`].filter(Boolean).join(' and ');
    this.say(`adding ${what}: validating, embedding, placing…`, 'busy');
    this.button.disabled = true;
    try {
      const summary = await this.onAdd({ files, texts, setName });
      this.say(summary);
      this.files.value = '';
      this.texts.value = '';
    } catch (error) {
      this.say(error instanceof Error ? error.message : String(error), 'error');
    } finally {
      this.button.disabled = false;
    }
  }
}
