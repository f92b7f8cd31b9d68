// Tiny DOM helpers: the UI is a handful of panels, no framework needed.

type Child = Node | string | null | undefined | false;
type Attrs = Record<string, string | number | boolean | EventListener | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(key.replace(/^on/, ''), value);
    else if (key === 'class') el.className = String(value);
    else if (key in el && key !== 'list') (el as unknown as Record<string, unknown>)[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) if (child) el.append(child);
  return el;
}

export function clear(el: HTMLElement, ...children: Child[]): void {
  el.replaceChildren(...children.filter((c): c is Node | string => Boolean(c)));
}

export function select(
  options: { value: string; label: string; title?: string }[],
  value: string,
  onChange: (value: string) => void,
  attrs: Attrs = {},
): HTMLSelectElement {
  const el = h('select', attrs, ...options.map((o) => h('option', { value: o.value, title: o.title }, o.label)));
  el.value = value;
  el.addEventListener('change', () => onChange(el.value));
  return el;
}

export const fmt = (x: number | null | undefined, digits = 3): string =>
  x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits);

/** Make a clickable non-button element (a list row) usable from the keyboard too: it takes
 *  focus, is announced as a button, and Enter or Space runs ``action``. */
export function clickable<E extends HTMLElement>(el: E, action: () => void): E {
  el.tabIndex = 0;
  el.setAttribute('role', 'button');
  el.addEventListener('click', action);
  el.addEventListener('keydown', (e) => {
    if (e.key !== 'Enter' && e.key !== ' ') return;
    e.preventDefault();
    action();
  });
  return el;
}
