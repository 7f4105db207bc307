// ApprovalStore over ApprovalsObject (one object for the deployment). Records are schema-checked
// before they leave and re-validated when they come back: a corrupt row is an error, never an
// approval.
import {
  type ApprovalChange,
  type ApprovalRecord,
  ApprovalRecordSchema,
  type ApprovalStore,
  type CreateResult,
  checkChanges,
  checkList,
  checkSwap,
  type StoredApproval,
} from "../../../shared/approvals";
import { readChangeCursor, readChanges } from "../change-log";
import { unwrap } from "../rpc";
import type { StubSource } from "../runtime";
import type { ApprovalRow, ApprovalsObject } from "./object";

const encode = (r: ApprovalRecord) => JSON.stringify(ApprovalRecordSchema.parse(r));

function decode(row: ApprovalRow): StoredApproval {
  const record = ApprovalRecordSchema.parse(JSON.parse(row.value));
  if (record.id !== row.id) throw new Error(`approval store: row ${row.id} holds another id`);
  return { rev: row.rev, record };
}

export class DoApprovalStore implements ApprovalStore {
  constructor(private readonly object: StubSource<ApprovalsObject>) {}

  async create(record: ApprovalRecord, replacing: string | null): Promise<CreateResult> {
    const cur = unwrap(
      await this.object().create(
        record.id,
        record.binding,
        encode(record),
        replacing,
        record.retainUntil,
      ),
    );
    return cur === null ? { created: true } : { created: false, current: cur };
  }

  async byBinding(binding: string): Promise<string | undefined> {
    return unwrap(await this.object().byBinding(binding)) ?? undefined;
  }

  async get(id: string): Promise<StoredApproval | undefined> {
    const row = unwrap(await this.object().get(id));
    return row ? decode(row) : undefined;
  }

  async swap(id: string, rev: number, next: ApprovalRecord): Promise<boolean> {
    checkSwap(id, rev, next);
    return unwrap(await this.object().swap(id, rev, encode(next), next.retainUntil));
  }

  async list(opts: { limit: number; before?: string }): Promise<StoredApproval[]> {
    checkList(opts);
    return unwrap(await this.object().list(opts.limit, opts.before ?? null)).map(decode);
  }

  async changes(after: string, limit: number): Promise<ApprovalChange[]> {
    checkChanges(after, limit);
    return readChanges(this.object(), after, limit, "approval store");
  }

  async changeCursor(): Promise<string> {
    return readChangeCursor(this.object());
  }
}
