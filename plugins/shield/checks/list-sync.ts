/**
 * How a node keeps its copy of the store-held block and allow entries up to date (shield.blocklist's
 * sync): the changes since the version it holds, applied to its index in place, or a full read in
 * steps when the store's journal cannot say what changed.
 */
import type { Store } from '../core/store';
import { SharedLists } from '../core/list-entries';
import { EntryIndex } from './list-match';

/** a full read of the shared entries gets this long (a node reading 200k entries takes about a second) */
const SNAPSHOT_TIMEOUT_MS = 15_000;
/** changes caught up with in one step; more, and a full read is cheaper */
const MAX_CHANGES = 5000;

/** a node's copy of one store's entries: its index and the version it is of (null: never read) */
export interface SharedState {
  index: EntryIndex;
  version: number | null;
}

/**
 * Catch `st` up with one store: the changes since its version (one round trip; nothing when nothing
 * changed), applied to its index in place; or, when that is not possible (first read, a journal
 * that no longer reaches back, a restarted Redis), a full read in steps and then the changes made
 * during it. `read` runs an operation on the store, null when it is not available.
 */
export async function catchUp(
  st: SharedState,
  read: <T>(op: (s: Store) => Promise<T>, timeoutMs?: number) => Promise<{ value: T } | null>,
  mayReadAll: () => boolean,
  onReadAll: (ok: boolean) => void,
): Promise<boolean> {
  let changed = false;
  if (st.version !== null) {
    const since = st.version;
    const ch = await read((s) => new SharedLists(s).changes(since, MAX_CHANGES));
    if (!ch) return false;
    if (ch.value) {
      for (const r of ch.value.removed) changed = st.index.remove(r.list, r.kind, r.value) || changed;
      for (const e of ch.value.added) st.index.add(e);
      changed = changed || ch.value.added.length > 0;
      st.version = ch.value.version;
      return changed;
    }
  }
  if (!mayReadAll()) return false;
  const snap = await read((s) => new SharedLists(s).snapshot(), SNAPSHOT_TIMEOUT_MS);
  onReadAll(snap !== null);
  if (!snap) return false;
  st.index = await EntryIndex.build(snap.value.entries);
  st.version = snap.value.version;
  // what changed while it was read
  await catchUp(st, read, () => false, () => undefined);
  return true;
}
