// A run's artifacts: a folder tree (read lazily) beside a preview of the chosen file — text,
// JSON (indented), images, and the captured notebook (notebook/*.ipynb drawn readably,
// executed_cells.py and cell.py as code, environment.json as JSON). Any file downloads.
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabtrackApi } from '../api';
import { asApiError } from '../model';
import { IFileInfo } from '../tokens';
import { button, h, message } from './dom';
import { NotebookSnapshot } from './NotebookSnapshot';

/** Largest file previewed; larger ones are offered for download. */
export const PREVIEW_BYTES = 5 * 1024 * 1024;
const IMAGES: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  svg: 'image/svg+xml',
  bmp: 'image/bmp'
};
const TEXT = new Set([
  'txt', 'log', 'py', 'md', 'yaml', 'yml', 'csv', 'tsv', 'toml', 'cfg', 'ini', 'diff',
  'patch', 'sh', 'r', 'sql', 'html', 'xml', 'js', 'ts', 'env', 'out', 'err', 'mlmodel'
]);
const TEXT_NAMES = new Set(['MLmodel', 'MLproject', 'requirements.txt', 'Dockerfile', 'LICENSE']);
/** The captured notebook, shown first when a run has it. */
const NOTEBOOK_FILES = ['notebook/executed_cells.py', 'notebook/cell.py'];

export type PreviewKind = 'image' | 'json' | 'notebook' | 'text' | 'binary';

export function previewKind(path: string): PreviewKind {
  const name = path.split('/').pop() ?? path;
  const extension = name.includes('.') ? name.split('.').pop()!.toLowerCase() : '';
  if (IMAGES[extension]) {
    return 'image';
  }
  if (extension === 'json') {
    return 'json';
  }
  if (extension === 'ipynb') {
    return 'notebook';
  }
  if (TEXT.has(extension) || TEXT_NAMES.has(name)) {
    return 'text';
  }
  return 'binary';
}

function size(bytes: number | undefined): string {
  if (bytes === undefined) {
    return '';
  }
  const units = ['B', 'KB', 'MB', 'GB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

export class ArtifactBrowser {
  readonly node: HTMLElement;

  constructor(
    private api: LabtrackApi,
    private runId: string,
    private rendermime: IRenderMimeRegistry | null
  ) {
    this.tree = h('ul', { className: 'jp-Labtrack-tree' });
    this.preview = h('div', { className: 'jp-Labtrack-preview' });
    this.node = h(
      'div',
      { className: 'jp-Labtrack-artifacts' },
      h('div', { className: 'jp-Labtrack-tree-box' }, this.tree),
      this.preview
    );
  }

  /** List the top folder; open the captured notebook when there is one. */
  async load(): Promise<void> {
    try {
      const listing = await this.api.listArtifacts(this.runId);
      this.rootUri = listing.root_uri;
      this.tree.replaceChildren(...this.entries(listing.files));
      if (!listing.files.length) {
        this.preview.replaceChildren(message('This run has no artifacts.'));
        return;
      }
      const notebook = listing.files.find(f => f.is_dir && f.path === 'notebook');
      if (notebook) {
        const files = await this.expand(notebook, this.tree.querySelector('[data-path="notebook"]')!);
        const first =
          files.find(f => f.path.endsWith('.ipynb')) ??
          NOTEBOOK_FILES.map(p => files.find(f => f.path === p)).find(f => f);
        if (first) {
          await this.show(first);
          return;
        }
      }
      this.preview.replaceChildren(message('Choose a file to preview it.'));
    } catch (error) {
      this.preview.replaceChildren(message(asApiError(error).readable, 'error'));
    }
  }

  private entries(files: IFileInfo[]): HTMLElement[] {
    const sorted = [...files].sort((a, b) =>
      a.is_dir === b.is_dir ? a.path.localeCompare(b.path) : a.is_dir ? -1 : 1
    );
    return sorted.map(file => {
      const name = file.path.split('/').pop() ?? file.path;
      const label = h('a', {
        href: '#',
        className: `jp-Labtrack-file${file.is_dir ? ' jp-mod-dir' : ''}`,
        textContent: file.is_dir ? `▸ ${name}` : name,
        title: file.is_dir ? file.path : `${file.path} (${size(file.file_size)})`
      });
      const item = h('li', { dataset: { path: file.path } }, label);
      label.addEventListener('click', event => {
        event.preventDefault();
        if (file.is_dir) {
          void this.toggle(file, item);
        } else {
          void this.show(file);
        }
      });
      return item;
    });
  }

  private async toggle(folder: IFileInfo, item: HTMLElement): Promise<void> {
    const open = item.querySelector(':scope > ul');
    if (open) {
      open.remove();
      item.querySelector(':scope > a')!.textContent = `▸ ${folder.path.split('/').pop()}`;
      return;
    }
    await this.expand(folder, item);
  }

  private async expand(folder: IFileInfo, item: HTMLElement): Promise<IFileInfo[]> {
    try {
      const listing = await this.api.listArtifacts(this.runId, folder.path);
      item.append(h('ul', {}, ...this.entries(listing.files)));
      item.querySelector(':scope > a')!.textContent = `▾ ${folder.path.split('/').pop()}`;
      return listing.files;
    } catch (error) {
      item.append(message(asApiError(error).readable, 'error'));
      return [];
    }
  }

  /** Preview one file. */
  async show(file: IFileInfo): Promise<void> {
    for (const node of this.tree.querySelectorAll('.jp-mod-current')) {
      node.classList.remove('jp-mod-current');
    }
    this.tree.querySelector(`[data-path="${CSS.escape(file.path)}"] > a`)?.classList.add('jp-mod-current');
    this.snapshot?.dispose();
    this.snapshot = null;
    this.revoke();
    const kind = previewKind(file.path);
    const header = h(
      'div',
      { className: 'jp-Labtrack-preview-header' },
      h('strong', { textContent: file.path }),
      h('span', { className: 'jp-Labtrack-meta', textContent: ` ${size(file.file_size)} ` }),
      button('Download', () => void this.download(file), { title: `Download ${file.path}` })
    );
    const body = h('div', { className: 'jp-Labtrack-preview-body', dataset: { kind, path: file.path } });
    this.preview.replaceChildren(header, body);
    if (kind === 'binary') {
      body.append(message('No preview for this kind of file; download it instead.'));
      return;
    }
    if ((file.file_size ?? 0) > PREVIEW_BYTES) {
      body.append(message(`Too large to preview (${size(file.file_size)}); download it instead.`));
      return;
    }
    body.append(message('Loading…'));
    try {
      const blob = await this.api.artifact(this.rootUri, file.path);
      if (body.dataset.path !== this.preview.querySelector<HTMLElement>('.jp-Labtrack-preview-body')?.dataset.path) {
        return; // another file was chosen meanwhile
      }
      body.replaceChildren(await this.render(kind, blob, file.path));
    } catch (error) {
      body.replaceChildren(message(asApiError(error).readable, 'error'));
    }
  }

  private async render(kind: PreviewKind, blob: Blob, path: string): Promise<HTMLElement> {
    if (kind === 'image') {
      const extension = path.split('.').pop()!.toLowerCase();
      this.objectUrl = URL.createObjectURL(new Blob([blob], { type: IMAGES[extension] }));
      return h('img', { className: 'jp-Labtrack-image', src: this.objectUrl, alt: path });
    }
    const source = await blob.text();
    if (kind === 'json') {
      try {
        return h('pre', { className: 'jp-Labtrack-code', textContent: JSON.stringify(JSON.parse(source), null, 2) });
      } catch {
        return h('pre', { className: 'jp-Labtrack-code', textContent: source });
      }
    }
    if (kind === 'notebook') {
      this.snapshot = new NotebookSnapshot(source, this.rendermime);
      return this.snapshot.node;
    }
    return h('pre', { className: 'jp-Labtrack-code', textContent: source });
  }

  private async download(file: IFileInfo): Promise<void> {
    try {
      const blob = await this.api.artifact(this.rootUri, file.path);
      const url = URL.createObjectURL(blob);
      const link = h('a', { href: url, download: file.path.split('/').pop() ?? 'artifact' });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
    } catch (error) {
      this.preview.append(message(asApiError(error).readable, 'error'));
    }
  }

  private revoke(): void {
    if (this.objectUrl) {
      URL.revokeObjectURL(this.objectUrl);
      this.objectUrl = '';
    }
  }

  dispose(): void {
    this.snapshot?.dispose();
    this.revoke();
  }

  private rootUri = '';
  private tree: HTMLElement;
  private preview: HTMLElement;
  private snapshot: NotebookSnapshot | null = null;
  private objectUrl = '';
}
