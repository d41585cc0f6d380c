// Times as people say them: "5 minutes ago", "in 6 days", with the full date on hover.

const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
export const absolute = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

/** `ms` (since the epoch) relative to now: "5 minutes ago", "yesterday", "in 3 hours", … */
export function fromNow(ms: number): string {
  const seconds = (ms - Date.now()) / 1000;
  const units: [Intl.RelativeTimeFormatUnit, number][] = [
    ["year", 31_536_000],
    ["month", 2_592_000],
    ["day", 86_400],
    ["hour", 3_600],
    ["minute", 60],
  ];
  // Half a minute of slack: a link made to expire in a day, shown a moment later, expires "in
  // 1 day", not "in 24 hours".
  for (const [unit, size] of units) {
    if (Math.abs(seconds) + 30 >= size) return relative.format(Math.round(seconds / size), unit);
  }
  return seconds >= 0 ? "in less than a minute" : "just now";
}
