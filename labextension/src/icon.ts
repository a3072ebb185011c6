// The panel's icon: a line chart (jp-icon3 takes the theme's icon colour), and the same icon
// with the number of pending requests in a badge.
import { LabIcon } from '@jupyterlab/ui-components';

const CHART =
  '<g class="jp-icon3" fill="#616161">' +
  '<path d="M3 3h2v16h16v2H3z"/>' +
  '<path d="M7.2 16.4 6 15.2l4.8-5.6 3.2 3.1 5.2-6.4 1.5 1.2-6.5 8-3.2-3.1z"/>' +
  '<circle cx="10.8" cy="9.6" r="1.6"/><circle cx="19.2" cy="6.3" r="1.6"/>' +
  '</g>';

function svg(content: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">${content}</svg>`;
}

export const labtrackIcon = new LabIcon({ name: 'labtrack:icon', svgstr: svg(CHART) });

const withCount = new Map<string, LabIcon>();

/**
 * The side bar's icon with `count` in a badge (the plain icon for 0; "99+" above 99), styled
 * as JupyterLab styles the side bar's icons (it does so itself only for the first icon).
 */
export function labtrackIconWithCount(count: number): LabIcon {
  const text = count <= 0 ? '' : count > 99 ? '99+' : String(count);
  let icon = withCount.get(text);
  if (!icon && !text) {
    icon = labtrackIcon.bindprops({ stylesheet: 'sideBar' });
    withCount.set(text, icon);
  } else if (!icon) {
    const size = text.length > 2 ? 6 : text.length > 1 ? 7.5 : 9;
    icon = new LabIcon({
      name: `labtrack:icon-${text}`,
      svgstr: svg(
        CHART +
          '<circle cx="17" cy="7" r="7" fill="#e65100"/>' +
          `<text x="17" y="${7 + size / 2.9}" text-anchor="middle" font-size="${size}" ` +
          `font-family="sans-serif" font-weight="bold" fill="#fff">${text}</text>`
      )
    }).bindprops({ stylesheet: 'sideBar' });
    withCount.set(text, icon);
  }
  return icon!;
}
