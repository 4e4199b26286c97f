import { Component, ErrorInfo, ReactNode, useEffect, useState } from 'react';
import { api, getKey, setKey, WhoAmI } from './api';
import { Empty, ErrorBox, Link, Loading, useRoute } from './ui';
import { SignIn } from './pages/SignIn';
import { Fleet } from './pages/Fleet';
import { DevicePage } from './pages/Device';
import { Executions, ExecutionPage } from './pages/Executions';
import { TestCases } from './pages/TestCases';
import { Trees } from './pages/Trees';
import { Builds, BuildPage } from './pages/Builds';

type Theme = 'light' | 'dark';

function useTheme(): [Theme, () => void] {
  const initial =
    (localStorage.getItem('labwright.theme') as Theme | null) ??
    (window.matchMedia?.('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  const [theme, set] = useState<Theme>(initial);
  useEffect(() => {
    document.documentElement.dataset.theme = theme;
    localStorage.setItem('labwright.theme', theme);
  }, [theme]);
  return [theme, () => set(theme === 'dark' ? 'light' : 'dark')];
}

const SECTIONS: [string, string][] = [
  ['/', 'Fleet'],
  ['/executions', 'Executions'],
  ['/testcases', 'Test cases'],
  ['/trees', 'Navigation trees'],
  ['/builds', 'Builds'],
];

export function App() {
  const [theme, toggleTheme] = useTheme();
  const [me, setMe] = useState<WhoAmI | null | undefined>(getKey() ? undefined : null);
  const [error, setError] = useState<unknown>();
  const route = useRoute();

  useEffect(() => {
    if (me !== undefined) return;
    api<WhoAmI>('/api/v1/whoami').then(setMe, (e) => {
      if (e.status === 401) {
        setKey(null);
        setMe(null);
      } else setError(e);
    });
  }, [me]);

  if (error) return <ErrorBox error={error} retry={() => location.reload()} />;
  if (me === undefined) return <Loading what="your account" />;
  if (me === null)
    return (
      <SignIn onSignedIn={setMe} />
    );

  const [section, id] = route;
  let page;
  switch (section ?? '') {
    case '':
      page = <Fleet />;
      break;
    case 'devices':
      page = id ? <DevicePage id={id} /> : <Fleet />;
      break;
    case 'executions':
      page = id ? <ExecutionPage id={id} /> : <Executions />;
      break;
    case 'testcases':
      page = <TestCases name={id} />;
      break;
    case 'trees':
      page = <Trees model={id} />;
      break;
    case 'builds':
      page = id ? <BuildPage id={id} /> : <Builds />;
      break;
    default:
      page = (
        <Empty>
          No such page. <Link to="/">Back to the fleet</Link>
        </Empty>
      );
  }
  const current = '/' + (section ?? '');
  return (
    <div className="shell">
      <header className="top">
        <Link to="/" className="brand">
          Labwright
        </Link>
        <nav>
          {SECTIONS.map(([to, label]) => (
            <Link key={to} to={to} className={current === to || (to === '/' && current === '/devices') ? 'active' : ''}>
              {label}
            </Link>
          ))}
        </nav>
        <div className="who">
          <span title={`key ${me.key_name}, role ${me.role}`} data-testid="tenant">
            {me.tenant_name}
          </span>
          <span className="muted"> · {me.key_name} ({me.role})</span>
          <button className="icon" onClick={toggleTheme} aria-label={`Switch to ${theme === 'dark' ? 'light' : 'dark'} theme`}>
            {theme === 'dark' ? '☀' : '☾'}
          </button>
          <button
            className="link"
            onClick={() => {
              setKey(null);
              setMe(null);
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main>
        <Boundary key={route.join('/')}>{page}</Boundary>
      </main>
    </div>
  );
}

/** A page that fails to render shows the error instead of a blank screen; other pages work. */
class Boundary extends Component<{ children: ReactNode }, { error?: Error }> {
  state: { error?: Error } = {};
  static getDerivedStateFromError(error: Error) {
    return { error };
  }
  componentDidCatch(error: Error, info: ErrorInfo) {
    console.error('page failed to render', error, info.componentStack);
  }
  render() {
    if (this.state.error) return <ErrorBox error={this.state.error} retry={() => this.setState({ error: undefined })} />;
    return this.props.children;
  }
}
