/**
 * @imaging-workbench/lab: the Cancer Imaging Workbench's JupyterLab extension.
 *
 * One plugin today: launcher cards (and palette commands) in an "Imaging Workbench" category
 * that open a new notebook in the user's home with a workbench widget running (starters.ts).
 * Later workbench features for JupyterLab belong in this package as plugins of their own.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, showErrorMessage } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';

import { createNotebook, homePath, openAndRun } from './notebook';
import { STARTERS } from './starters';

const CATEGORY = 'Imaging Workbench';

const launcherPlugin: JupyterFrontEndPlugin<void> = {
  id: '@imaging-workbench/lab:launcher',
  description: 'Launcher cards that open a notebook with a workbench widget ready.',
  autoStart: true,
  optional: [ILauncher, ICommandPalette],
  activate: (app: JupyterFrontEnd, launcher: ILauncher | null, palette: ICommandPalette | null) => {
    STARTERS.forEach((starter, rank) => {
      app.commands.addCommand(starter.command, {
        label: starter.label,
        caption: starter.caption,
        icon: args => (args.isPalette ? undefined : starter.icon),
        execute: async () => {
          try {
            const path = await createNotebook(app.serviceManager.contents, homePath(), starter.stem, starter.source);
            return await openAndRun(app, path);
          } catch (error) {
            void showErrorMessage(`${starter.label}: the notebook could not be started`, error as Error);
            return undefined;
          }
        }
      });
      launcher?.add({ command: starter.command, category: CATEGORY, rank });
      palette?.addItem({ command: starter.command, category: CATEGORY, args: { isPalette: true } });
    });
  }
};

export default [launcherPlugin];
