/**
 * The launcher cards' icons, inline: nothing is fetched from the web (a sandbox has none).
 * `jp-icon3` lets JupyterLab's light and dark themes recolour them.
 */
import { LabIcon } from '@jupyterlab/ui-components';

/** A stack of slices, the front one a body outline with a marked lesion. */
export const casesIcon = new LabIcon({
  name: 'imaging-workbench:cases',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" stroke="#616161" stroke-width="1.6" stroke-linejoin="round">
    <path fill="none" d="M8 2.8h13.2V16"/>
    <path fill="none" d="M5.4 5.4h13.2v13.2"/>
    <rect fill="none" x="2.8" y="8" width="13.2" height="13.2" rx="1"/>
    <ellipse fill="none" cx="9.4" cy="14.6" rx="4.4" ry="3.4"/>
  </g>
  <circle cx="11" cy="13.8" r="1.5" fill="#e53935"/>
</svg>`
});

/** Three sites around a hub: a job goes out, only aggregates come back. */
export const federatedIcon = new LabIcon({
  name: 'imaging-workbench:federated',
  svgstr: `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">
  <g class="jp-icon3" fill="#616161">
    <circle cx="12" cy="12" r="3"/>
    <circle cx="12" cy="3.8" r="2.2"/>
    <circle cx="4.6" cy="17.8" r="2.2"/>
    <circle cx="19.4" cy="17.8" r="2.2"/>
    <path d="M11.3 5.8h1.4v3.4h-1.4zM6.2 16.4l3.2-2 .7 1.2-3.2 2zM17.8 16.4l-3.2-2-.7 1.2 3.2 2z"/>
  </g>
</svg>`
});
