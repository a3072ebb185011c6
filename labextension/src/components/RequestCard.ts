// One open transition request: who asks to move which version where, and only the buttons
// its `available_actions` allow (approve, reject, cancel), each with an optional comment.
import { ActivityAction, ITransitionRequest } from '../tokens';
import { button, formatAgo, formatDate, h, message, stagePill } from './dom';

export interface IRequestCardOptions {
  /** Resolves to whether the action worked. */
  resolve(
    request: ITransitionRequest,
    action: ActivityAction,
    comment: string,
    archiveExistingVersions: boolean
  ): Promise<boolean>;
  openModel?(name: string): void;
  error?: string;
  /** A comment typed before the list was redrawn, and where to keep the next one. */
  draft?: string;
  onDraft?(text: string): void;
}

const LABELS: Partial<Record<ActivityAction, [string, string]>> = {
  APPROVE_TRANSITION_REQUEST: ['Approve', 'jp-mod-accept'],
  REJECT_TRANSITION_REQUEST: ['Reject', 'jp-mod-warn'],
  CANCEL_TRANSITION_REQUEST: ['Cancel request', '']
};

export function requestCard(request: ITransitionRequest, options: IRequestCardOptions): HTMLElement {
  const title = h('span', { className: 'jp-Labtrack-request-title' });
  if (options.openModel) {
    const link = h('a', { className: 'jp-Labtrack-link', href: '#', textContent: request.model_name });
    link.addEventListener('click', event => {
      event.preventDefault();
      options.openModel!(request.model_name);
    });
    title.append(link);
  } else {
    title.append(request.model_name);
  }
  title.append(` version ${request.version} → `, stagePill(request.to_stage));

  const actions = request.available_actions.filter(a => LABELS[a]);
  const comment = h('textarea', {
    className: 'jp-Labtrack-comment',
    rows: 1,
    placeholder: 'Comment (optional)',
    value: options.draft ?? ''
  });
  comment.addEventListener('input', () => options.onDraft?.(comment.value));
  const archive = h('input', { type: 'checkbox', checked: request.to_stage === 'Production' });
  const canArchive =
    actions.includes('APPROVE_TRANSITION_REQUEST') &&
    (request.to_stage === 'Production' || request.to_stage === 'Staging');
  const errorSlot = h('div', {}, options.error ? message(options.error, 'error') : '');
  const buttons = actions.map(action => {
    const [label, kind] = LABELS[action]!;
    const node = button(
      label,
      async () => {
        for (const b of buttons) {
          b.disabled = true;
        }
        errorSlot.replaceChildren();
        const ok = await options.resolve(request, action, comment.value.trim(), archive.checked);
        if (!ok) {
          for (const b of buttons) {
            b.disabled = false;
          }
        }
      },
      { className: `${kind} jp-Labtrack-action`, title: `${label} this request` }
    );
    node.dataset.action = action;
    return node;
  });
  return h(
    'div',
    {
      className: 'jp-Labtrack-request',
      dataset: { requestId: request.id, model: request.model_name, version: request.version }
    },
    h('div', {}, title),
    h(
      'div',
      { className: 'jp-Labtrack-meta' },
      `requested by ${request.user_id} `,
      h('span', { title: formatDate(request.creation_timestamp), textContent: formatAgo(request.creation_timestamp) })
    ),
    request.comment ? h('blockquote', { className: 'jp-Labtrack-quote', textContent: request.comment }) : '',
    actions.length
      ? h(
          'div',
          { className: 'jp-Labtrack-request-actions' },
          comment,
          canArchive
            ? h(
                'label',
                { className: 'jp-Labtrack-archive', title: `Archive the version now in ${request.to_stage}` },
                archive,
                ` archive current ${request.to_stage}`
              )
            : '',
          h('div', { className: 'jp-Labtrack-buttons' }, ...buttons)
        )
      : h('div', { className: 'jp-Labtrack-meta', textContent: 'Waiting for someone allowed to approve it.' }),
    errorSlot
  );
}
