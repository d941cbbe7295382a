/**
 * Hash history: the app is loaded from file:// in Electron and from `nmlab serve` in a
 * browser, and hash URLs work in both without server-side routes.
 */
import { createRouter, createWebHashHistory, type RouteRecordRaw } from 'vue-router';
import ProjectsView from './views/ProjectsView.vue';
import EnvironmentView from './views/EnvironmentView.vue';

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/projects' },
  { path: '/projects', name: 'projects', component: ProjectsView, meta: { title: 'Projects', icon: 'folder' } },
  { path: '/environment', name: 'environment', component: EnvironmentView, meta: { title: 'Environment', icon: 'gauge' } },
  { path: '/:pathMatch(.*)*', redirect: '/projects' },
];

export const router = createRouter({ history: createWebHashHistory(), routes });
