-- Caches of API key lookups (the embedder's) learn at once that a key stopped being valid: on
-- revocation (or un-revocation), a new secret or project, or deletion, the key's old secret_hash is
-- sent on the channel libs/db calls API_KEY_CHANGES_CHANNEL. NOTIFY is delivered at commit.
CREATE FUNCTION "notify_api_key_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('moco_api_keys', OLD."secret_hash");
  RETURN NULL;
END;
$$;

CREATE TRIGGER "api_keys_changed"
  AFTER UPDATE OF "revoked_at", "secret_hash", "project_id" ON "api_keys"
  FOR EACH ROW
  WHEN (OLD."revoked_at" IS DISTINCT FROM NEW."revoked_at"
     OR OLD."secret_hash" IS DISTINCT FROM NEW."secret_hash"
     OR OLD."project_id" IS DISTINCT FROM NEW."project_id")
  EXECUTE FUNCTION "notify_api_key_change"();

CREATE TRIGGER "api_keys_deleted"
  AFTER DELETE ON "api_keys"
  FOR EACH ROW
  EXECUTE FUNCTION "notify_api_key_change"();
