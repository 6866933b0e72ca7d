import type { Readable } from 'node:stream';
import { CHECKSUM_HEADER, Dataset, DatasetPage, DatasetSamples, DatasetSamplesQuery, DOWNLOAD_RESPONSE, ErrorBody, IdParams, ListDatasetsQuery, RegisterDatasetRequest, UploadDatasetQuery } from '@moco/contracts';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DatasetService } from '../../datasets/dataset-service.js';
import { ApiError, parseOrThrow } from '../../shared/api-error.js';
import { sendDownload } from '../../shared/downloads.js';
import { readScope } from '../../shared/scope.js';

const UPLOAD_DESCRIPTION = `Two ways, told apart by Content-Type:

- **Upload** (any Content-Type but application/json, e.g. application/octet-stream, application/gzip,
  application/zip): the raw body is the dataset file, streamed (no multipart): a tar, tar.gz or zip of an
  ImageFolder tree (\`<class>/<image>\`, or images without class folders), of idx files (images + labels
  pair, gzip or not) or of CIFAR-10 binary batches; or a single idx image file (gzip or not). \`?filename=\`
  names the stored object, \`?name=\` the dataset. Bodies over MAX_UPLOAD_BYTES get 413.
- **Register** (application/json \`{"source": "s3://bucket/key", "name"}\`): an object already in S3, read with
  the service's credentials and recorded in place (STORAGE_KIND=s3 only).

The file is validated (every image decoded, within the limits) before anything is stored: an invalid or
hostile one (path traversal, links, decompression bombs, undecodable images, no images) gets 422
\`invalid_dataset\` naming the file inside the archive, and leaves nothing behind. At most
MAX_CONCURRENT_UPLOADS are handled at once: more get 503 \`server_busy\` with \`Retry-After\`.`;

const datasetRoutes: FastifyPluginAsyncZod<{ datasets: DatasetService }> = async (app, { datasets }) => {
  // Any body that is not JSON is the dataset file: handed to the route as a stream, never buffered
  // (text/plain included, which Fastify would otherwise read into a string).
  app.removeContentTypeParser('text/plain');
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  app.post(
    '',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'createDataset',
        summary: 'Upload or register a dataset',
        description: UPLOAD_DESCRIPTION,
        querystring: UploadDatasetQuery,
        response: { 201: Dataset, 400: ErrorBody, 413: ErrorBody, 422: ErrorBody, 429: ErrorBody, 503: ErrorBody },
      },
      config: {
        expensive: true,
        openapiBody: {
          'application/octet-stream': { type: 'string', format: 'binary', description: 'the dataset file' },
          'application/json': z.toJSONSchema(RegisterDatasetRequest, { io: 'input' }),
        },
      },
    },
    async (request, reply) => {
      const mediaType = request.headers['content-type']?.split(';')[0]!.trim().toLowerCase();
      if (mediaType === 'application/json') {
        const body = parseOrThrow(RegisterDatasetRequest, request.body);
        return reply.code(201).send(await datasets.register(request.principal, body));
      }
      const length = request.headers['content-length'];
      try {
        const dataset = await datasets.upload(request.principal, {
          // No body at all (no Content-Type, no length) leaves none parsed: read the empty request.
          body: (request.body as Readable | undefined) ?? request.raw,
          name: request.query.name,
          filename: request.query.filename,
          contentLength: length === undefined ? undefined : Number(length),
          contentType: mediaType,
        });
        return reply.code(201).send(dataset);
      } catch (err) {
        // Stop reading a body that is too large: the connection closes after the 413.
        if (err instanceof ApiError && err.statusCode === 413) reply.header('connection', 'close');
        throw err;
      }
    },
  );

  app.get(
    '',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'listDatasets',
        summary: 'List datasets, newest first',
        querystring: ListDatasetsQuery,
        response: { 200: DatasetPage },
      },
    },
    async (request) => datasets.list(readScope(request.principal, request.query.project_id), request.query),
  );

  app.get(
    '/:id',
    { schema: { tags: ['datasets'], operationId: 'getDataset', summary: 'Get a dataset', params: IdParams, response: { 200: Dataset, 404: ErrorBody } } },
    async (request) => datasets.get(readScope(request.principal), request.params.id),
  );

  app.get(
    '/:id/samples',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'getDatasetSamples',
        summary: 'Thumbnails of a few of a dataset\'s images',
        description:
          'PNG thumbnails (base64) of `?n=` images picked when the dataset was validated: classes in turn, each spread over its images, ' +
          'the same picks every time. Empty for a dataset validated before thumbnails were kept. Images per class are in the ' +
          "dataset's `class_counts`.",
        params: IdParams,
        querystring: DatasetSamplesQuery,
        response: { 200: DatasetSamples, 404: ErrorBody },
      },
    },
    async (request) => datasets.samples(readScope(request.principal), request.params.id, request.query.n),
  );

  app.get(
    '/:id/download',
    {
      schema: {
        tags: ['datasets'],
        operationId: 'downloadDataset',
        summary: 'Download an uploaded dataset file',
        description: `The file as uploaded, with Content-Length and its sha256 in \`${CHECKSUM_HEADER}\`. 404 for a dataset registered in place (read it from its \`source_uri\`) or not yet ready.`,
        params: IdParams,
        response: { 200: DOWNLOAD_RESPONSE, 404: ErrorBody },
      },
      config: { expensive: true },
    },
    async (request, reply) => sendDownload(reply, await datasets.download(readScope(request.principal), request.params.id)),
  );
};

export default datasetRoutes;
