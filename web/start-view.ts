// Start a task: pick a template and a workspace; the form then asks for the template's
// declared inputs (required ones marked, defaults filled in), and the new task opens.
import { call, get } from './api.js';
import { clear, h } from './dom.js';

interface InputSpec {
  description?: string;
  required?: boolean;
  default?: string;
}

export function startView(root: HTMLElement, preselect: string | undefined): () => void {
  const tplSel = h('select', { name: 'template', required: true, 'aria-label': 'template' }, h('option', { value: '' }, 'choose a template'));
  const wsSel = h('select', { name: 'workspace', required: true, 'aria-label': 'workspace' }, h('option', { value: '' }, 'choose a workspace'));
  const about = h('p', { class: 'muted' });
  const inputs = h('fieldset', { class: 'inputs', hidden: true }, h('legend', {}, 'Inputs'));
  const desc = h('input', { type: 'text', name: 'description', placeholder: 'optional', maxlength: 10000 });
  const flash = h('div', { class: 'flash', role: 'status' });
  const submit = h('button', { type: 'submit', class: 'primary', disabled: true }, 'Start');
  let fields: Array<{ name: string; el: HTMLInputElement | HTMLTextAreaElement }> = [];

  const loadTemplate = async () => {
    fields = [];
    inputs.hidden = true;
    clear(about);
    submit.disabled = !tplSel.value;
    if (!tplSel.value) return;
    try {
      const t = await get<{ description: string; inputs: Record<string, InputSpec>; steps: Array<{ name: string; type: string }> }>('template.get', { name: tplSel.value });
      clear(about, t.description || '', ' ', h('span', {}, `Steps: ${t.steps.map((s) => `${s.name} (${s.type})`).join(', ')}`));
      const entries = Object.entries(t.inputs);
      clear(
        inputs,
        h('legend', {}, 'Inputs'),
        entries.map(([name, spec]) => {
          const el = h('input', { type: 'text', name: `input-${name}`, required: spec.required === true, value: spec.default ?? '', 'aria-label': name });
          fields.push({ name, el });
          return h('label', {}, h('span', {}, name, spec.required ? h('abbr', { title: 'required' }, ' *') : null), el, spec.description ? h('small', { class: 'muted' }, spec.description) : null);
        }),
      );
      inputs.hidden = entries.length === 0;
    } catch (err) {
      clear(flash, h('p', { class: 'error' }, (err as Error).message));
    }
  };
  tplSel.addEventListener('change', () => void loadTemplate());

  const form = h(
    'form',
    { class: 'start-form' },
    h('label', {}, h('span', {}, 'Template'), tplSel),
    about,
    h('label', {}, h('span', {}, 'Workspace'), wsSel),
    inputs,
    h('label', {}, h('span', {}, 'Description'), desc),
    h('div', { class: 'row' }, submit),
    flash,
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!form.reportValidity()) return;
    submit.disabled = true;
    const values: Record<string, string> = {};
    for (const f of fields) if (f.el.value !== '') values[f.name] = f.el.value;
    call<{ id: string }>('task.start', { template: tplSel.value, workspace: wsSel.value, inputs: values, ...(desc.value.trim() ? { description: desc.value.trim() } : {}) })
      .then((t) => {
        location.hash = `#/task/${encodeURIComponent(t.id)}`;
      })
      .catch((err: Error) => {
        submit.disabled = false;
        clear(flash, h('p', { class: 'error' }, err.message));
      });
  });

  clear(root, h('h1', {}, 'Start a task'), form);
  void Promise.all([get<Array<{ name: string; description: string; error?: string }>>('template.list'), get<Array<{ name: string; path: string }>>('workspace.list')]).then(([tpls, wss]) => {
    for (const t of tpls) tplSel.append(h('option', { value: t.name, disabled: t.error !== undefined }, t.description ? `${t.name}: ${t.description}` : t.name));
    for (const w of wss) wsSel.append(h('option', { value: w.name }, `${w.name} (${w.path})`));
    if (wss.length === 0) clear(flash, h('p', { class: 'muted' }, 'No workspace yet: make one with atlas workspace create NAME --path DIR.'));
    if (preselect) {
      tplSel.value = preselect;
      void loadTemplate();
    }
  });
  return () => undefined;
}
