import { CHECKSUM_HEADER, DOWNLOAD_RESPONSE, ErrorBody, ExportQuery, IdParams } from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { CheckpointExportService } from '../../checkpoints/checkpoint-export-service.js';
import { sendDownload } from '../../shared/downloads.js';
import { readScope } from '../../shared/scope.js';

const EXPORT_DESCRIPTION = `Streams the checkpoint in the chosen format, as an attachment with \`Content-Length\` and its sha256 in
\`${CHECKSUM_HEADER}\` (hex).

- \`onnx\`: the frozen query encoder (BatchNorm folded into the convolutions). Input \`input\`: float32
  [batch, channels, size, size] (NCHW, dynamic batch), preprocessed as the metadata says: bilinear resize
  to \`size\`, scale to [0, 1], subtract \`mean\`, divide by \`std\` per channel (metadata_props \`size\`,
  \`channels\`, \`mean\`, \`std\`). Outputs named as the embedder's: \`backbone\` (pooled features), and with
  \`output=head\` also \`head\` (the projection). Not L2-normalised.
- \`pytorch\`: a \`torch.load\` file in facebookresearch/moco's layout: \`state_dict\` with
  \`module.encoder_q.*\` keys (torchvision's ResNet names), \`arch\`, \`epoch\`, plus \`step\`, \`encoder\` and
  \`preprocessing\`; main_lincls.py's \`--pretrained\` loads it.
- \`mocotens\`: this service's whole training state (both encoders, key queue, optimizer), which a job
  continues with \`from_checkpoint_id\`; readable only by this service's code.

The first export of a checkpoint in a format converts it (seconds for a ResNet-50); later ones are served from the store.`;

/** `/v1/checkpoints/{id}/export`: a checkpoint's bytes in a format other tools read. */
const checkpointRoutes: FastifyPluginAsyncZod<{ exports: CheckpointExportService }> = async (app, { exports }) => {
  app.get(
    '/:id/export',
    {
      schema: {
        tags: ['checkpoints'],
        operationId: 'exportCheckpoint',
        summary: 'Download a checkpoint as ONNX, PyTorch or the training state',
        description: EXPORT_DESCRIPTION,
        params: IdParams,
        querystring: ExportQuery,
        response: {
          200: DOWNLOAD_RESPONSE,
          400: ErrorBody,
          404: ErrorBody,
        },
      },
      config: { expensive: true },
    },
    async (request, reply) => sendDownload(reply, await exports.download(readScope(request.principal), request.params.id, request.query)),
  );
};

export default checkpointRoutes;
