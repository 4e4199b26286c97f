import { FormEvent, useState } from 'react';
import { api, ApiError, setKey, WhoAmI } from '../api';

export function SignIn({ onSignedIn }: { onSignedIn: (w: WhoAmI) => void }) {
  const [key, setValue] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);

  async function submit(e: FormEvent) {
    e.preventDefault();
    const k = key.trim();
    if (!/^lw_[0-9a-f]{64}$/.test(k)) {
      setError('An API key looks like lw_ followed by 64 hexadecimal digits.');
      return;
    }
    setBusy(true);
    setError(undefined);
    try {
      const who = await api<WhoAmI>('/api/v1/whoami', { key: k });
      setKey(k);
      onSignedIn(who);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="signin">
      <form onSubmit={submit} className="card">
        <h1>Labwright</h1>
        <p>Sign in with an API key. It is remembered in this browser until you sign out.</p>
        <label htmlFor="key">API key</label>
        <input
          id="key"
          type="password"
          autoComplete="off"
          value={key}
          onChange={(e) => setValue(e.target.value)}
          placeholder="lw_…"
          autoFocus
        />
        {error && (
          <div className="state error" role="alert">
            {error}
          </div>
        )}
        <button type="submit" disabled={busy || !key}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small">
          The local stack writes the first admin key to <code>.labwright/api-server/admin-key</code>.
        </p>
      </form>
    </div>
  );
}
