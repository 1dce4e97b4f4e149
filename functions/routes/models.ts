/**
 * Model management (admin token): upload immutable versions, move aliases, delete unaliased versions. An upload
 * is published like every version (registry/publish-model.ts: loaded and run once before anything is written —
 * on generated inputs, whose verdict is reported, or on the `warmup` the query gives, which must pass);
 * a refused upload writes nothing.
 */
import type { modelRoutes } from '../contract/models.ts';
import { fail } from '../middleware/errors.ts';
import { requireContentType } from '../middleware/content-type.ts';
import { quote } from '../inference/quote.ts';
import { parseWarmup } from '../inference/probe.ts';
import { deleteBlob } from '../registry/blob-store.ts';
import { pinningTask } from '../registry/model-record.ts';
import { checkName } from './names.ts';
import { services } from '../services.ts';
import type { Handler, Handlers } from './register.ts';

type Routes = typeof modelRoutes;

const uploadVersion: Handler<Routes['uploadVersion']> = async (c) => {
  const name = checkName(c.req.param('name')!, 'model name');
  const version = checkName(c.req.param('version')!, 'version');
  requireContentType(c, 'application/octet-stream');
  // `?warmup=input:1x512,state:2x1x128,sr:=16000` (repeatable): its syntax is refused before the body is read.
  const given = c.req.queries('warmup');
  const warmup = given ? parseWarmup(given) : undefined;
  const { registry, config } = services(c.env);
  const bytes = new Uint8Array(await c.req.arrayBuffer());
  const result = await registry.publish({
    model: name,
    version,
    bytes,
    probe: { maxElements: config.maxTensorElements, warmup },
  });
  if (result.status === 'conflict')
    fail(
      409,
      `model ${quote(name)} version ${quote(version)} already exists with different bytes (sha256 ${result.record.sha256}); versions are immutable, upload under a new version`,
    );
  return c.json(result.record, result.status === 'created' ? 201 : 200);
};

const setAlias: Handler<Routes['setAlias']> = async (c) => {
  const name = checkName(c.req.param('name')!, 'model name');
  const alias = checkName(c.req.param('alias')!, 'alias');
  const { version } = c.var.body;
  const { registry } = services(c.env);
  const result = await registry.setAlias(name, alias, version);
  if (result.status === 'no-version') fail(404, `model ${quote(name)} has no version ${quote(version)}`);
  return c.json({ model: name, alias, version: result.record.version, sha256: result.record.sha256 });
};

const deleteVersion: Handler<Routes['deleteVersion']> = async (c) => {
  const name = c.req.param('name')!;
  const version = c.req.param('version')!;
  const { registry } = services(c.env);
  const result = await registry.deleteVersion(name, version);
  if (result.status === 'not-found') fail(404, `model ${quote(name)} has no version ${quote(version)}`);
  if (result.status === 'aliased') {
    const tasks = result.aliases.map(pinningTask).filter((t) => t !== undefined);
    const why = tasks.length
      ? ` (${tasks.map((t) => `federated task ${quote(t)} publishes into this version's bytes`).join('; ')})`
      : '';
    fail(
      409,
      `model ${quote(name)} version ${quote(version)} is still the target of alias${result.aliases.length > 1 ? 'es' : ''} ${result.aliases.join(', ')}${why}; move them first`,
    );
  }
  if (!result.blobStillUsed) await deleteBlob(c.env.MODEL_BLOBS, result.sha256);
  return c.json({ model: name, version, deleted: true });
};

export const modelHandlers: Handlers<Routes> = { uploadVersion, setAlias, deleteVersion };
