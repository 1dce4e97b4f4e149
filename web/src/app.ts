/**
 * The Fedge web app, served by the Worker as static assets: try a model (edge vs device), write with a language
 * model (edge vs device, streamed), next-word suggestions and federated fine-tuning of that language model, help train it (a Participant in this browser), watch a federated task, and the
 * admin actions. Talks to the edge it came from.
 */
import { EdgeClient } from '../../client-sdk/index.ts';
import { AdminPanel } from './admin-panel.ts';
import { DemoPanel } from './demo-panel.ts';
import { LmPanel } from './lm-panel.ts';
import { errorText, say } from './dom.ts';
import { TrainPanel } from './train-panel.ts';
import { TryPanel } from './try-panel.ts';
import { WatchPanel } from './watch-panel.ts';
import { WritePanel } from './write-panel.ts';

const edge = new EdgeClient({ url: location.origin });
const tryPanel = new TryPanel(edge);
const writePanel = new WritePanel(edge);
const lmPanel = new LmPanel(edge);
const trainPanel = new TrainPanel(edge, () => tryPanel.samples());
const watchPanel = new WatchPanel(
  edge,
  (model, version) => {
    void tryPanel.refresh({ model, version });
    document.getElementById('try')!.scrollIntoView();
  },
  () =>
    new EdgeClient({
      url: location.origin,
      adminToken: (document.getElementById('admin-token') as HTMLInputElement).value.trim() || undefined,
    }),
);
new AdminPanel(location.origin, () => {
  void tryPanel.refresh();
  void writePanel.refresh(); // an upload may be a language model
});
const demoPanel = new DemoPanel(location.origin, (task, token) => {
  trainPanel.use(task, token);
  watchPanel.watch(task);
  history.replaceState(null, '', `?task=${encodeURIComponent(task)}`);
});

// Exposed for the browser tests and for poking around in the console.
Object.assign(globalThis, { fedgeApp: { edge, tryPanel, writePanel, lmPanel, trainPanel, watchPanel, demoPanel } });

try {
  // The write panel says its own errors in its status line (its refresh never throws): they do not stop the page.
  await Promise.all([tryPanel.refresh(), writePanel.refresh()]);
  const task = new URL(location.href).searchParams.get('task') ?? localStorage.getItem('fedge.task');
  if (task) watchPanel.watch(task);
  watchPanel.listTasks();
  document.body.dataset.ready = 'true';
} catch (e) {
  say('try-status', errorText(e), 'error');
}
