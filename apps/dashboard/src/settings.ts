import type { Env, Requirement } from '@research/config';
import type { Login } from './auth.js';

/**
 * No login configured is a mistake unless asked for explicitly: a dashboard can retry, remove
 * and clean jobs, and shows task data.
 */
export const requireDashboardLogin: Requirement = (env) => {
  const user = env.DASHBOARD_USER;
  const password = env.DASHBOARD_PASSWORD;
  if (user && password) return undefined;
  if (user || password) {
    return {
      variable: user ? 'DASHBOARD_PASSWORD' : 'DASHBOARD_USER',
      message: 'DASHBOARD_USER and DASHBOARD_PASSWORD must be set together',
    };
  }
  if (env.DASHBOARD_READONLY_LOOPBACK) return undefined;
  return {
    variable: 'DASHBOARD_USER',
    message:
      'the dashboard needs a login: set DASHBOARD_USER and DASHBOARD_PASSWORD, ' +
      'or DASHBOARD_READONLY_LOOPBACK=true to run it read-only on 127.0.0.1 without one',
  };
};

export interface DashboardSettings {
  login?: Login;
  readOnly: boolean;
  /** Interface to listen on: loopback only when there is no login. */
  host: string | undefined;
}

/** How to run, from an environment that passed {@link requireDashboardLogin}. */
export function dashboardSettings(env: Env): DashboardSettings {
  if (env.DASHBOARD_USER && env.DASHBOARD_PASSWORD) {
    return { login: { user: env.DASHBOARD_USER, password: env.DASHBOARD_PASSWORD }, readOnly: false, host: undefined };
  }
  return { readOnly: true, host: '127.0.0.1' };
}
