/**
 * shield.blocklist.ini: its schema, shared by the plugin and the CLI (`haraka-shield block|allow`
 * reads the same list files and builds the same replies), so the CLI never loads the plugin.
 */
import { f } from '../core/config';

export const BLOCKLIST_SCHEMA = {
  main: {
    block_file: f.file('shield.blocklist.block', 'file in config/ with block entries: one "[kind:]entry [reason]" per line, # comments, reloaded live (missing file = none)'),
    allow_file: f.file('shield.blocklist.allow', 'file in config/ with allow entries, same format'),
    delay_reject_exempt: f.retired('the exempt recipients of every check are shield.ini [main] exempt_rcpts'),
    delay_reject: f.bool(false, 'refuse a blocked client at RCPT instead of at connect, so it can still reach postmaster@ and abuse@ (shield.ini exempt_rcpts; RFC 5321 4.5.1) and the log shows sender and recipients'),
    show_reason: f.bool(false, 'add the entry\'s reason text to the reply (reasons are often internal notes; off by default)'),
    contact: f.str('', 'text appended to every refusal, e.g. "contact postmaster@example.com"', { free: true }),
    sync_interval: f.duration(1, 'how often this node checks the shared store for changes (one small Redis read)', { min: 0.1, max: 300 }),
    max_rdns_names: f.int(5, 'most PTR names of a client matched against the lists and forward-confirmed for allow entries', { min: 1, max: 20 }),
  },
} as const;
