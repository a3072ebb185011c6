// What the panel's views ask the application to do (open a tab, a notebook…); index.ts
// implements it with commands, so views stay free of JupyterLab's shell.
export interface IPanelActions {
  openRun(runId: string): void;
  compareRuns(runIds: string[]): void;
  openModel(name: string): void;
  /** A notebook, by its path relative to the server root. */
  openNotebook(path: string): void;
}
