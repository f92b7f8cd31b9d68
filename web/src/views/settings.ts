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

export class SettingsBar {
  readonly el = h('header', { class: 'settings' });
  private readonly controls = h('div', { class: 'controls' });
  private readonly progress = h('div', { class: 'progress', hidden: true });

  constructor(
    private readonly onChange: (change: Partial<Choice>) => void,
    private readonly onCancel: (job: JobInfo) => void,
  ) {
    this.el.append(h('h1', {}, 'ModalChorus'), this.controls, this.progress);
  }

  render(settings: Settings, choice: Choice, colorChoices: ColorBy[]): void {
    const dataset = settings.datasets.find((d) => d.name === choice.dataset);
    const field = (label: string, control: HTMLElement) => h('label', { class: 'field' }, label, control);
    clear(
      this.controls,
      field(
        'dataset',
        select(
          settings.datasets.map((d) => ({ value: d.name, label: `${d.name} (${d.n_images}+${d.n_texts})` })),
          choice.dataset,
          (v) => this.onChange({ dataset: v }),
          { name: 'dataset' },
        ),
      ),
      field(
        'task',
        select(
          dataset?.tasks.length ? dataset.tasks.map((t) => ({ value: t, label: t })) : [{ value: '', label: 'none (no labels or captions)' }],
          choice.task,
          (v) => this.onChange({ task: v }),
          { name: 'task', disabled: !dataset?.tasks.length },
        ),
      ),
      field(
        'encoder',
        select(
          settings.encoders.map((e) => ({ value: e, label: e })),
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
