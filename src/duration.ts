const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
type Unit = keyof typeof UNIT_MS;

const DURATION = /^(\d+)([smhd]?)$/;

/**
 * Parses a configuration duration into milliseconds: whole seconds (`"900"`) or a whole number
 * with one unit `s`, `m`, `h` or `d` (`"10s"`, `"15m"`, `"30d"`).
 * No sign, fraction, space or other unit; null for anything else (and for absurdly large values).
 */
export function parseDuration(text: string): number | null {
  const match = DURATION.exec(text);
  if (!match) return null;
  const amount = Number(match[1]);
  const unit = (match[2] || 's') as Unit;
  const ms = amount * UNIT_MS[unit];
  return Number.isSafeInteger(ms) ? ms : null;
}
