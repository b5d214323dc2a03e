/**
 * A starter's notebook: write it into the user's home under a name not taken, open it, run it.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { PageConfig, PathExt } from '@jupyterlab/coreutils';
import { NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Contents, ServerConnection } from '@jupyterlab/services';

/** The sandbox's one kernel (ipykernel in the image's venv). */
const KERNEL = { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' };

/**
 * The user's home as a contents path. The server's root is "/" (so /data shows in the file
 * browser) and its preferred_dir is the home, which the page config calls preferredPath.
 */
export function homePath(): string {
  return (PageConfig.getOption('preferredPath') || '/').replace(/^\/+|\/+$/g, '');
}

/** The first `<stem>-<n>.ipynb`, n = 1, 2, ..., whose name is not in `taken`. */
export function freeName(stem: string, taken: Set<string>): string {
  for (let n = 1; ; n++) {
    const name = `${stem}-${n}.ipynb`;
    if (!taken.has(name)) {
      return name;
    }
  }
}

function notebookContent(source: string): Record<string, unknown> {
  return {
    cells: [{ cell_type: 'code', execution_count: null, metadata: {}, outputs: [], source }],
    metadata: { kernelspec: KERNEL, language_info: { name: 'python' } },
    nbformat: 4,
    nbformat_minor: 5
  };
}

function isConflict(error: unknown): boolean {
  return error instanceof ServerConnection.ResponseError && error.response.status === 409;
}

/**
 * Write a notebook whose one code cell is `source` into `dir` as `<stem>-<n>.ipynb`; return its path.
 *
 * Never replaces a file: the server names the new untitled notebook itself, and refuses (409) to
 * rename it onto a name that exists, so a name taken meanwhile (another tab) moves on to the next.
 */
export async function createNotebook(
  contents: Contents.IManager,
  dir: string,
  stem: string,
  source: string
): Promise<string> {
  const listing = await contents.get(dir, { content: true });
  const taken = new Set((listing.content as Contents.IModel[]).map(model => model.name));
  const draft = await contents.newUntitled({ path: dir, type: 'notebook' });
  await contents.save(draft.path, { type: 'notebook', format: 'json', content: notebookContent(source) });
  for (let attempt = 0; attempt < 50; attempt++) {
    const name = freeName(stem, taken);
    try {
      return (await contents.rename(draft.path, PathExt.join(dir, name))).path;
    } catch (error) {
      if (!isConflict(error)) {
        throw error;
      }
      taken.add(name);
    }
  }
  return draft.path; // 50 names taken under our feet: keep the server's untitled name
}

/** Open the notebook at `path` and run its cells once the kernel is up, so the widget shows. */
export async function openAndRun(app: JupyterFrontEnd, path: string): Promise<NotebookPanel> {
  const panel = (await app.commands.execute('docmanager:open', {
    path,
    factory: 'Notebook',
    kernel: { name: KERNEL.name }
  })) as NotebookPanel;
  await panel.context.ready;
  await panel.sessionContext.ready;
  await NotebookActions.runAll(panel.content, panel.sessionContext);
  return panel;
}
