// The panel's commands: open the panel, refresh it, open a run, a comparison or a model in
// the main area (one tab each, reused when already open, restored after a reload).
import { ILayoutRestorer, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';
import { Widget } from '@lumino/widgets';
import { IPanelActions } from './components/actions';
import { CompareView } from './components/CompareView';
import { LabtrackPanel } from './components/LabtrackPanel';
import { ModelPage } from './components/ModelPage';
import { RunDetails } from './components/RunDetails';
import { shortRunId } from '../widgets/lib/format';
import { PanelModel } from './model';

export namespace CommandIDs {
  export const openPanel = 'labtrack:open-panel';
  export const refresh = 'labtrack:refresh';
  export const openRun = 'labtrack:open-run';
  export const compareRuns = 'labtrack:compare-runs';
  export const openModel = 'labtrack:open-model';
  export const showRequests = 'labtrack:show-requests';
}

export interface ICommandsOptions {
  app: JupyterFrontEnd;
  model: PanelModel;
  panel: LabtrackPanel;
  rendermime: IRenderMimeRegistry | null;
  restorer: ILayoutRestorer | null;
  palette: ICommandPalette | null;
}

/** What the views ask for, done through the commands. */
export function panelActions(app: JupyterFrontEnd): IPanelActions {
  return {
    openRun: runId => void app.commands.execute(CommandIDs.openRun, { runId }),
    compareRuns: runIds => void app.commands.execute(CommandIDs.compareRuns, { runIds }),
    openModel: name => void app.commands.execute(CommandIDs.openModel, { name }),
    openNotebook: path => void app.commands.execute('docmanager:open', { path })
  };
}

function strings(value: ReadonlyPartialJSONObject[string]): string[] {
  return Array.isArray(value) ? value.map(String) : typeof value === 'string' ? value.split(',') : [];
}

export function registerCommands(options: ICommandsOptions): void {
  const { app, model, panel, rendermime, restorer, palette } = options;
  const actions = panelActions(app);
  const runs = new WidgetTracker<MainAreaWidget<RunDetails>>({ namespace: 'labtrack-run' });
  const comparisons = new WidgetTracker<MainAreaWidget<CompareView>>({ namespace: 'labtrack-compare' });
  const models = new WidgetTracker<MainAreaWidget<ModelPage>>({ namespace: 'labtrack-model' });

  /** Show the tab `id` if open, else make it with `create` and load it. */
  function open<T extends Widget & { load(): Promise<void> }>(
    tracker: WidgetTracker<MainAreaWidget<T>>,
    id: string,
    create: () => T,
    activate = true
  ): MainAreaWidget<T> {
    const existing = tracker.find(widget => widget.id === id);
    if (existing) {
      if (activate) {
        app.shell.activateById(existing.id);
      }
      return existing;
    }
    const content = create();
    const widget = new MainAreaWidget({ content });
    widget.id = id;
    widget.addClass('jp-Labtrack-main');
    app.shell.add(widget, 'main', { activate });
    void tracker.add(widget);
    void content.load();
    return widget;
  }

  app.commands.addCommand(CommandIDs.openPanel, {
    label: 'Show the labtrack Panel',
    caption: 'Runs of this notebook, the model registry and pending requests',
    execute: () => app.shell.activateById(panel.id)
  });
  app.commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh the labtrack Panel',
    execute: () => model.refresh().catch(() => undefined)
  });
  app.commands.addCommand(CommandIDs.showRequests, {
    label: 'Show Pending Transition Requests',
    execute: () => {
      model.setTab('requests');
      app.shell.activateById(panel.id);
    }
  });
  app.commands.addCommand(CommandIDs.openRun, {
    label: args => (args.runId ? `Open Run ${shortRunId(String(args.runId))}` : 'Open Run'),
    execute: args => {
      const runId = String(args.runId ?? '');
      if (!runId) {
        return;
      }
      return open(runs, `labtrack-run-${runId}`, () =>
        new RunDetails({ api: model.api, runId, actions, rootDir: () => model.rootDir, rendermime }),
        args.activate !== false
      );
    }
  });
  app.commands.addCommand(CommandIDs.compareRuns, {
    label: args => `Compare ${strings(args.runIds).length || 'Selected'} Runs`,
    isEnabled: args => strings(args.runIds).length > 0 || model.selection.size > 1,
    execute: args => {
      let runIds = strings(args.runIds);
      if (!runIds.length) {
        runIds = [...model.selection];
      }
      if (!runIds.length) {
        return;
      }
      return open(comparisons, `labtrack-compare-${runIds.join('-')}`, () =>
        new CompareView(model.api, runIds, actions),
        args.activate !== false
      );
    }
  });
  app.commands.addCommand(CommandIDs.openModel, {
    label: args => (args.name ? `Open Model ${String(args.name)}` : 'Open Registered Model'),
    execute: args => {
      const name = String(args.name ?? '');
      if (!name) {
        return;
      }
      return open(models, `labtrack-model-${encodeURIComponent(name)}`, () =>
        new ModelPage(model.api, name, model, actions),
        args.activate !== false
      );
    }
  });

  if (restorer) {
    void restorer.restore(runs, {
      command: CommandIDs.openRun,
      args: widget => ({ runId: widget.content.runId, activate: false }),
      name: widget => widget.content.runId
    });
    void restorer.restore(comparisons, {
      command: CommandIDs.compareRuns,
      args: widget => ({ runIds: widget.content.runIds, activate: false }),
      name: widget => widget.content.runIds.join(',')
    });
    void restorer.restore(models, {
      command: CommandIDs.openModel,
      args: widget => ({ name: widget.content.modelName, activate: false }),
      name: widget => widget.content.modelName
    });
  }
  if (palette) {
    const category = 'labtrack';
    for (const command of [CommandIDs.openPanel, CommandIDs.refresh, CommandIDs.showRequests]) {
      palette.addItem({ command, category });
    }
  }
}
