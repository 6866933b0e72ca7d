-- AlterTable: a key replaced by a rotation with a grace period stops working at expires_at.
ALTER TABLE "api_keys" ADD COLUMN "expires_at" TIMESTAMPTZ(3);
