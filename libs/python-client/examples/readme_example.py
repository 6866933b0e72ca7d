import json, os, sys
from pathlib import Path
from moco_client import JobEvent, MocoClient

moco = MocoClient(os.environ.get("MOCO_URL", "http://127.0.0.1:8080"), os.environ["MOCO_KEY"],
                  grpc_address=os.environ.get("MOCO_GRPC", "127.0.0.1:50051"))
ds = moco.datasets.upload("photos.tar.gz", on_progress=lambda sent, total: print(f"uploaded {sent}/{total}", file=sys.stderr))
# A quick first run; leave hyperparameters out for the published recipe of the image size.
job = moco.jobs.create({"dataset_id": ds["id"], "hyperparameters": {"epochs": 2, "width": 8, "batch_size": 32, "K": 256}})
done = moco.jobs.wait(job["id"], on_item=lambda item: isinstance(item, JobEvent) and print(item.event["message"], file=sys.stderr))
final = next(c for c in moco.jobs.checkpoints(done["id"]) if c["final"])
# Returns once the embedder serves the new model for the alias (or pin it: model_id=model["id"]).
model = moco.models.promote(final["id"], alias="production", wait_until_served=True)
images = [Path("cat.png").read_bytes(), Path("dog.png").read_bytes()]
emb = moco.embeddings.embed(images, model="production", output="backbone")
print(json.dumps({"status": done["status"], "model": emb.model_id == model["id"], "vectors": len(emb.vectors), "dim": emb.dim,
                  "embedding_space_id": emb.embedding_space_id}))
moco.close()
