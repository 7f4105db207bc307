// Small pieces every page uses: the page heading (focus target), errors, verification marks.
import type { ComponentChildren, JSX } from "preact";
import { useCallback, useEffect, useState } from "preact/hooks";
import { errorText } from "./api";

export function Title({ children }: { children: ComponentChildren }) {
  return <h1 tabIndex={-1}>{children}</h1>;
}

export function ErrorBox({ error }: { error: unknown }) {
  if (error === undefined || error === null) return null;
  return (
    <p role="alert" class="bad">
      {errorText(error)}
    </p>
  );
}

/** A check's mark: text and symbol, never colour alone. */
export function Mark({ ok, label }: { ok: boolean | null | undefined; label?: string }) {
  if (ok === undefined) return <span class="mark pending">{label ?? "checking"}</span>;
  if (ok === null) return <span class="mark pending">◌ {label ?? "pending"}</span>;
  return ok ? (
    <span class="mark good">✓ {label ?? "verified"}</span>
  ) : (
    <span class="mark bad">✗ {label ?? "failed"}</span>
  );
}

/** Loads once (and again on reload()); keeps the last value, the error and a loading flag. */
export function useLoad<T>(f: () => Promise<T>, deps: readonly unknown[] = []) {
  const [state, setState] = useState<{ value?: T; error?: unknown; loading: boolean }>({
    loading: true,
  });
  const reload = useCallback(() => {
    setState((s) => ({ ...s, loading: true }));
    f().then(
      (value) => setState({ value, loading: false }),
      (error: unknown) => setState({ error, loading: false }),
    );
  }, deps);
  useEffect(reload, [reload]);
  return { ...state, reload };
}

/** Preformatted text that may scroll: keyboard-reachable, as a scrolling region must be. */
export function Code(props: JSX.HTMLAttributes<HTMLPreElement>) {
  // biome-ignore lint/a11y/noNoninteractiveTabindex: WCAG 2.1.1, a scrollable region needs focus
  return <pre tabIndex={0} {...props} />;
}

/** A filter: a labelled select whose first choice, "any", is the empty string. */
export function AnyOf({
  label,
  id,
  value,
  options,
  onChange,
}: {
  label: string;
  id?: string;
  value: string;
  options: readonly string[];
  onChange: (v: string) => void;
}) {
  return (
    <label>
      {label}
      <select id={id} value={value} onChange={(e) => onChange(e.currentTarget.value)}>
        <option value="">any</option>
        {options.map((s) => (
          <option key={s}>{s}</option>
        ))}
      </select>
    </label>
  );
}
