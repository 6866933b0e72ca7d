-- AlterTable: a key replaced by a rotation with a grace period stops working at expires_at.
ALTER TABLE "api_keys" ADD COLUMN "expires_at" TIMESTAMPTZ(3);

-- Caches of key lookups hear of a new expiry too (a rotation with a grace period sets one).
DROP TRIGGER "api_keys_changed" ON "api_keys";
CREATE TRIGGER "api_keys_changed"
  AFTER UPDATE OF "revoked_at", "expires_at", "secret_hash", "project_id" ON "api_keys"
  FOR EACH ROW
  WHEN (OLD."revoked_at" IS DISTINCT FROM NEW."revoked_at"
     OR OLD."expires_at" IS DISTINCT FROM NEW."expires_at"
     OR OLD."secret_hash" IS DISTINCT FROM NEW."secret_hash"
     OR OLD."project_id" IS DISTINCT FROM NEW."project_id")
  EXECUTE FUNCTION "notify_api_key_change"();
