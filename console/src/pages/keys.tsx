// Keys and tool pins (docs/console.md): list, register, rotate, revoke keys; look up, pin and unpin
// a SchemaPin domain; review a tool schema. Only public keys ever pass through this page.
import { useState } from "preact/hooks";
import type { Role } from "../../../sdk";
import type { PageProps } from "../main";
import { Code, ErrorBox, Title, useLoad } from "../ui";

const ROLES: Role[] = ["agent", "admin", "auditor", "worker", "gateway"];

export function KeysPage({ sigil, signer }: PageProps) {
  const keys = useLoad(() => sigil.keys.list({ limit: 200 }));
  const [error, setError] = useState<unknown>();
  const [info, setInfo] = useState<string>();
  const [reg, setReg] = useState({ role: "agent" as Role, subject: "", publicKey: "" });
  const [rotate, setRotate] = useState<{ kid: string; publicKey: string }>();
  const [domain, setDomain] = useState("");
  const [pin, setPin] = useState<unknown>();
  const [pem, setPem] = useState("");
  const [schema, setSchema] = useState("");
  const [review, setReview] = useState<unknown>();

  const act = async (f: () => Promise<string>) => {
    setError(undefined);
    setInfo(undefined);
    try {
      setInfo(await f());
      keys.reload();
    } catch (e) {
      setError(e);
    }
  };
  const publicKeyInput = (s: string) => (s.trim().startsWith("{") ? JSON.parse(s) : s.trim());

  return (
    <>
      <Title>Keys and tool pins</Title>
      <ErrorBox error={keys.error ?? error} />
      {info && <p role="status">{info}</p>}
      <section aria-labelledby="h-keys">
        <h2 id="h-keys">Keys</h2>
        <table>
          <caption class="sr-only">Registered keys</caption>
          <thead>
            <tr>
              <th scope="col">kid</th>
              <th scope="col">Role</th>
              <th scope="col">Subject</th>
              <th scope="col">Status</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {(keys.value?.keys ?? []).map((k) => (
              <tr key={k.kid}>
                <td>
                  <code>{k.kid}</code>
                  {k.kid === signer.kid && " (this console)"}
                </td>
                <td>{k.role}</td>
                <td>{k.subject}</td>
                <td>{k.status}</td>
                <td>
                  {k.status === "active" && k.kid !== signer.kid && (
                    <>
                      <button
                        type="button"
                        onClick={() => setRotate({ kid: k.kid, publicKey: "" })}
                      >
                        Rotate
                      </button>{" "}
                      <button
                        type="button"
                        class="danger"
                        onClick={() =>
                          act(async () => {
                            await sigil.keys.revoke(k.kid);
                            return `Revoked ${k.kid}.`;
                          })
                        }
                      >
                        Revoke
                      </button>
                    </>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        {rotate && (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              act(async () => {
                const r = await sigil.keys.rotate(rotate.kid, {
                  publicKey: publicKeyInput(rotate.publicKey),
                });
                setRotate(undefined);
                return `Rotated ${rotate.kid} to ${r.kid}.`;
              });
            }}
          >
            <label for="rotate-key">New public key for {rotate.kid} (JWK or base64url)</label>
            <input
              id="rotate-key"
              value={rotate.publicKey}
              onInput={(e) => setRotate({ ...rotate, publicKey: e.currentTarget.value })}
            />
            <button type="submit">Rotate</button>
          </form>
        )}
      </section>
      <form
        aria-labelledby="h-register"
        onSubmit={(e) => {
          e.preventDefault();
          act(async () => {
            const r = await sigil.keys.create({
              role: reg.role,
              subject: reg.subject,
              publicKey: publicKeyInput(reg.publicKey),
            });
            return `Registered ${r.kid}.`;
          });
        }}
      >
        <h2 id="h-register">Register a key</h2>
        <div class="row">
          <label>
            Role
            <select
              value={reg.role}
              onChange={(e) => setReg({ ...reg, role: e.currentTarget.value as Role })}
            >
              {ROLES.map((r) => (
                <option key={r}>{r}</option>
              ))}
            </select>
          </label>
          <label>
            Subject
            <input
              value={reg.subject}
              onInput={(e) => setReg({ ...reg, subject: e.currentTarget.value })}
            />
          </label>
        </div>
        <label for="reg-key">Public key (JWK or base64url)</label>
        <input
          id="reg-key"
          value={reg.publicKey}
          onInput={(e) => setReg({ ...reg, publicKey: e.currentTarget.value })}
        />
        <button type="submit">Register</button>
      </form>
      <section aria-labelledby="h-pins">
        <h2 id="h-pins">Tool pins</h2>
        <label for="pin-domain">Domain</label>
        <input id="pin-domain" value={domain} onInput={(e) => setDomain(e.currentTarget.value)} />
        <div class="actions">
          <button
            type="button"
            onClick={() =>
              act(async () => {
                setPin(await sigil.tools.getPin(domain));
                return `Pin of ${domain}.`;
              })
            }
          >
            Look up
          </button>
          <button
            type="button"
            class="danger"
            onClick={() =>
              act(async () => {
                setPin(await sigil.tools.deletePin(domain));
                return `Unpinned ${domain}.`;
              })
            }
          >
            Unpin
          </button>
        </div>
        <label for="pin-pem">Public key (PEM) to pin</label>
        <textarea
          id="pin-pem"
          rows={3}
          value={pem}
          onInput={(e) => setPem(e.currentTarget.value)}
        />
        <button
          type="button"
          onClick={() =>
            act(async () => {
              setPin(await sigil.tools.putPin(domain, { publicKeyPem: pem }));
              return `Pinned ${domain}.`;
            })
          }
        >
          Pin
        </button>
        {pin !== undefined && <Code>{JSON.stringify(pin, null, 2)}</Code>}
      </section>
      <section aria-labelledby="h-review">
        <h2 id="h-review">Review a tool schema</h2>
        <label for="review-schema">Tool schema (JSON)</label>
        <textarea
          id="review-schema"
          rows={4}
          value={schema}
          onInput={(e) => setSchema(e.currentTarget.value)}
        />
        <button
          type="button"
          onClick={() =>
            act(async () => {
              setReview(await sigil.tools.review(JSON.parse(schema)));
              return "Reviewed.";
            })
          }
        >
          Review
        </button>
        {review !== undefined && <Code>{JSON.stringify(review, null, 2)}</Code>}
      </section>
    </>
  );
}
