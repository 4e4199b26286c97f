import { useState } from 'react';
import { ApiError, text } from '../api';
import { useAsync } from '../ui';

/** The Console section of an execution: its recorded console log, with step markers highlighted. */
export function ConsoleLog({ executionId }: { executionId: string }) {
  const [shown, setShown] = useState(true);
  const log = useAsync(
    () =>
      text(`/api/v1/executions/${executionId}/console`).catch((e) => {
        if (e instanceof ApiError && e.status === 404) return null; // no console on this device
        throw e;
      }),
    [executionId],
  );
  if (log.data === null) return null;
  return (
    <section className="console-log" aria-label="Console">
      <h2>
        Console{' '}
        <button className="small" onClick={() => setShown(!shown)}>
          {shown ? 'hide' : 'show'}
        </button>
      </h2>
      {log.error && <p className="error small">The console log could not be loaded: {String(log.error.message)}</p>}
      {shown && log.data !== undefined && (
        <pre className="console" data-testid="console-log">
          {log.data.split('\n').map((line, i) => (
            <div key={i} className={line.includes(' --- ') ? 'console-marker' : undefined}>
              {line}
            </div>
          ))}
        </pre>
      )}
    </section>
  );
}
