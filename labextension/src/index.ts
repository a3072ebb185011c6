// labtrack's JupyterLab extension: one left side panel (Runs — the active notebook's first —,
// Models, Requests with a count on the icon) and main-area tabs for a run, a comparison and a
// registered model. Everything it shows comes from the labtrack server extension's REST API.
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { LabtrackApi } from './api';
import { panelActions, registerCommands } from './commands';
import { LabtrackPanel } from './components/LabtrackPanel';
import { labtrackIcon, labtrackIconWithCount } from './icon';
import { PanelModel } from './model';

export { CommandIDs } from './commands';
export { LabtrackApi } from './api';
export { PanelModel } from './model';

/** The sidebar id (also the tab's data-id). */
export const PANEL_ID = 'labtrack-panel';

function activate(
  app: JupyterFrontEnd,
  restorer: ILayoutRestorer | null,
  notebooks: INotebookTracker | null,
  palette: ICommandPalette | null,
  rendermime: IRenderMimeRegistry | null
): PanelModel {
  const model = new PanelModel({ api: new LabtrackApi(app.serviceManager.serverSettings) });
  const panel = new LabtrackPanel(model, panelActions(app));
  panel.id = PANEL_ID;
  panel.title.icon = labtrackIcon;
  panel.title.caption = 'labtrack: runs, models and pending requests';

  // The pending requests as a badge on the icon (and as data-labtrack-pending on its tab).
  const badge = () => {
    const count = model.pendingCount;
    panel.title.icon = labtrackIconWithCount(count);
    panel.title.dataset = { ...panel.title.dataset, 'labtrack-pending': String(count) };
    panel.title.caption =
      'labtrack: runs, models and pending requests' +
      (count ? ` — ${count} pending request${count === 1 ? '' : 's'}` : '');
  };
  model.changed.connect((_, change) => {
    if (change === 'requests') {
      badge();
    }
  });
  app.shell.add(panel, 'left', { rank: 600 });
  badge();
  restorer?.add(panel, PANEL_ID);

  // The notebook in focus decides which runs are listed first.
  if (notebooks) {
    const follow = () => {
      const current = notebooks.currentWidget;
      void model.setNotebookPath(current ? current.context.path : null);
    };
    notebooks.currentChanged.connect(follow);
    notebooks.widgetAdded.connect((_, widget: NotebookPanel) => {
      widget.context.pathChanged.connect(() => {
        if (widget === notebooks.currentWidget) {
          follow();
        }
      });
    });
    follow();
  }

  registerCommands({ app, model, panel, rendermime, restorer, palette });
  return model;
}

const plugin: JupyterFrontEndPlugin<PanelModel> = {
  id: 'labtrack:panel',
  description: 'The labtrack side panel: runs of this notebook, run details and comparison, the model registry and pending requests.',
  autoStart: true,
  optional: [ILayoutRestorer, INotebookTracker, ICommandPalette, IRenderMimeRegistry],
  activate
};

export default plugin;
