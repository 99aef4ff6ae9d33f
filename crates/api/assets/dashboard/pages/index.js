// The dashboard's pages, in navigation order. A page is one module exporting
// `render(root, ctx)`; adding one is a line here and its file (plus its line in the
// embedded asset list, crates/api/src/routes/dashboard.rs). `role` is the least role
// that sees it; the API enforces the same on every call.
export const PAGES = [
  { id: 'overview', title: 'Overview', role: 'viewer', load: () => import('./overview.js') },
  { id: 'alerts', title: 'Alerts', role: 'analyst', load: () => import('./alerts.js') },
  { id: 'threats', title: 'Threats', role: 'viewer', load: () => import('./threats.js') },
  { id: 'events', title: 'Traffic', role: 'viewer', load: () => import('./events.js') },
  { id: 'ip', title: 'Address', role: 'viewer', load: () => import('./ip.js') },
  { id: 'flows', title: 'Flows', role: 'viewer', load: () => import('./flows.js') },
  { id: 'decisions', title: 'Decisions', role: 'viewer', load: () => import('./decisions.js') },
  { id: 'jobs', title: 'Jobs', role: 'viewer', load: () => import('./jobs.js') },
  { id: 'vulnerabilities', title: 'Vulnerabilities', role: 'viewer', load: () => import('./vulnerabilities.js') },
  { id: 'posture', title: 'Posture', role: 'analyst', load: () => import('./posture.js') },
  { id: 'health', title: 'Health', role: 'viewer', load: () => import('./health.js') },
  { id: 'settings', title: 'Settings', role: 'admin', load: () => import('./settings.js') },
];
