import { z } from 'zod';

/**
 * What `GET /v1/checkpoints/{id}/export` gives: `onnx` (the frozen encoder for onnxruntime and the
 * like), `pytorch` (torch.load, facebookresearch/moco's layout, for main_lincls.py or fine-tuning),
 * `mocotens` (this service's whole training state, resumable: both encoders, queue, optimizer).
 */
export const EXPORT_FORMATS = ['onnx', 'pytorch', 'mocotens'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** Which outputs an ONNX export has, named as the embedder's: `backbone`, or `backbone` and `head`. */
export const EXPORT_OUTPUTS = ['backbone', 'head'] as const;
export type ExportOutputName = (typeof EXPORT_OUTPUTS)[number];

export const ExportQuery = z.object({
  format: z.enum(EXPORT_FORMATS).default('onnx').describe('onnx, pytorch or mocotens (the resumable training state)'),
  output: z
    .enum(EXPORT_OUTPUTS)
    .default('backbone')
    .describe('onnx only: `backbone` (pooled features) or `head` (the features and the projection head, two outputs)'),
});
export type ExportQuery = z.infer<typeof ExportQuery>;

/** The response header carrying a download's sha256 (hex). */
export const CHECKSUM_HEADER = 'x-checksum-sha256';

/** A file download's 200 response in OpenAPI: bytes, with Content-Disposition, Content-Length and the checksum header. */
export const DOWNLOAD_RESPONSE = z.any().describe(`the file (attachment), with Content-Length and its sha256 in ${CHECKSUM_HEADER}`);

/** Where a checkpoint's exports are, relative to the API's base URL. */
export const CheckpointDownloads = z
  .object({
    onnx: z.string().describe('the frozen encoder, output `backbone`'),
    onnx_head: z.string().describe('the frozen encoder, outputs `backbone` and `head`'),
    pytorch: z.string().describe('torch.load file in facebookresearch/moco layout'),
    mocotens: z.string().describe('the whole resumable training state'),
  })
  .describe('download links (paths under the API), each answered by GET /v1/checkpoints/{id}/export');
export type CheckpointDownloads = z.infer<typeof CheckpointDownloads>;

/** The download links of a checkpoint. */
export function checkpointDownloads(id: string): CheckpointDownloads {
  const base = `/v1/checkpoints/${encodeURIComponent(id)}/export`;
  return {
    onnx: `${base}?format=onnx&output=backbone`,
    onnx_head: `${base}?format=onnx&output=head`,
    pytorch: `${base}?format=pytorch`,
    mocotens: `${base}?format=mocotens`,
  };
}
