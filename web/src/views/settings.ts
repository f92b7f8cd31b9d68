// Settings bar: dataset, task, encoder, projection method, colouring; job progress.
import { jobFinished, type JobInfo, type Settings } from '../api';
import { clear, h, select } from '../dom';
import { COLOR_BY_LABELS, type ColorBy } from '../points';
import { jobProgress } from './progress';

export interface Choice {
  dataset: string;
  task: string;
  encoder: string;
  method: string;
  colorBy: ColorBy;
}

const METHOD_LABELS: Record<string, string> = {
  mfm: 'Modal Fusion Map',
  tsne: 't-SNE',
  umap: 'UMAP',
  mds: 'metric MDS',
  dcm: 'Data Context Map',
  pca: 'PCA',
};

/** Short task names for a narrow window. */
const TASK_SHORT: Record<string, string> = { 'zero-shot classification': 'zero-shot' };

/** A narrow window (as in style.css): the settings show short names, so that all five fit
 *  one row without cutting any; the full names are in the options' titles. */
const NARROW = window.matchMedia('(max-width: 1000px)');

/** An encoder's name without its version (``pocket@2fc1…`` -> ``pocket``) where that is unique. */
function shortEncoder(id: string, all: string[]): string {
  const family = (e: string) => e.split('@')[0];
  return all.filter((e) => family(e) === family(id)).length === 1 ? family(id) : id;
}

export class SettingsBar {
  readonly el = h('header', { class: 'settings' });
  private readonly controls = h('div', { class: 'controls' });
  private readonly progress = h('div', { class: 'progress', hidden: true });
  private shown?: Parameters<SettingsBar['render']>;

  constructor(
    private readonly onChange: (change: Partial<Choice>) => void,
    private readonly onCancel: (job: JobInfo) => void,
  ) {
    this.el.append(h('h1', {}, 'ModalChorus'), this.controls, this.progress);
    NARROW.addEventListener('change', () => {
      if (this.shown) this.render(...this.shown);
    });
  }

  render(settings: Settings, choice: Choice, colorChoices: ColorBy[]): void {
    this.shown = [settings, choice, colorChoices];
    const dataset = settings.datasets.find((d) => d.name === choice.dataset);
    const field = (label: string, control: HTMLElement) => h('label', { class: 'field' }, label, control);
    const short = NARROW.matches;
    clear(
      this.controls,
      field(
        'dataset',
        select(
          settings.datasets.map((d) => ({
            value: d.name,
            label: short ? d.name : `${d.name} (${d.n_images}+${d.n_texts})`,
            title: `${d.name}: ${d.n_images} images, ${d.n_texts} texts`,
          })),
          choice.dataset,
          (v) => this.onChange({ dataset: v }),
          { name: 'dataset' },
        ),
      ),
      field(
        'task',
        select(
          dataset?.tasks.length
            ? dataset.tasks.map((t) => ({ value: t, label: short ? (TASK_SHORT[t] ?? t) : t, title: t }))
            : [{ value: '', label: short ? 'none' : 'none (no labels or captions)', title: 'no labels or captions' }],
          choice.task,
          (v) => this.onChange({ task: v }),
          { name: 'task', disabled: !dataset?.tasks.length },
        ),
      ),
      field(
        'encoder',
        select(
          settings.encoders.map((e) => ({ value: e, label: short ? shortEncoder(e, settings.encoders) : e, title: e })),
          choice.encoder,
          (v) => this.onChange({ encoder: v }),
          { name: 'encoder' },
        ),
      ),
      field(
        'projection',
        select(
          settings.methods.map((m) => ({ value: m, label: METHOD_LABELS[m] ?? m })),
          choice.method,
          (v) => this.onChange({ method: v }),
          { name: 'method' },
        ),
      ),
      field(
        'colour by',
        select(
          colorChoices.map((c) => ({ value: c, label: COLOR_BY_LABELS[c] })),
          choice.colorBy,
          (v) => this.onChange({ colorBy: v as ColorBy }),
          { name: 'colorBy' },
        ),
      ),
    );
  }

  showJob(job: JobInfo | null): void {
    if (!job || jobFinished(job)) {
      this.progress.hidden = true;
      return;
    }
    this.progress.hidden = false;
    clear(this.progress, ...jobProgress(job, this.onCancel));
  }
}
