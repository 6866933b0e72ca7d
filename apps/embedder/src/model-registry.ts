import { status } from '@grpc/grpc-js';
import type { Db } from '@moco/db';
import { DEFAULT_ALIAS, ModelError, resolveModel, type Model, type ModelSelector } from '@moco/models';
import type { ObjectStore } from '@moco/storage';
import type { Logger } from 'pino';
import type { EmbedderMetrics } from './embedder-metrics.js';
import { EmbedError } from './errors.js';
import type { ForwardThread } from './forward-thread.js';

/** A model held for one request; while any lease is out, eviction does not free the weights. */
export interface Lease {
  readonly model: Model;
  /** Its query encoder in the forward-pass thread. */
  readonly handle: number;
  /** The alias the request named; '' when it pinned a model id. */
  readonly alias: string;
  release(): void;
}

interface Slot {
  model: Model;
  handle: number;
  users: number;
  evicted: boolean;
  /** Its weights are gone already (the thread restarted): nothing to unload. */
  lost: boolean;
}

// A checkpoint that failed to load is not fetched again for this long (each request would otherwise retry it).
const FAILED_LOAD_RETRY_MS = 10_000;

const aliasKey = (projectId: string, alias: string) => `${projectId}\n${alias}`;

/**
 * Loads models on first use and keeps the `maxModels` most recently used. Aliases are resolved once
 * and then served from memory; `refreshAlias` (on a notification or a poll) loads the alias's new
 * model first and switches only once it is ready, so requests never wait for or fail on a promotion,
 * and a model that fails to load leaves the old one serving.
 */
export class ModelRegistry {
  /** By model id, least recently used first. */
  private readonly slots = new Map<string, Slot>();
  private readonly loading = new Map<string, Promise<Slot>>();
  private readonly failures = new Map<string, number>();
  /** The model each alias that has been asked for is served by. */
  private readonly aliases = new Map<string, Model>();
  /** Per alias, so refreshes of one alias run one after another. */
  private readonly refreshes = new Map<string, Promise<void>>();
  /** Every model id this process has loaded: a later load of one is a reload (for the metrics). */
  private readonly everLoaded = new Set<string>();

  constructor(
    private readonly deps: {
      db: Db;
      store: ObjectStore;
      forward: ForwardThread;
      maxModels: number;
      log: Logger;
      metrics: Pick<EmbedderMetrics, 'modelLoaded'>;
    },
  ) {
    deps.forward.onRestart(() => {
      for (const slot of this.slots.values()) {
        slot.lost = true;
        slot.evicted = true;
      }
      // Aliases stay: their models load again on the next request.
      this.slots.clear();
    });
  }

  /** @throws ModelError (not_found) for an unknown alias or id; EmbedError UNAVAILABLE when the model cannot be loaded. */
  async acquire(projectId: string, selector: ModelSelector): Promise<Lease> {
    if (selector.modelId) {
      const held = this.slots.get(selector.modelId)?.model;
      const model = held?.projectId === projectId ? held : await resolveModel(this.deps.db, { projectId, modelId: selector.modelId });
      return this.lease(model, '');
    }
    const alias = selector.alias || DEFAULT_ALIAS;
    const key = aliasKey(projectId, alias);
    let model = this.aliases.get(key);
    if (!model) {
      model = await resolveModel(this.deps.db, { projectId, alias });
      const lease = await this.lease(model, alias);
      // A refresh that ran meanwhile knows better.
      if (!this.aliases.has(key)) this.aliases.set(key, model);
      return lease;
    }
    return this.lease(model, alias);
  }

  /** Re-reads an alias that is being served and moves it once its new model is loaded. */
  refreshAlias(projectId: string, alias: string): Promise<void> {
    const key = aliasKey(projectId, alias);
    if (!this.aliases.has(key)) return Promise.resolve();
    const next = (this.refreshes.get(key) ?? Promise.resolve()).then(() => this.refresh(key, projectId, alias));
    this.refreshes.set(key, next);
    void next.finally(() => {
      if (this.refreshes.get(key) === next) this.refreshes.delete(key);
    });
    return next;
  }

  /** The poll and reconnection fallback: every alias being served. */
  async refreshAll(): Promise<void> {
    const watched = [...this.aliases.keys()].map((key) => key.split('\n') as [string, string]);
    await Promise.all(watched.map(([projectId, alias]) => this.refreshAlias(projectId, alias)));
  }

  get loadedModelIds(): string[] {
    return [...this.slots.keys()];
  }

  /** Frees every model (one still leased when its last lease is released). */
  dispose(): void {
    for (const id of [...this.slots.keys()]) this.evict(id);
    this.aliases.clear();
  }

  private async refresh(key: string, projectId: string, alias: string): Promise<void> {
    const current = this.aliases.get(key);
    if (!current) return;
    let next: Model;
    try {
      next = await resolveModel(this.deps.db, { projectId, alias });
    } catch (error) {
      if (error instanceof ModelError) {
        this.aliases.delete(key);
        return;
      }
      this.deps.log.warn({ err: error, projectId, alias }, 'could not re-read a model alias; still serving the current model');
      return;
    }
    if (next.id === current.id) return;
    try {
      await this.load(next);
    } catch {
      // The next refresh (notification or poll) tries again.
      this.deps.log.error({ projectId, alias, modelId: next.id, current: current.id }, 'alias kept on its current model: the new one failed to load');
      return;
    }
    this.aliases.set(key, next);
    this.deps.log.info({ projectId, alias, from: current.id, to: next.id }, 'alias moved to a new model');
  }

  private async lease(model: Model, alias: string): Promise<Lease> {
    // Another load may evict this slot before we hold it; then it is loaded again.
    for (;;) {
      const slot = await this.load(model);
      if (slot.evicted) continue;
      slot.users++;
      let released = false;
      return {
        model: slot.model,
        handle: slot.handle,
        alias,
        release: () => {
          if (released) return;
          released = true;
          slot.users--;
          if (slot.evicted && slot.users === 0) this.free(slot);
        },
      };
    }
  }

  private load(model: Model): Promise<Slot> {
    const slot = this.slots.get(model.id);
    if (slot) {
      // Most recently used goes last.
      this.slots.delete(model.id);
      this.slots.set(model.id, slot);
      return Promise.resolve(slot);
    }
    if ((this.failures.get(model.id) ?? 0) > Date.now()) return Promise.reject(unavailable(model));
    let pending = this.loading.get(model.id);
    if (!pending) {
      pending = this.read(model).finally(() => this.loading.delete(model.id));
      this.loading.set(model.id, pending);
    }
    return pending;
  }

  private async read(model: Model): Promise<Slot> {
    let handle: number;
    const started = performance.now();
    try {
      handle = await this.deps.forward.load(await this.deps.store.getBytes(model.objectKey), model.transform.channels);
    } catch (error) {
      // The thread being down (EmbedError) says nothing about the checkpoint.
      if (error instanceof EmbedError) throw error;
      this.failures.set(model.id, Date.now() + FAILED_LOAD_RETRY_MS);
      this.deps.log.error({ err: error, modelId: model.id, objectKey: model.objectKey }, 'model failed to load');
      throw unavailable(model);
    }
    this.failures.delete(model.id);
    this.deps.metrics.modelLoaded(this.everLoaded.has(model.id) ? 'reload' : 'load');
    this.everLoaded.add(model.id);
    const slot: Slot = { model, handle, users: 0, evicted: false, lost: false };
    this.slots.set(model.id, slot);
    this.deps.log.info({ modelId: model.id, ms: Math.round(performance.now() - started) }, 'model loaded');
    while (this.slots.size > this.deps.maxModels) this.evict(this.slots.keys().next().value!);
    return slot;
  }

  private evict(id: string): void {
    const slot = this.slots.get(id)!;
    this.slots.delete(id);
    slot.evicted = true;
    if (slot.users === 0) this.free(slot);
  }

  private free(slot: Slot): void {
    if (!slot.lost) this.deps.forward.unload(slot.handle);
  }
}

function unavailable(model: Model): EmbedError {
  return new EmbedError(status.UNAVAILABLE, `model ${model.id} could not be loaded; try again later`);
}
