/**
 * What each launcher card starts: a notebook named `<stem>-<n>.ipynb` in the user's home whose
 * first code cell opens one of the workbench's widgets (the Python package imaging_workbench).
 * Declared once here; index.ts turns each into a command and a card.
 */
import { LabIcon } from '@jupyterlab/ui-components';

import { casesIcon, federatedIcon } from './icons';

export interface IStarter {
  /** The command's id (also usable from the command palette). */
  command: string;
  label: string;
  caption: string;
  icon: LabIcon;
  /** The new notebook is `<stem>-<n>.ipynb`, n the first number not taken. */
  stem: string;
  /** The first code cell, run as soon as the kernel is ready. */
  source: string;
}

export const STARTERS: IStarter[] = [
  {
    command: 'imaging-workbench:browse-cases',
    label: 'Browse cases',
    caption:
      'A new notebook with the case browser over your approved datasets (/data)',
    icon: casesIcon,
    stem: 'cases',
    source: [
      '# Your approved datasets are mounted read-only under /data: pick a series to open it below.',
      'from imaging_workbench.widgets import CaseBrowser',
      '',
      'browser = CaseBrowser(root="/data")',
      'browser'
    ].join('\n')
  },
  {
    command: 'imaging-workbench:new-federated-job',
    label: 'New federated job',
    caption:
      'A new notebook with the federated job form: approved algorithms, run at each site',
    icon: federatedIcon,
    stem: 'federated-job',
    source: [
      '# Pick datasets and an approved algorithm; each site returns only its privacy-filtered aggregates.',
      'from imaging_workbench.federation.panel import FederatedJobPanel',
      '',
      'panel = FederatedJobPanel()',
      'panel'
    ].join('\n')
  }
];
