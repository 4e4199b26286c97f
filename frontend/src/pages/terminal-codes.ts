/** Why a terminal closed, from the gateway's close code (docs/terminal.md). */
export function closeReason(code: number, reason: string): string {
  const known: Record<number, string> = {
    1000: 'The shell exited.',
    1001: 'The terminal gateway restarted.',
    4401: 'The ticket was not accepted.',
    4402: 'The ticket expired before it was used.',
    4404: 'The session does not exist any more.',
    4408: 'Closed after being idle.',
    4409: 'The ticket was used already.',
    4410: 'The session ended.',
    4429: 'Too many terminals are open; close one first.',
  };
  return `${known[code] ?? 'The connection closed.'}${reason ? ` (${reason})` : ''}`;
}

