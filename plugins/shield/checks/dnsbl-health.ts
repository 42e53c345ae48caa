/**
 * shield.dnsbl's fleet-wide zone health. Every `health_interval` one node of the fleet (whichever
 * takes the `dnsbl:probe` lease) asks every zone about its test points and writes a verdict per
 * zone to the shared cache (`dnsbl:health:<zone>`); every node reads the verdicts. Every dependency
 * (resolver, store, log, config) is passed in.
 *
 * A probe is one of:
 *  - good: every probed point answered as it should: the zone is (again) in use, the count is 0;
 *  - failed: a point answered wrongly (the listed point not listed, the unlisted one listed, an
 *    error code, SERVFAIL, REFUSED): one more in the count of failed probes in a row, kept in the
 *    shared verdict so that it adds up whichever node probes; at `health_failures` the zone is
 *    disabled. A zone that lists the never-listed point with a listing code is disabled at once: it
 *    would refuse every client;
 *  - unknown: no point answered wrongly, but one timed out or could not be sent (DNS_TIMEOUT,
 *    DNS_NETWORK): the verdict stays as it was, count included.
 * Probes ask the zone, not the resolver's cache (`fresh`): a repaired zone is seen at the next probe.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../core/errors';
import { parseIp } from '../core/net';
import type { Store } from '../core/store';
import { classify, healthVerdict, ipQueryLabel, queryName, type Zone } from './dnsbl';
import type { ZoneProbe } from './dnsbl-config';
import type { ZoneResolver } from './dnsbl-lookup';

export interface HealthConfig {
  readonly main: { readonly health_interval: number; readonly health_failures: number };
  readonly zones: readonly Zone[];
  readonly probes: ReadonlyMap<string, ZoneProbe>;
}

export interface HealthDeps {
  readonly resolver: ZoneResolver;
  readonly store: Pick<Store, 'leaseAcquire' | 'cacheGetMany' | 'cacheSetMany'>;
  readonly log: { error(msg: string): void; notice(msg: string): void };
  /** the current config (it may be reloaded) */
  config(): HealthConfig;
}

const healthKey = (z: Zone) => `dnsbl:health:${z.zone}`;

/** what the fleet shares about one zone */
interface Verdict {
  readonly ok: boolean;
  readonly why: string;
  /** failed probes in a row */
  readonly failures: number;
}

type Probe = { readonly kind: 'good' } | { readonly kind: 'unknown'; readonly why: string } | { readonly kind: 'failed'; readonly why: string; readonly harmful: boolean };

/** a stored verdict, or null when there is none or it is not one (a verdict without a count predates health_failures) */
function parseVerdict(raw: string | null | undefined, failuresToDisable: number): Verdict | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as Partial<Verdict> | null;
    if (!v || typeof v.ok !== 'boolean') return null;
    const why = typeof v.why === 'string' ? v.why : '';
    return { ok: v.ok, why, failures: typeof v.failures === 'number' ? v.failures : v.ok ? 0 : failuresToDisable };
  } catch {
    return null;
  }
}

/** the verdict after a probe; null: nothing to write (nothing known yet, and nothing learned) */
export function nextVerdict(prev: Verdict | null, probe: Probe, failuresToDisable: number): Verdict | null {
  if (probe.kind === 'good') return { ok: true, why: '', failures: 0 };
  if (probe.kind === 'unknown') return prev;
  const failures = (prev?.failures ?? 0) + 1;
  const disable = probe.harmful || failures >= failuresToDisable || prev?.ok === false;
  return { ok: !disable, why: probe.why, failures };
}

export class ZoneHealth {
  /** zone name -> why it is disabled */
  readonly disabled = new Map<string, string>();
  /** this node, as a lease holder: host, process and a random part */
  private readonly nodeId = `${os.hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: HealthDeps) {}

  /** (re)start the rounds with the current health_interval; 0 stops them */
  start(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const every = this.deps.config().main.health_interval;
    if (every <= 0) return;
    const run = () => this.round().catch((err: unknown) => this.deps.log.error(`dnsbl health check: ${errorMessage(err)}`));
    this.timer = setInterval(run, every * 1000);
    this.timer.unref();
    // the first round soon after start (once the store had a moment to connect); the nodes that did
    // not probe read the verdicts again a little later, when the prober has written them
    setTimeout(run, 500).unref();
    setTimeout(() => {
      this.read().catch(() => undefined);
    }, 3000).unref();
  }

  /** Probe every zone's test points (one node of the fleet per interval) and share the verdict. */
  async round(): Promise<void> {
    const cfg = this.deps.config();
    const every = cfg.main.health_interval;
    if (every <= 0 || cfg.zones.length === 0) return;
    const store = this.deps.store;
    // one node per interval: the lease is held (never released) until it lapses before the next round
    const lock = await store.leaseAcquire('dnsbl:probe', this.nodeId, every * 0.9, 1);
    if (lock.granted) {
      const n = cfg.main.health_failures;
      const [before, probes] = await Promise.all([store.cacheGetMany(cfg.zones.map(healthKey)), Promise.all(cfg.zones.map((z) => this.probe(cfg, z)))]);
      const writes: Array<{ key: string; value: string; ttlSec: number }> = [];
      cfg.zones.forEach((z, i) => {
        const prev = parseVerdict(before[i], n);
        const probe = probes[i] as Probe;
        const v = nextVerdict(prev, probe, n);
        if (probe.kind === 'unknown') this.deps.log.notice(`dnsbl zone ${z.name}: health probe unanswered (${probe.why}); the zone stays ${prev?.ok === false ? 'disabled' : 'in use'}`);
        else if (probe.kind === 'failed' && v?.ok) this.deps.log.notice(`dnsbl zone ${z.name}: health probe failed (${v.failures} of ${n} in a row before it is disabled): ${probe.why}`);
        if (v) writes.push({ key: healthKey(z), value: JSON.stringify(v), ttlSec: every * 3 });
      });
      if (writes.length) await store.cacheSetMany(writes);
    }
    await this.read(cfg);
  }

  /** apply the fleet's health verdicts (written by whichever node probed last) */
  async read(cfg: HealthConfig = this.deps.config()): Promise<void> {
    const states = await this.deps.store.cacheGetMany(cfg.zones.map(healthKey));
    cfg.zones.forEach((z, i) => {
      const v = parseVerdict(states[i], cfg.main.health_failures);
      if (!v) return;
      const was = this.disabled.get(z.name);
      if (!v.ok && was === undefined) {
        const count = v.failures > 1 ? ` (${v.failures} failed probes in a row)` : '';
        this.deps.log.error(`dnsbl zone ${z.name} disabled: ${v.why}${count}`);
      }
      if (v.ok && was !== undefined) this.deps.log.notice(`dnsbl zone ${z.name} enabled again: its test points answer as they should`);
      if (v.ok) this.disabled.delete(z.name);
      else this.disabled.set(z.name, v.why);
    });
  }

  private async probe(cfg: HealthConfig, zone: Zone): Promise<Probe> {
    const p = cfg.probes.get(zone.name);
    if (!p) return { kind: 'good' };
    const item = (t: string) => {
      const ip = parseIp(t);
      return ip ? ipQueryLabel(ip) : t;
    };
    const unanswered: string[] = [];
    // the records; null: the zone failed (SERVFAIL, REFUSED, ...); undefined: no answer (unknown)
    const ask = async (t: string): Promise<string[] | null | undefined> => {
      try {
        return [...(await this.deps.resolver.query(queryName(zone, item(t)), 'A', { fresh: true })).records];
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (code === 'DNS_TIMEOUT' || code === 'DNS_NETWORK') {
          // not the resolver's message: it names the query, and so a DQS key
          unanswered.push(`${t}: ${code === 'DNS_TIMEOUT' ? 'timed out' : 'could not be sent'}`);
          return undefined;
        }
        return null;
      }
    };
    const [listed, unlisted] = await Promise.all([p.listed ? ask(p.listed) : Promise.resolve(undefined), p.unlisted ? ask(p.unlisted) : Promise.resolve(undefined)]);
    const v = healthVerdict(zone, p, { listed, unlisted });
    if (!v.ok) return { kind: 'failed', why: v.why, harmful: !!unlisted && unlisted.length > 0 && classify(zone, unlisted).status === 'listed' };
    if (unanswered.length) return { kind: 'unknown', why: unanswered.join('; ') };
    return { kind: 'good' };
  }
}
