// A job's progress: bar, message and a cancel button (the run stops at its next step and
// changes nothing).
import type { JobInfo } from '../api';
import { h } from '../dom';

/** The children of a progress element for ``job``; ``onCancel`` is called once per click. */
export function jobProgress(job: JobInfo, onCancel: (job: JobInfo) => void): HTMLElement[] {
  const pct = Math.round(job.progress * 100);
  const cancel = h('button', { type: 'button', class: 'cancel-job', title: 'Stop; nothing changes' }, 'cancel');
  // Set by the server between the request and the job's next step.
  cancel.disabled = job.message.startsWith('cancelling');
  cancel.addEventListener('click', () => {
    cancel.disabled = true;
    onCancel(job);
  });
  return [
    h('div', { class: 'bar' }, h('div', { class: 'fill', style: `width:${pct}%` })),
    h('span', { class: 'progress-text' }, `${job.message} (${pct}%)`),
    cancel,
  ];
}
