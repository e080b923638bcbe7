import type { Config } from './config/load.js';
import type { Store } from './store/types.js';

const DAY_MS = 86_400_000;

export interface PassResult {
  anomalies: number;
  rolledUp: number;
}

/**
 * The minute's slow housekeeping: spike detection, then retention. Each part fails on its own, so a
 * broken spike query never stops the ledger from being rolled up (or the other way round).
 */
export async function maintenancePass(store: Store, config: Pick<Config, 'alerts' | 'retention'>, now: number): Promise<PassResult> {
  const result: PassResult = { anomalies: 0, rolledUp: 0 };
  try {
    result.anomalies = (await store.recordSpikes(now, config.alerts.spike)).length;
  } catch (error) {
    console.error('[lobe-quota] spike detection failed:', error);
  }
  const days = config.retention.ledgerDays;
  if (days !== null) {
    try {
      result.rolledUp = await store.rollUpLedger(now - days * DAY_MS);
    } catch (error) {
      console.error('[lobe-quota] ledger retention failed:', error);
    }
  }
  return result;
}

/** Runs `maintenancePass` every `intervalMs`, never two at once (a first retention can take a while). */
export function startMaintenance(store: Store, config: Pick<Config, 'alerts' | 'retention'>, now: () => number, intervalMs: number): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void maintenancePass(store, config, now()).finally(() => {
      running = false;
    });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
