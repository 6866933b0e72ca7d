import { createHash } from 'node:crypto';
import { hasPrefix, type Db, type Prisma } from '@moco/db';
import { CheckpointEncoder, CheckpointTransform } from '@moco/contracts';
import { z } from 'zod';

/** Postgres channel carrying a JSON `ModelUpdate` whenever an alias is set (embedders reload on it). */
export const MODEL_UPDATES_CHANNEL = 'moco_model_updates';

/** The alias a request means when it names no model. */
export const DEFAULT_ALIAS = 'production';

const ALIAS_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

// A checkpoint's transform and encoder are shapes of libs/contracts (the worker writes them, the API and
// the embedder read them); re-exported for this package's callers.
export { CheckpointEncoder, CheckpointTransform } from '@moco/contracts';

/** A model is a checkpoint: `id` is the checkpoint id. */
export interface Model {
  id: string;
  projectId: string;
  jobId: string;
  step: number;
  epoch: number;
  final: boolean;
  objectKey: string;
  bytes: number;
  metrics: Record<string, number>;
  transform: CheckpointTransform;
  encoder: CheckpointEncoder;
  createdAt: Date;
  embeddingSpaceId: string;
  /** This project's aliases that point at the model, sorted. */
  aliases: string[];
}

export interface ModelUpdate {
  projectId: string;
  alias: string;
  checkpointId: string;
}

/** `not_found`: no such model (or alias, or checkpoint) in the project; `invalid_alias`: a malformed alias. */
export class ModelError extends Error {
  override name = 'ModelError';

  constructor(
    readonly code: 'not_found' | 'invalid_alias',
    message: string,
    /** The request field at fault (REST `error.param`). */
    readonly param: string,
  ) {
    super(message);
  }
}

/**
 * Names the training state that produced a vector: sha256 of `<job id>:<step>`. A job's state at a
 * step is unique (checkpoints are unique per job and step, and a resumed job reproduces the same
 * weights), so the id stays the same even if the checkpoint row were written again, while vectors of
 * two trainings, or two steps of one, never share it.
 */
export function embeddingSpaceId(jobId: string, step: number): string {
  return `es_${createHash('sha256').update(`${jobId}:${step}`).digest('hex').slice(0, 32)}`;
}

type CheckpointRow = Prisma.CheckpointGetPayload<{ include: { aliases: true } }>;

function toModel(row: CheckpointRow): Model {
  return {
    id: row.id,
    projectId: row.projectId,
    jobId: row.jobId,
    step: row.step,
    epoch: row.epoch,
    final: row.final,
    objectKey: row.objectKey,
    bytes: Number(row.bytes),
    metrics: row.metrics as Record<string, number>,
    transform: CheckpointTransform.parse(row.transform),
    encoder: CheckpointEncoder.parse(row.encoder),
    createdAt: row.createdAt,
    embeddingSpaceId: embeddingSpaceId(row.jobId, row.step),
    aliases: row.aliases.map((a) => a.alias).sort(),
  };
}

function checkAlias(alias: string): void {
  if (!ALIAS_PATTERN.test(alias)) {
    throw new ModelError('invalid_alias', 'alias must be 1-63 of a-z, 0-9, ".", "_", "-", starting with a letter or digit', 'alias');
  }
}

/**
 * Points `alias` at a checkpoint of the project (creating or moving it) and wakes the embedders, in
 * one transaction: they see the notification only once the alias row has changed.
 */
export async function promoteModel(
  db: Db,
  input: { projectId: string; alias: string; checkpointId: string },
): Promise<Model> {
  checkAlias(input.alias);
  return db.$transaction(async (tx) => {
    const found = await tx.checkpoint.findFirst({ where: { id: input.checkpointId, projectId: input.projectId } });
    if (!found) throw new ModelError('not_found', `no checkpoint ${input.checkpointId} in this project`, 'checkpoint_id');
    const key = { projectId: input.projectId, alias: input.alias };
    await tx.modelAlias.upsert({
      where: { projectId_alias: key },
      create: { ...key, checkpointId: input.checkpointId },
      update: { checkpointId: input.checkpointId },
    });
    const update: ModelUpdate = { ...key, checkpointId: input.checkpointId };
    await tx.$executeRaw`SELECT pg_notify(${MODEL_UPDATES_CHANNEL}, ${JSON.stringify(update)})`;
    const row = await tx.checkpoint.findUniqueOrThrow({ where: { id: input.checkpointId }, include: { aliases: true } });
    return toModel(row);
  });
}

/** The project's promoted models (those with an alias), newest checkpoint first; undefined: every project's (operators). */
export async function listModels(db: Db, projectId: string | undefined): Promise<Model[]> {
  const rows = await db.checkpoint.findMany({
    where: { projectId, aliases: { some: {} } },
    include: { aliases: true },
    orderBy: { id: 'desc' },
  });
  return rows.map(toModel);
}

/** The model an alias points at, or an exact model id, in the project; `DEFAULT_ALIAS` when neither is given. */
export async function resolveModel(
  db: Db,
  input: { projectId: string; alias?: string; modelId?: string },
): Promise<Model> {
  // Strings that cannot be an id or alias are not looked up: Postgres refuses some of them (NUL bytes).
  if (input.modelId) {
    const row = hasPrefix(input.modelId, 'ckpt')
      ? await db.checkpoint.findFirst({ where: { id: input.modelId, projectId: input.projectId }, include: { aliases: true } })
      : null;
    if (!row) throw new ModelError('not_found', `no model ${input.modelId} in this project`, 'model_id');
    return toModel(row);
  }
  const alias = input.alias || DEFAULT_ALIAS;
  const found = ALIAS_PATTERN.test(alias)
    ? await db.modelAlias.findUnique({
        where: { projectId_alias: { projectId: input.projectId, alias } },
        include: { checkpoint: { include: { aliases: true } } },
      })
    : null;
  if (!found) throw new ModelError('not_found', `no model has the alias "${alias}" in this project`, 'alias');
  return toModel(found.checkpoint);
}

/** Parses a `MODEL_UPDATES_CHANNEL` payload; null for anything else. */
export function parseModelUpdate(payload: string | undefined): ModelUpdate | null {
  try {
    const v = JSON.parse(payload ?? '') as Partial<ModelUpdate>;
    return typeof v.projectId === 'string' && typeof v.alias === 'string' && typeof v.checkpointId === 'string'
      ? { projectId: v.projectId, alias: v.alias, checkpointId: v.checkpointId }
      : null;
  } catch {
    return null;
  }
}
