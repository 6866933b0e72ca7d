-- AlterTable: per-job early stopping and collapse guard (issue 15), and the checkpoint of the job's best evaluation.
ALTER TABLE "jobs" ADD COLUMN "early_stopping" JSONB,
ADD COLUMN "collapse" JSONB,
ADD COLUMN "best_checkpoint_id" TEXT;

ALTER TABLE "jobs" ADD CONSTRAINT "jobs_best_checkpoint_id_fkey" FOREIGN KEY ("best_checkpoint_id") REFERENCES "checkpoints"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- CreateTable: the raw-pixel and random-encoder accuracies of a training set on an eval set, measured
-- once and reused by every later job on the same data and evaluation settings.
CREATE TABLE "dataset_baselines" (
    "dataset_id" TEXT NOT NULL,
    "eval_dataset_id" TEXT NOT NULL,
    "settings" TEXT NOT NULL,
    "values" JSONB NOT NULL,
    "eval_images" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "dataset_baselines_pkey" PRIMARY KEY ("dataset_id","eval_dataset_id","settings")
);

ALTER TABLE "dataset_baselines" ADD CONSTRAINT "dataset_baselines_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "dataset_baselines" ADD CONSTRAINT "dataset_baselines_eval_dataset_id_fkey" FOREIGN KEY ("eval_dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;
