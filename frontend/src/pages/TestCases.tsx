import { useEffect, useMemo, useState } from 'react';
import { api, Device, Execution, Page, TestCase } from '../api';
import { Empty, ErrorBox, Link, navigate, Show, useAsync } from '../ui';
import { validateTestCase } from '../validate';

const NEW = `name: My new test
description: What it checks.
device_model: sim-stb
steps:
  - goto: settings
  - verify_image: {reference: settings-title, region: {x: 67, y: 96, width: 356, height: 56}}
`;

export function TestCases({ name }: { name?: string }) {
  const list = useAsync(() => api<TestCase[]>('/api/v1/testcases'), []);
  return (
    <section>
      <h1>Test cases</h1>
      <div className="split">
        <nav className="side">
          <button onClick={() => navigate('/testcases/new')}>New test case</button>
          <Show state={list} what="test cases">
            {(p) =>
              p.length === 0 ? (
                <Empty>No test cases yet.</Empty>
              ) : (
                <ul className="plain">
                  {p.map((t) => (
                    <li key={t.id} className={t.name === name ? 'active' : ''}>
                      <Link to={`/testcases/${encodeURIComponent(t.name)}`}>{t.name}</Link>{' '}
                      <span className="muted small">v{t.version}</span>
                    </li>
                  ))}
                </ul>
              )
            }
          </Show>
        </nav>
        <div className="grow">
          {name ? (
            <Editor key={name} name={name} onSaved={list.reload} />
          ) : (
            <Empty>Choose a test case, or write a new one.</Empty>
          )}
        </div>
      </div>
    </section>
  );
}

function Editor({ name, onSaved }: { name: string; onSaved: () => void }) {
  const isNew = name === 'new';
  const existing = useAsync(
    () => (isNew ? Promise.resolve(undefined) : api<TestCase>(`/api/v1/testcases/${encodeURIComponent(name)}`)),
    [name],
  );
  const [text, setText] = useState<string>();
  useEffect(() => {
    if (isNew) setText(NEW);
    else if (existing.data) setText(existing.data.source);
  }, [isNew, existing.data]);
  const problems = useMemo(() => (text === undefined ? [] : validateTestCase(text)), [text]);
  const [saveError, setSaveError] = useState<unknown>();
  const [saved, setSaved] = useState<TestCase>();

  async function save() {
    setSaveError(undefined);
    try {
      const t = await api<TestCase>('/api/v1/testcases', { method: 'POST', raw: text, contentType: 'application/yaml' });
      setSaved(t);
      onSaved();
      if (isNew) navigate(`/testcases/${encodeURIComponent(t.name)}`);
    } catch (e) {
      setSaveError(e);
    }
  }

  if (existing.error) return <ErrorBox error={existing.error} retry={existing.reload} />;
  if (text === undefined) return <div className="state loading">Loading…</div>;
  return (
    <div className="editor">
      <textarea
        aria-label="Test case YAML"
        spellCheck={false}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          setSaved(undefined);
        }}
        rows={Math.max(16, text.split('\n').length + 2)}
      />
      <div className="problems" data-testid="problems" aria-live="polite">
        {problems.length === 0 ? (
          <span className="ok">Valid against the test case schema.</span>
        ) : (
          <ul>
            {problems.map((p, i) => (
              <li key={i}>
                line {p.line}: {p.message}
              </li>
            ))}
          </ul>
        )}
      </div>
      <div className="row">
        <button onClick={save} disabled={problems.length > 0}>
          Save {isNew ? '' : 'a new version'}
        </button>
        {saved && <span className="ok">Saved as version {saved.version}.</span>}
      </div>
      {saveError !== undefined && <ErrorBox error={saveError} />}
      {!isNew && existing.data && <RunOn testcase={existing.data} />}
    </div>
  );
}

function RunOn({ testcase }: { testcase: TestCase }) {
  const devices = useAsync(() => api<Page<Device>>('/api/v1/devices?status=online&limit=500'), []);
  const [device, setDevice] = useState('');
  const [error, setError] = useState<unknown>();
  async function run() {
    setError(undefined);
    try {
      const e = await api<Execution>('/api/v1/executions', {
        method: 'POST',
        body: { testcase: testcase.name, device },
      });
      navigate(`/executions/${e.id}`);
    } catch (e) {
      setError(e);
    }
  }
  return (
    <div className="card run">
      <h3>Run on a device</h3>
      <Show state={devices} what="devices">
        {(p) => {
          const fit = p.items.filter((d) => !testcase.document?.device_model || d.model === testcase.document.device_model);
          return fit.length === 0 ? (
            <Empty>No online device of model {testcase.document?.device_model}.</Empty>
          ) : (
            <div className="row">
              <select value={device} onChange={(e) => setDevice(e.target.value)} aria-label="Device">
                <option value="">Choose a device…</option>
                {fit.map((d) => (
                  <option key={d.id} value={d.id}>
                    {d.name || d.device_key} ({d.host_name})
                  </option>
                ))}
              </select>
              <button disabled={!device} onClick={run}>
                Run
              </button>
            </div>
          );
        }}
      </Show>
      {error !== undefined && <ErrorBox error={error} />}
    </div>
  );
}
