import type { Mapping, Model } from '../config/types.gen.js';
import { closest } from '../diagnostics.js';
import { UserError } from '../errors.js';
import type { ResourceState } from '../plan/types.js';
import type { StateDocument } from '../state/types.js';

/** Everything a sync of one mapping needs, from the applied state. */
export interface ResolvedMapping {
  readonly name: string;
  readonly mapping: Required<Pick<Mapping, 'enabled' | 'batch_size' | 'sync_on'>> & Mapping;
  readonly model: Model;
  readonly modelName: string;
  readonly source: ResourceState;
  readonly destination: ResourceState;
}

/** Looks a mapping up in the applied state; an unknown or unapplied name is a UserError with a hint. */
export function resolveMapping(state: StateDocument | null, name: string): ResolvedMapping {
  const find = (address: string) => state?.resources.find((r) => r.address === address);
  const mapping = find(`mapping.${name}`);
  if (!mapping) {
    const names = (state?.resources ?? []).filter((r) => r.kind === 'mapping').map((r) => r.name);
    const hint = closest(name, names);
    throw new UserError(`mapping ${name} is not in the applied state`, {
      hint: hint
        ? `did you mean \`${hint}\`?`
        : names.length
          ? `applied mappings: ${names.join(', ')}; a new mapping needs \`backflow apply\` first`
          : 'run `backflow apply` first',
    });
  }
  const body = mapping.body as unknown as ResolvedMapping['mapping'];
  const model = find(`model.${body.model}`);
  const destination = find(`destination.${body.destination}`);
  const source = model ? find(`source.${(model.body as unknown as Model).source}`) : undefined;
  if (!model || !destination || !source)
    throw new UserError(`the applied state is inconsistent: mapping.${name} refers to a missing resource`, {
      hint: 'run `backflow plan` and `backflow apply`',
    });
  return {
    name,
    mapping: body,
    model: model.body as unknown as Model,
    modelName: model.name,
    source,
    destination,
  };
}
