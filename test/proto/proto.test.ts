import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { EMBEDDING_PROTO, PROTO_DIR } from '@moco/models';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';

// The gRPC contract: `buf lint` with the STANDARD rules (buf.yaml), and the stream's messages kept
// wire-identical to Embed's, so a client may send the same bytes on either.

const ROOT = path.join(import.meta.dirname, '../..');

describe('proto/', () => {
  it('passes buf lint (STANDARD)', () => {
    const run = spawnSync(path.join(ROOT, 'node_modules/.bin/buf'), ['lint'], { cwd: ROOT, encoding: 'utf8' });
    expect(run.error).toBeUndefined();
    expect(`${run.stdout}${run.stderr}`).toBe('');
    expect(run.status).toBe(0);
  });

  it("keeps EmbedStream's messages field for field the same as Embed's", () => {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(PROTO_DIR, target);
    root.loadSync(EMBEDDING_PROTO, { keepCase: true }).resolveAll();
    const shape = (name: string) =>
      root.lookupType(`moco.v1.${name}`).fieldsArray.map((f) => ({ name: f.name, id: f.id, type: f.type, repeated: f.repeated, optional: f.options?.proto3_optional === true, oneof: f.partOf?.name ?? null }));
    expect(shape('EmbedStreamRequest')).toEqual(shape('EmbedRequest'));
    expect(shape('EmbedStreamResponse')).toEqual(shape('EmbedResponse'));
  });
});
