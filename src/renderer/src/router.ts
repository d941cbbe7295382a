/**
 * Hash history: the app is loaded from file:// in Electron and from `nmlab serve` in a
 * browser, and hash URLs work in both without server-side routes.
 */
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router';
import ProjectsView from './views/ProjectsView.vue';
import EnvironmentView from './views/EnvironmentView.vue';
import DatasetsView from './views/DatasetsView.vue';
import BackbonesView from './views/BackbonesView.vue';
import ExperimentsView from './views/ExperimentsView.vue';
import QueueView from './views/QueueView.vue';
import RunView from './views/RunView.vue';
import RunsView from './views/RunsView.vue';
import CompareView from './views/CompareView.vue';
import ReportsView from './views/ReportsView.vue';
import ReportPrintView from './views/ReportPrintView.vue';

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/projects' },
  { path: '/projects', name: 'projects', component: ProjectsView, meta: { title: 'Projects', icon: 'folder' } },
  { path: '/datasets', name: 'datasets', component: DatasetsView, meta: { title: 'Datasets', icon: 'database' } },
  { path: '/backbones', name: 'backbones', component: BackbonesView, meta: { title: 'Backbones', icon: 'layers' } },
  { path: '/experiments', name: 'experiments', component: ExperimentsView, meta: { title: 'Experiments', icon: 'play' } },
  { path: '/runs', name: 'runs', component: RunsView, meta: { title: 'Runs', icon: 'table' } },
  // Pages reached from Experiments: titled, but not in the sidebar (`nav: false`).
  { path: '/experiments/:id', name: 'queue', component: QueueView, meta: { title: 'Queue', nav: false } },
  { path: '/experiments/:id/compare', name: 'compare', component: CompareView, meta: { title: 'Compare', nav: false } },
  { path: '/runs/:id', name: 'run', component: RunView, meta: { title: 'Run', nav: false } },
  { path: '/reports', name: 'reports', component: ReportsView, meta: { title: 'Reports', icon: 'report' } },
  // The report alone, for the printers (Electron printToPDF, headless Chromium): no shell.
  { path: '/print/report', name: 'report-print', component: ReportPrintView, meta: { title: 'Report', nav: false, bare: true } },
  { path: '/environment', name: 'environment', component: EnvironmentView, meta: { title: 'Environment', icon: 'gauge' } },
  { path: '/:pathMatch(.*)*', redirect: '/projects' },
];

export const router = createRouter({ history: createWebHashHistory(), routes });
