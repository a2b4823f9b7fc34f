import { resolve } from 'node:path';
import { manifests } from '../manifests.js';
import { type OpenRequest, type Provider, type Session, UserError } from '../sdk.js';
import { FileDestination } from './destination.js';

/** `type: file`: action `append`, one JSON line per record (SPEC §3). */
export const provider: Provider = {
  manifest: manifests.file,
  async open(req: OpenRequest): Promise<Session> {
    if (!req.settings.path) {
      throw new UserError(`${req.address}: a file destination needs \`path\``, {
        hint: 'set path: a file relative to the config directory, e.g. out/records.jsonl',
      });
    }
    const destination = new FileDestination(resolve(req.configDir, req.settings.path));
    // Each batch opens, appends, syncs and closes the file: nothing stays open.
    return { destination, close: async () => {} };
  },
};

export { FileDestination } from './destination.js';
