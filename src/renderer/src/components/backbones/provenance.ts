/**
 * Reading a backbone's provenance for display. backbone.json's `provenance` is open-ended
 * (imports record little; NMLab's pre-training records noise, accuracies and history), so the
 * extra fields are read defensively here rather than assumed.
 */
import type { BackboneManifest } from '../../../../shared/contract/backbones';

type Provenance = NonNullable<BackboneManifest['provenance']>;

/** A numeric field of the provenance, or null when absent or not a finite number. */
export function provNumber(p: Provenance | undefined, key: string): number | null {
  const v = p ? (p as Record<string, unknown>)[key] : undefined;
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** `12.3 %` from a fraction, or an em dash. */
export function percent(v: number | null, digits = 1): string {
  return v === null ? '—' : `${(100 * v).toFixed(digits)} %`;
}

/** "1.2 MB" style sizes. */
export function bytes(n: number | null): string {
  if (n === null) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}
