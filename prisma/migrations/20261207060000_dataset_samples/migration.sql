-- Images per class, counted when a dataset is validated (null: unlabelled, or validated before this).
ALTER TABLE "datasets" ADD COLUMN "class_counts" JSONB;

-- A few PNG thumbnails per dataset, picked at validation, for the dashboard's dataset page.
CREATE TABLE "dataset_samples" (
    "dataset_id" TEXT NOT NULL,
    "index" INTEGER NOT NULL,
    "label" INTEGER,
    "png" BYTEA NOT NULL,

    CONSTRAINT "dataset_samples_pkey" PRIMARY KEY ("dataset_id","index")
);

ALTER TABLE "dataset_samples" ADD CONSTRAINT "dataset_samples_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;
