/**
 * shield.dnsbl's fleet-wide zone health. Every `health_interval` one node of the fleet (whichever
 * takes the `dnsbl:probe` lease) asks every zone about its test points and writes a verdict per
 * zone to the shared cache (`dnsbl:health:<zone>`); every node reads the verdicts and stops using a
 * zone that lists everything, refuses us or does not answer, until its test points answer as they
 * should again. Every dependency (resolver, store, log, config) is passed in.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { errorMessage } from '../core/errors';
import { parseIp } from '../core/net';
import type { Store } from '../core/store';
import { healthVerdict, ipQueryLabel, queryName, type Zone } from './dnsbl';
import type { ZoneProbe } from './dnsbl-config';
import type { ZoneResolver } from './dnsbl-lookup';

export interface HealthConfig {
  readonly main: { readonly health_interval: number };
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
      const verdicts = await Promise.all(cfg.zones.map((z) => this.probe(cfg, z)));
      await store.cacheSetMany(verdicts.map((v, i) => ({ key: healthKey(cfg.zones[i] as Zone), value: JSON.stringify(v), ttlSec: every * 3 })));
    }
    await this.read(cfg);
  }

  /** apply the fleet's health verdicts (written by whichever node probed last) */
  async read(cfg: HealthConfig = this.deps.config()): Promise<void> {
    const states = await this.deps.store.cacheGetMany(cfg.zones.map(healthKey));
    cfg.zones.forEach((z, i) => {
      const raw = states[i];
      if (!raw) return;
      const v = JSON.parse(raw) as { ok: boolean; why: string };
      const was = this.disabled.get(z.name);
      if (!v.ok && was === undefined) this.deps.log.error(`dnsbl zone ${z.name} disabled: ${v.why}`);
      if (v.ok && was !== undefined) this.deps.log.notice(`dnsbl zone ${z.name} enabled again: its test points answer as they should`);
      if (v.ok) this.disabled.delete(z.name);
      else this.disabled.set(z.name, v.why);
    });
  }

  private async probe(cfg: HealthConfig, zone: Zone): Promise<{ ok: boolean; why: string }> {
    const p = cfg.probes.get(zone.name);
    if (!p) return { ok: true, why: '' };
    const item = (t: string) => {
      const ip = parseIp(t);
      return ip ? ipQueryLabel(ip) : t;
    };
    const ask = async (t: string): Promise<string[] | null> => {
      try {
        return [...(await this.deps.resolver.query(queryName(zone, item(t)), 'A')).records];
      } catch {
        return null;
      }
    };
    const [listed, unlisted] = await Promise.all([p.listed ? ask(p.listed) : Promise.resolve(undefined), p.unlisted ? ask(p.unlisted) : Promise.resolve(undefined)]);
    return healthVerdict(zone, p, { listed, unlisted });
  }
}
