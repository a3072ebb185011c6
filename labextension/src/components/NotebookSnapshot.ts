// A notebook file (the snapshot a run captured) drawn readably and read-only: markdown and
// outputs through JupyterLab's renderers as untrusted content (sanitized, no scripts), code as
// text with its execution count. Without the renderers, everything is shown as text.
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { ReadonlyPartialJSONObject, ReadonlyPartialJSONValue } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';
import { h } from './dom';

interface ICell {
  cell_type: 'code' | 'markdown' | 'raw';
  source: string | string[];
  execution_count?: number | null;
  outputs?: IOutput[];
}

interface IOutput {
  output_type: 'stream' | 'execute_result' | 'display_data' | 'error';
  name?: string;
  text?: string | string[];
  data?: Record<string, string | string[] | object>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

const ANSI = /\u001b\[[0-9;]*[A-Za-z]/g;

function text(value: string | string[] | undefined): string {
  return Array.isArray(value) ? value.join('') : (value ?? '');
}

export class NotebookSnapshot {
  readonly node: HTMLElement;

  constructor(
    source: string,
    private rendermime: IRenderMimeRegistry | null
  ) {
    this.node = h('div', { className: 'jp-Labtrack-notebook' });
    let cells: ICell[];
    try {
      const notebook = JSON.parse(source);
      cells = Array.isArray(notebook.cells) ? notebook.cells : [];
    } catch (error) {
      this.node.append(h('pre', { textContent: `Not a readable notebook: ${error}` }));
      return;
    }
    if (!cells.length) {
      this.node.append(h('p', { textContent: 'The notebook has no cells.' }));
    }
    for (const cell of cells) {
      this.node.append(this.cell(cell));
    }
  }

  private cell(cell: ICell): HTMLElement {
    const source = text(cell.source);
    if (cell.cell_type === 'markdown') {
      return h('div', { className: 'jp-Labtrack-nb-markdown' }, this.render({ 'text/markdown': source }, source));
    }
    if (cell.cell_type === 'raw') {
      return h('pre', { className: 'jp-Labtrack-nb-raw', textContent: source });
    }
    const prompt = cell.execution_count ? `[${cell.execution_count}]` : '[ ]';
    return h(
      'div',
      { className: 'jp-Labtrack-nb-code' },
      h(
        'div',
        { className: 'jp-Labtrack-nb-input' },
        h('span', { className: 'jp-Labtrack-nb-prompt', textContent: prompt }),
        h('pre', { className: 'jp-Labtrack-code', textContent: source })
      ),
      ...(cell.outputs ?? []).map(output => this.output(output))
    );
  }

  private output(output: IOutput): HTMLElement {
    const box = h('div', { className: 'jp-Labtrack-nb-output' });
    if (output.output_type === 'stream') {
      box.append(h('pre', { className: output.name === 'stderr' ? 'jp-mod-stderr' : '', textContent: text(output.text) }));
    } else if (output.output_type === 'error') {
      const trace = (output.traceback ?? []).join('\n').replace(ANSI, '');
      box.append(h('pre', { className: 'jp-mod-stderr', textContent: trace || `${output.ename}: ${output.evalue}` }));
    } else if (output.data) {
      const plain = text(output.data['text/plain'] as string | string[] | undefined);
      box.append(this.render(output.data, plain));
    }
    return box;
  }

  /** The richest safe rendering of a MIME bundle, else its plain text. */
  private render(data: Record<string, unknown>, fallback: string): HTMLElement {
    const bundle: ReadonlyPartialJSONObject = Object.fromEntries(
      Object.entries(data).map(([mime, value]) => [
        mime,
        (Array.isArray(value) ? value.join('') : value) as ReadonlyPartialJSONValue
      ])
    );
    const mime = this.rendermime?.preferredMimeType(bundle, 'ensure');
    if (this.rendermime && mime) {
      const renderer = this.rendermime.createRenderer(mime);
      void renderer.renderModel(new MimeModel({ data: bundle, trusted: false }));
      this.renderers.push(renderer);
      return renderer.node;
    }
    const png = bundle['image/png'];
    if (typeof png === 'string') {
      return h('img', { src: `data:image/png;base64,${png.replace(/\s/g, '')}`, alt: fallback });
    }
    return h('pre', { textContent: fallback });
  }

  dispose(): void {
    for (const renderer of this.renderers) {
      renderer.dispose();
    }
    this.renderers = [];
  }

  private renderers: Widget[] = [];
}
