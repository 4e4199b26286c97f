import { CloseCode, TerminalCloseCode } from '../api-types';

/** What each close code of the terminal protocol means to the user (docs/terminal.md). */
const KNOWN: Record<number, string> = {
  [CloseCode.NORMAL]: 'The shell exited.',
  [CloseCode.GOING_AWAY]: 'The terminal gateway restarted.',
  [CloseCode.PROTOCOL_ERROR]: 'The connection broke the WebSocket protocol.',
  [CloseCode.TOO_BIG]: 'A message was too large.',
  [CloseCode.INTERNAL]: 'The terminal gateway failed.',
  [CloseCode.BAD_MESSAGE]: 'The terminal sent a message the gateway did not understand.',
  [CloseCode.KEY_REVOKED]: 'The key that opened the terminal was revoked.',
  [TerminalCloseCode.BAD_TICKET]: 'The ticket was not accepted.',
  [TerminalCloseCode.TICKET_EXPIRED]: 'The ticket expired before it was used.',
  [TerminalCloseCode.OTHER_SESSION]: 'The ticket is for another session.',
  [TerminalCloseCode.NO_SESSION]: 'The session does not exist any more.',
  [TerminalCloseCode.IDLE]: 'Closed after being idle.',
  [TerminalCloseCode.TICKET_REUSED]: 'The ticket was used already.',
  [TerminalCloseCode.SESSION_ENDED]: 'The session ended.',
  [TerminalCloseCode.APP_EXITED]: 'The app in the session ended; restart the session to run it again.',
  [TerminalCloseCode.TOO_MANY]: 'Too many terminals are open; close one first.',
};

/** Why a terminal closed, from the gateway's close code (docs/terminal.md). */
export function closeReason(code: number, reason: string): string {
  return `${KNOWN[code] ?? 'The connection closed.'}${reason ? ` (${reason})` : ''}`;
}
